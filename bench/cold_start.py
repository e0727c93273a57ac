"""Cold start: from starting `embedserve serve` to its first embedding answered, and its memory.

The clock starts just before the process does and stops when `POST /v1/embeddings` with the
default model (all-MiniLM-L6-v2) first answers 200: interpreter start, imports, the app, the
model's load, the engine's parity gate and the first forward pass, all of it. The first start
on an empty home also builds the fast engines' graphs and, with `--engine auto`, times them;
later starts find both in the home (graph cache, remembered choice). Reported: that first start
alone, and the median of the next starts; resident memory (RSS of the server's process group)
right after the first embedding.

    .venv/bin/python bench/cold_start.py [--starts 3] [-- serve options, e.g. --engine openvino]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from server_process import embed_lines, rss_mb, served

__all__ = ["Start", "measure", "rows_of"]

_BODY = b'{"model": "all-MiniLM-L6-v2", "input": "How do I reset my password?"}'
_LIMIT_S = 300.0


@dataclass(frozen=True, slots=True)
class Start:
    seconds: float  # process start to first embedding answered
    listening_s: float  # process start to the port accepting connections
    rss_mb: float
    engine: str
    load_ms: float | None  # the model's load as the server logs it (gate and timing included)


def _engine(log: Path) -> tuple[str, float | None]:
    """The engine and precision the server chose, from its `model_loaded` line."""
    for line in log.read_text(errors="replace").splitlines():
        if '"model_loaded"' in line:
            entry = json.loads(line)
            return f"{entry.get('engine')} {entry.get('precision')}", entry.get("load_ms")
    return "unknown", None


def start_once(home: Path, log: Path, args: Sequence[str] = ()) -> Start:
    with served(home, log, args, wait=False) as server, httpx.Client(timeout=_LIMIT_S) as client:
        deadline = time.monotonic() + _LIMIT_S
        while True:  # the port first: GET / answers as soon as the app is up
            try:
                client.get(server.url)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        listening = time.perf_counter()
        answer = client.post(
            f"{server.url}/v1/embeddings",
            content=_BODY,
            headers={"content-type": "application/json"},
        )
        answer.raise_for_status()
        done = time.perf_counter()
        memory = rss_mb(server.pid)
    engine, load_ms = _engine(log)
    assert embed_lines(log), "the server logged no embed line"
    return Start(done - server.started, listening - server.started, memory, engine, load_ms)


def measure(work: Path, starts: int, args: Sequence[str] = ()) -> tuple[Start, list[Start]]:
    """(the first start on an empty home, the `starts` after it on the same home)."""
    home = work / "cold-home"
    home.mkdir(parents=True, exist_ok=True)
    first = start_once(home, work / "cold-0.log", args)
    later = [start_once(home, work / f"cold-{n + 1}.log", args) for n in range(starts)]
    return first, later


def rows_of(first: Start, later: Sequence[Start]) -> list[object]:
    from report import Row

    def median(values: list[float]) -> float:
        return statistics.median(values)

    seconds = median([s.seconds for s in later])
    memory = median([s.rss_mb for s in later])
    listening = median([s.listening_s for s in later])
    load = [s.load_ms for s in later if s.load_ms is not None]
    runs = ", ".join(f"{s.seconds:.2f}" for s in later)
    load_note = f"; model load {median(load):.0f} ms" if load else ""
    return [
        Row(
            "start",
            f"cold start, first ever (empty home: graphs built, engines timed), {first.engine}",
            value=f"{first.seconds:.2f} s",
            note=f"model load {first.load_ms or 0:.0f} ms; RSS after it {first.rss_mb:.0f} MB",
        ),
        Row(
            "start",
            f"cold start, median of {len(later)} (home warm), {later[0].engine}",
            value=f"{seconds:.2f} s",
            target=f"< 2 s: {'met' if seconds < 2 else 'MISSED'}",
            note=f"runs {runs} s; port open at {listening:.2f} s{load_note}",
        ),
        Row(
            "start",
            "RSS after the first embedding (median)",
            value=f"{memory:.0f} MB",
            target=f"< 300 MB: {'met' if memory < 300 else 'MISSED'}",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("serve", nargs="*", help="after --: options for embedserve serve")
    args = parser.parse_args()
    from report import text_table

    with tempfile.TemporaryDirectory(prefix="embedserve-bench-") as tmp:
        first, later = measure(Path(tmp), args.starts, args.serve)
    print(text_table(rows_of(first, later)))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
