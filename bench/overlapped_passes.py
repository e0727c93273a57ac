"""ONNX Runtime's rows per second, one pass at a time on every core against passes side by side
on a thread each (`--max-concurrent-batches`), by pass size, in one run.

all-MiniLM-L6-v2 (the installed package's real weights), passes of B real corpus texts cut to a
common length, alternating the two ways round after round so a shared machine's drift hits both.
The server's merged runs at 16 single-text clients are passes of 2-8 rows; at 4 clients x 32
texts, of 10-30.

    .venv/bin/python bench/overlapped_passes.py [--rounds 3] [--seconds 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

_BENCH = Path(__file__).resolve().parent
for _path in (str(_BENCH.parent), str(_BENCH)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from corpus import corpus  # noqa: E402 - bench/ goes on the path first
from engine_throughput import minilm  # noqa: E402

from adapters.engines.onnx_runtime import OnnxRuntimeEngine  # noqa: E402
from adapters.settings import usable_cores  # noqa: E402
from adapters.tokenizers.hf_tokenizer import load_tokenizer  # noqa: E402
from application.batching import pad  # noqa: E402
from domain.errors import ModelUnavailable  # noqa: E402
from domain.ports import Encoder  # noqa: E402

_SHAPES = ((1, 40), (3, 60), (8, 60), (16, 64), (32, 64))
_CORES = usable_cores()  # as --max-concurrent-batches shares them out


def _encoder(cache: Path, threads: int | None) -> Encoder:
    spec, folder = minilm()
    encoder = OnnxRuntimeEngine(cache, threads=threads).load(spec, folder)
    assert not isinstance(encoder, ModelUnavailable), encoder
    return encoder


def _rows_per_s(run: Callable[[int], None], passes: int, rows: int) -> float:
    started = time.perf_counter()
    run(passes)
    return passes * rows / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0, help="per way, shape and round")
    args = parser.parse_args()
    spec, folder = minilm()
    tokenizer = load_tokenizer(spec, folder)
    assert not isinstance(tokenizer, ModelUnavailable), tokenizer
    ids_of = [e.ids for e in tokenizer.encode(corpus(256))]
    with tempfile.TemporaryDirectory(prefix="overlap-") as tmp:
        whole = _encoder(Path(tmp), None)  # the runtime's choice: every core
        shared = _encoder(Path(tmp), 1)
        print(f"{_CORES} cores; {os.uname().machine}; ratios: side by side / one at a time")
        with ThreadPoolExecutor(max_workers=_CORES) as pool:
            for rows, length in _SHAPES:
                long_enough = [r for r in ids_of if len(r) >= length][:rows]
                ids, mask = pad([r[:length] for r in long_enough])

                def in_turn(n: int, ids: np.ndarray = ids, mask: np.ndarray = mask) -> None:
                    for _ in range(n):
                        whole.embed(ids, mask)

                def side_by_side(n: int, ids: np.ndarray = ids, mask: np.ndarray = mask) -> None:
                    each = [pool.submit(shared.embed, ids, mask) for _ in range(n)]
                    for done in each:
                        done.result()

                in_turn(2)
                side_by_side(2 * _CORES)
                start = time.perf_counter()
                in_turn(3)
                passes = max(_CORES, round(3 * args.seconds / (time.perf_counter() - start)))
                ratios, rates = [], []
                for _ in range(args.rounds):
                    one = _rows_per_s(in_turn, passes, rows)
                    both = _rows_per_s(side_by_side, passes, rows)
                    rates.append((one, both))
                    ratios.append(both / one)
                one = statistics.median(r[0] for r in rates)
                both = statistics.median(r[1] for r in rates)
                print(
                    f"B{rows:>2} T{length}: one at a time {one:6.1f} rows/s, side by side "
                    f"{both:6.1f} rows/s: {statistics.median(ratios):.2f}x "
                    f"(rounds {', '.join(f'{r:.2f}' for r in ratios)})",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
