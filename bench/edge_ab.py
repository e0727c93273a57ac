"""An interleaved A/B of two source trees at the HTTP edge: before and after a change, one run.

Each tree gets its own server and its own in-process comparator (bench/front_door_load.py),
all four alive at once over one shared home (so one engine choice and one graph cache); then,
round after round, every tree runs every shape over HTTP and in process, the trees' order
alternating between rounds. Medians per tree and shape are printed, with the load average.

    .venv/bin/python bench/edge_ab.py --tree before=/tmp/base --tree after=. [--rounds 3]
        [--cell-seconds 6] [--texts 1024] [-- serve options, e.g. --engine openvino]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
for _path in (str(_BENCH.parent), str(_BENCH)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from corpus import corpus, fingerprint  # noqa: E402 - bench/ goes on the path first
from edge_cost import EDGE_SHAPES, EdgeRun, floor_ms, measure_edge  # noqa: E402
from front_door_load import FrontDoorRunner  # noqa: E402
from http_load import warm_up  # noqa: E402
from server_process import served, source_tree  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=source_tree, action="append", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cell-seconds", type=float, default=6.0)
    parser.add_argument("--texts", type=int, default=1024)
    parser.add_argument("serve", nargs="*", help="options for every server and comparator")
    args = parser.parse_args()
    texts = corpus(args.texts)
    runs: dict[str, list[list[EdgeRun]]] = {name: [] for name, _ in args.tree}
    load_start = os.getloadavg()

    def log(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {text}", flush=True)

    log(f"{len(texts)} texts, fingerprint {fingerprint(texts)}, serve {args.serve}")
    with tempfile.TemporaryDirectory(prefix="edge-ab-") as tmp, ExitStack() as stack:
        home = Path(tmp) / "home"
        sides = {}
        for name, root in args.tree:
            server = stack.enter_context(
                served(home, Path(tmp) / f"{name}.log", args.serve, root=root)
            )
            warm_up(server, texts)
            runner = FrontDoorRunner(texts, home, args.serve, root=root)
            stack.callback(runner.close)
            log(f"{name}: {root}, server pid {server.pid}, in-process engine {runner.engine}")
            sides[name] = (server, runner)
        for n in range(args.rounds):
            order = list(sides) if n % 2 == 0 else list(reversed(sides))
            for name in order:
                server, runner = sides[name]
                got = measure_edge(
                    server,
                    runner,
                    texts,
                    cell_s=args.cell_seconds,
                    rounds=1,
                    log=lambda t, k=name: log(f"{k}: {t}"),
                )
                runs[name].append(got)
    print(f"\nload average at start {load_start[0]:.1f}/{load_start[1]:.1f}, "
          f"at end {os.getloadavg()[0]:.1f}/{os.getloadavg()[1]:.1f}")  # fmt: skip
    for name, _ in args.tree:
        for k, shape in enumerate(EDGE_SHAPES):
            per_round = [r[k] for r in runs[name]]
            http = [r.http[0] for r in per_round]
            inproc = [r.in_process[0] for r in per_round]
            rate_h = statistics.median(h.texts_per_s for h in http)
            rate_p = statistics.median(p.texts_per_s for p in inproc)
            p99_h = statistics.median(h.percentile(0.99) or 0 for h in http)
            p99_p = statistics.median(p.percentile(0.99) or 0 for p in inproc)
            share = statistics.median(r.share for r in per_round)
            cpu_h = statistics.median(h.cpu_ms_per_text for h in http)
            # the load generator shares the cores: its CPU per text is the edge's too, here
            cpu_c = statistics.median(h.client_cpu_s * 1e3 / max(h.texts, 1) for h in http)
            loop_h = statistics.median(h.loop_cpu_ms_per_text for h in http)
            loop_p = statistics.median(p.loop_cpu_ms_per_text for p in inproc)
            cpu_p = statistics.median(p.cpu_ms_per_text for p in inproc)
            passes = statistics.median(h.passes_per_request or 0 for h in http)
            c, b = shape
            print(
                f"{name:>8} c{c} b{b}: HTTP {rate_h:6.1f} texts/s p99 {p99_h:6.0f} ms "
                f"(floor x{p99_h / floor_ms(c, b, rate_h):.2f}, {passes:.1f} passes/req) | "
                f"in-process {rate_p:6.1f} texts/s p99 {p99_p:6.0f} ms (floor "
                f"x{p99_p / floor_ms(c, b, rate_p):.2f}) | HTTP/in-process {share:.2f} (rounds: "
                f"{', '.join(f'{r.share:.2f}' for r in per_round)}) | CPU ms/text HTTP server "
                f"{cpu_h:.1f} (event loop {loop_h:.2f}) + client {cpu_c:.1f}, in-process "
                f"{cpu_p:.1f} (event loop {loop_p:.2f})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
