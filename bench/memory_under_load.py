"""The server's memory under sustained load, per engine: does it level off, and come back?

For each tree (one, or two for a before/after) and each engine: a server on a shared home (so
one graph cache), the benchmark's warm-up, a pause past the idle release, then `rounds` rounds
of the edge's two cells (c16 x b1 and c4 x b32, corpus order). RSS is read once idle after the
warm-up, at the end of each round (the last pass's working memory still held), and `settle` s
after the last round (given back at idle). A runtime that keeps state for every shape it runs
grows round after round while new shapes come; one that does not levels off after the first.

    .venv/bin/python bench/memory_under_load.py [--engine openvino] [--rounds 4]
        [--cell-seconds 6] [--tree before=/tmp/base --tree after=.]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
for _path in (str(_BENCH.parent), str(_BENCH)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from corpus import corpus  # noqa: E402 - bench/ goes on the path first
from edge_cost import EDGE_SHAPES  # noqa: E402
from http_load import Cell, run_cell, warm_up  # noqa: E402
from server_process import rss_mb, served, source_tree  # noqa: E402

_IDLE_S = 1.5  # past the batcher's idle release (BatchSettings.release_after_idle_s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", action="append", help="onnxruntime, openvino (both)")
    parser.add_argument("--tree", type=source_tree, action="append", help="name=path (this tree)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--cell-seconds", type=float, default=6.0)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds idle at the end")
    parser.add_argument("--texts", type=int, default=1024)
    args = parser.parse_args()
    engines = args.engine or ["onnxruntime", "openvino"]
    trees = args.tree or [("this", _BENCH.parent)]
    texts = corpus(args.texts)
    print(f"{os.uname().machine}, {os.cpu_count()} cores; RSS in MB (10^6 bytes)", flush=True)
    with tempfile.TemporaryDirectory(prefix="memory-") as tmp:
        for engine in engines:
            for name, root in trees:
                log = Path(tmp) / f"{name}-{engine}.log"
                with served(Path(tmp) / "home", log, ["--engine", engine], root=root) as server:
                    warm_up(server, texts)
                    time.sleep(_IDLE_S)
                    idle = rss_mb(server.pid)
                    loaded, rates = [], []
                    for _ in range(args.rounds):
                        for c, b in EDGE_SHAPES:
                            cell = Cell("openai", "float", c, b)
                            rates.append(run_cell(server, texts, cell, args.cell_seconds))
                        loaded.append(rss_mb(server.pid))
                    time.sleep(args.settle)
                    after = rss_mb(server.pid)
                per_round = " ".join(f"{r:.0f}" for r in loaded)
                speed = " ".join(f"{r.texts_per_s:.0f}" for r in rates)
                print(
                    f"{name:>8} {engine:>11}: idle {idle:.0f} | each round under load "
                    f"{per_round} (last / first {loaded[-1] / loaded[0]:.2f}) | "
                    f"{args.settle:.0f} s after {after:.0f} (/ idle {after / idle:.2f}) | "
                    f"texts/s c16 x b1, c4 x b32 by round: {speed}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
