"""Huge inputs against a real server: time, peak RSS, RSS after, and how long small requests
waited meanwhile (issue 13, item 4).

One server (all-MiniLM-L6-v2, 256 tokens) gets, one at a time, requests whose inputs are far past
what the model embeds: a 15,000,000-character text cut (`truncate` true), refused (false) and
chunked ("chunk": past the 300,000-token budget), and 7,500,000 OpenAI token ids, cut. For each:
its status and seconds, the server's peak RSS while it ran (sampled every 10 ms), its RSS 3 s
after (what a large request freed is given back to the system 2 s after it, adapters/heap.py),
and the slowest of the small requests another client sent every 50 ms
meanwhile (the event loop's stall).

    .venv/bin/python bench/huge_inputs.py [--code DIR] [--chars 15000000] [--ids 7500000]

`--code DIR` serves the code of another checkout (PYTHONPATH), for before/after figures.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from server_process import rss_mb, served

_SMALL = b'{"model": "all-MiniLM-L6-v2", "input": "How do I reset my password?"}'
_SMALL_IDS = b'{"model": "all-MiniLM-L6-v2", "input": [[15339, 1917]]}'
_TIMEOUT_S = 600.0


@dataclass(frozen=True, slots=True)
class Outcome:
    label: str
    status: int
    seconds: float
    peak_mb: float
    after_mb: float
    slowest_small_ms: float


class _Sampler(threading.Thread):
    """The server's RSS every 10 ms, and a small embedding every 50 ms, until stopped."""

    def __init__(self, url: str, pid: int) -> None:
        super().__init__(daemon=True)
        self._url, self._pid = url, pid
        self.stop = threading.Event()
        self.peak_mb = 0.0
        self.slowest_ms = 0.0

    def run(self) -> None:
        with httpx.Client(timeout=_TIMEOUT_S) as client:
            last_small = 0.0
            while not self.stop.is_set():
                self.peak_mb = max(self.peak_mb, rss_mb(self._pid))
                if time.perf_counter() - last_small > 0.05:
                    last_small = time.perf_counter()
                    client.post(f"{self._url}/v1/embeddings", content=_SMALL)
                    self.slowest_ms = max(
                        self.slowest_ms, 1000 * (time.perf_counter() - last_small)
                    )
                time.sleep(0.01)


def _one(url: str, pid: int, label: str, body: bytes) -> Outcome:
    sampler = _Sampler(url, pid)
    sampler.start()
    started = time.perf_counter()
    response = httpx.post(f"{url}/v1/embeddings", content=body, timeout=_TIMEOUT_S)
    seconds = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    time.sleep(3.0)  # what the request freed is given back 2 s after it (adapters/heap.py)
    return Outcome(
        label,
        response.status_code,
        seconds,
        sampler.peak_mb,
        rss_mb(pid),
        sampler.slowest_ms,
    )


def _bodies(chars: int, ids: int) -> list[tuple[str, bytes]]:
    text = "!" * chars
    model = "all-MiniLM-L6-v2"
    return [
        (f"{chars:,} chars, cut", json.dumps({"model": model, "input": text}).encode()),
        (
            f"{chars:,} chars, refused",
            json.dumps({"model": model, "input": text, "truncate": False}).encode(),
        ),
        (
            f"{chars:,} chars, chunk",
            json.dumps({"model": model, "input": text, "truncate": "chunk"}).encode(),
        ),
        (
            f"{ids:,} token ids, cut",
            json.dumps({"model": model, "input": [[0] * ids]}, separators=(",", ":")).encode(),
        ),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, help="serve this checkout's code instead")
    parser.add_argument("--chars", type=int, default=15_000_000)
    parser.add_argument("--ids", type=int, default=7_500_000)
    args = parser.parse_args(argv)
    bench = Path(__file__).resolve().parent
    env = {} if args.code is None else {"PYTHONPATH": f"{bench}:{args.code.resolve()}"}
    with tempfile.TemporaryDirectory() as tmp:
        home, log = Path(tmp) / "home", Path(tmp) / "server.log"
        with served(home, log, ["--engine", "numpy"], env=env) as server:
            httpx.post(f"{server.url}/v1/embeddings", content=_SMALL, timeout=_TIMEOUT_S)
            print(f"RSS after the first embedding: {rss_mb(server.pid):.0f} MB")
            # the first token ids read the cl100k_base table (~90 MB), which stays: a cache,
            # not what a huge request leaves behind, so the baseline holds it
            httpx.post(f"{server.url}/v1/embeddings", content=_SMALL_IDS, timeout=_TIMEOUT_S)
            baseline = rss_mb(server.pid)
            print(f"RSS after the first token ids: {baseline:.0f} MB")
            print("| request | status | s | peak RSS MB | RSS after MB | slowest small ms |")
            print("|---|---|---|---|---|---|")
            for label, body in _bodies(args.chars, args.ids):
                o = _one(server.url, server.pid, label, body)
                print(
                    f"| {o.label} | {o.status} | {o.seconds:.2f} | {o.peak_mb:.0f} | "
                    f"{o.after_mb:.0f} | {o.slowest_small_ms:.0f} |",
                    flush=True,
                )
            after = rss_mb(server.pid)
            print(f"RSS at the end: {after:.0f} MB ({100 * (after / baseline - 1):+.1f}%)")


if __name__ == "__main__":
    main()
