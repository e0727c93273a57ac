"""The HTTP cells' workload without HTTP: the comparator that prices the edge alone.

The same texts, in the same order, cut into the same requests (a plain string when b1), sent by
the same number of concurrent senders (asyncio tasks), straight to the server's core:
`FrontDoor.embed`, built by `adapters.bootstrap.build_front_door` from the Settings the server's
own command line gives (same home, so the same remembered engine choice and cached graphs). What
HTTP adds on top (h11, Litestar, msgspec, the access log, JSON floats) is then
HTTP texts/s / in-process texts/s.

It runs in a process of its own, loaded once, beside the HTTP server, and takes cells on stdin
so the benchmark can interleave HTTP and in-process cells (a shared machine's noise hits both):

    python bench/front_door_load.py --home H [serve options...]
    stdin:  {"concurrency": 16, "batch": 1, "seconds": 6}      one JSON object per line
    stdout: @@{"texts": ..., "seconds": ..., "latencies_ms": [...], "passes": ...}

`FrontDoorRunner` (used by bench/run.py) drives that process.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

_BENCH = Path(__file__).resolve().parent
_ROOT = _BENCH.parent
_MARK = "@@"
_MODEL = "all-MiniLM-L6-v2"
_READY_TIMEOUT_S = 600.0

__all__ = ["FrontDoorRunner", "InProcessResult"]


@dataclass(frozen=True, slots=True)
class InProcessResult:
    concurrency: int
    batch: int
    texts: int
    seconds: float
    latencies_ms: tuple[float, ...]
    passes_per_request: float | None
    engine: str
    cpu_s: float  # the process's CPU time over the cell, all its threads
    loop_cpu_s: float = 0.0  # its main thread's, where the event loop and the senders run

    @property
    def loop_cpu_ms_per_text(self) -> float:
        return self.loop_cpu_s * 1e3 / self.texts if self.texts else 0.0

    @property
    def cpu_ms_per_text(self) -> float:
        return self.cpu_s * 1e3 / self.texts if self.texts else 0.0

    @property
    def texts_per_s(self) -> float:
        return self.texts / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class FrontDoorRunner:
    """The child process: started with the server's options, one cell per `run` call."""

    def __init__(
        self, texts: Sequence[str], home: Path, args: Sequence[str] = (), root: Path = _ROOT
    ) -> None:
        """`root`: the tree whose code runs (an A/B of two trees gives each its own)."""
        corpus_file = home.parent / "front-door-corpus.json"
        corpus_file.write_text(json.dumps(list(texts)), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "EMBEDSERVE_"))}
        env |= {"HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join([str(root), str(_BENCH)])}
        self._process = subprocess.Popen(  # noqa: S603 - this very script
            [sys.executable, __file__, str(corpus_file), "--home", str(home), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=_BENCH,
        )
        ready = self._answer(_READY_TIMEOUT_S)
        self.engine = str(ready["engine"])
        self.pid = self._process.pid

    def run(self, concurrency: int, batch: int, seconds: float) -> InProcessResult:
        assert self._process.stdin is not None
        line = {"concurrency": concurrency, "batch": batch, "seconds": seconds}
        self._process.stdin.write(json.dumps(line) + "\n")
        self._process.stdin.flush()
        got = self._answer(seconds * 10 + 120)
        passes = got["passes"]
        return InProcessResult(
            concurrency,
            batch,
            int(got["texts"]),
            float(got["seconds"]),
            tuple(got["latencies_ms"]),
            float(passes) if passes is not None else None,
            self.engine,
            float(got["cpu_s"]),
            float(got.get("loop_cpu_s", 0.0)),
        )

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _answer(self, timeout_s: float) -> dict[str, Any]:
        out: IO[str] | None = self._process.stdout
        assert out is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            ready, _, _ = select.select([out], [], [], 1.0)
            if not ready:
                continue
            line = out.readline()
            if not line:
                msg = f"front-door process exited with {self._process.poll()}"
                raise RuntimeError(msg)
            if line.startswith(_MARK):
                answer: dict[str, Any] = json.loads(line[len(_MARK) :])
                return answer
        msg = "front-door process did not answer in time"
        raise RuntimeError(msg)


# --- the child ------------------------------------------------------------------------------


def _say(payload: dict[str, Any]) -> None:
    sys.stdout.write(_MARK + json.dumps(payload) + "\n")
    sys.stdout.flush()


async def _cell(
    door: Any, requests: list[list[str]], concurrency: int, seconds: float, truncate: Any
) -> dict[str, Any]:
    from domain.requests import EmbeddingRequest, EmbeddingResult, Normalization

    latencies: list[float] = []
    passes: list[int] = []
    counts = {"next": 0, "texts": 0}
    deadline = time.perf_counter() + seconds

    async def sender() -> None:
        while counts["next"] < len(requests) and time.perf_counter() < deadline:
            chunk = requests[counts["next"]]
            counts["next"] += 1
            sent = time.perf_counter()
            request = EmbeddingRequest(
                model=_MODEL, inputs=chunk, truncate=truncate, normalization=Normalization.MODEL
            )
            result = await door.embed(request)
            latencies.append((time.perf_counter() - sent) * 1e3)
            if isinstance(result, EmbeddingResult):
                counts["texts"] += len(chunk)
                passes.append(result.batches)

    started, cpu, loop_cpu = time.perf_counter(), time.process_time(), time.thread_time()
    await asyncio.gather(*(sender() for _ in range(concurrency)))
    return {
        "texts": counts["texts"],
        "seconds": time.perf_counter() - started,
        "cpu_s": time.process_time() - cpu,
        "loop_cpu_s": time.thread_time() - loop_cpu,
        "latencies_ms": latencies,
        "passes": statistics.fmean(passes) if passes else None,
    }


async def _serve_cells(texts: list[str], argv: Sequence[str]) -> None:
    from adapters.bootstrap import build_front_door
    from adapters.cli import build_parser
    from adapters.cli.options import settings_from
    from domain.requests import EmbeddingRequest

    settings = settings_from(build_parser().parse_args(["serve", *argv]))
    door = build_front_door(settings)
    await door.start()
    # the server's warm-up, request for request: load, then a few of each shape
    for n in range(2):
        for size in (1, 32):
            chunk = [texts[(n * 32 + k) % len(texts)] for k in range(size)]
            await door.embed(EmbeddingRequest(model=_MODEL, inputs=chunk))
    running = door.resident()
    engine = f"{running[0].engine} {running[0].precision}" if running else "?"
    _say({"engine": engine})
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        ask = json.loads(line)
        batch = int(ask["batch"])
        requests = [texts[n : n + batch] for n in range(0, len(texts), batch)]
        # the HTTP cell's first request is sent before its clock starts: so is this one
        await door.embed(EmbeddingRequest(model=_MODEL, inputs=requests[0]))
        concurrency, seconds = int(ask["concurrency"]), float(ask["seconds"])
        _say(await _cell(door, requests, concurrency, seconds, settings.truncate))
    await door.stop()


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    corpus_texts = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    asyncio.run(_serve_cells(corpus_texts, sys.argv[2:]))
