"""What the HTTP edge costs: the same cells over HTTP and straight into FrontDoor.embed.

For each shape (c16 x b1 and c4 x b32, /v1 float, corpus order) the benchmark runs an HTTP cell
against the real server (bench/http_load.py) and the same cell in process against the same
engine (bench/front_door_load.py), alternating, `rounds` times, so noise on a shared machine hits
both; each side's median round is reported. HTTP / in-process is the edge's share of the speed.
The latency target compares p99 with the queueing floor: with c clients always waiting, a
request takes on average c x b / rate seconds (Little's law) at any rate the server can reach.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from front_door_load import FrontDoorRunner, InProcessResult
from http_load import Cell, CellResult, run_cell
from report import Row
from server_process import Server

__all__ = ["EDGE_SHAPES", "EdgeRun", "measure_edge", "rows_of"]

EDGE_SHAPES = ((16, 1), (4, 32))
_T = TypeVar("_T")
_SHARE_TARGET = 0.95  # HTTP texts/s over in-process texts/s
_FLOOR_TARGET = 1.25  # c16 x b1 p99 over the queueing floor


@dataclass(frozen=True, slots=True)
class EdgeRun:
    shape: tuple[int, int]
    http: tuple[CellResult, ...]
    in_process: tuple[InProcessResult, ...]

    def median_http(self) -> CellResult:
        return _median(self.http, lambda r: r.texts_per_s)

    def median_in_process(self) -> InProcessResult:
        return _median(self.in_process, lambda r: r.texts_per_s)

    @property
    def share(self) -> float:
        """Median of the rounds' HTTP / in-process ratios (each pair ran back to back)."""
        ratios = [
            h.texts_per_s / p.texts_per_s
            for h, p in zip(self.http, self.in_process, strict=True)
            if p.texts_per_s
        ]
        return statistics.median(ratios) if ratios else 0.0

    @property
    def cpu_share(self) -> float:
        """Median of the rounds' in-process / HTTP CPU time per text: 1.0, HTTP costs nothing."""
        ratios = [
            p.cpu_ms_per_text / h.cpu_ms_per_text
            for h, p in zip(self.http, self.in_process, strict=True)
            if h.cpu_ms_per_text
        ]
        return statistics.median(ratios) if ratios else 0.0


def _median(runs: Sequence[_T], key: Callable[[_T], float]) -> _T:
    ordered = sorted(runs, key=key)
    return ordered[(len(ordered) - 1) // 2]


def floor_ms(concurrency: int, batch: int, rate: float) -> float:
    """The mean latency of `concurrency` clients that always wait (Little's law): c x b / rate."""
    return concurrency * batch / rate * 1e3 if rate else float("inf")


def measure_edge(  # noqa: PLR0913 - the two sides and how long to run them
    server: Server,
    runner: FrontDoorRunner,
    texts: Sequence[str],
    *,
    cell_s: float,
    rounds: int,
    log: Callable[[str], None] = print,
    shapes: Sequence[tuple[int, int]] = EDGE_SHAPES,
) -> list[EdgeRun]:
    """Per round and shape: in process, then HTTP (the order alternates between rounds)."""
    http: dict[tuple[int, int], list[CellResult]] = {s: [] for s in shapes}
    inproc: dict[tuple[int, int], list[InProcessResult]] = {s: [] for s in shapes}
    for n in range(rounds):
        for c, b in shapes:
            cell = Cell("openai", "float", c, b)
            first_http = n % 2 == 1
            if first_http:
                http[c, b].append(run_cell(server, texts, cell, cell_s))
            inproc[c, b].append(runner.run(c, b, cell_s))
            if not first_http:
                http[c, b].append(run_cell(server, texts, cell, cell_s))
            h, p = http[c, b][-1], inproc[c, b][-1]
            log(
                f"edge round {n + 1}/{rounds} c{c} b{b}: HTTP {h.texts_per_s:.1f} texts/s "
                f"p99 {h.percentile(0.99) or 0:.0f} ms, in-process {p.texts_per_s:.1f} texts/s "
                f"p99 {p.percentile(0.99) or 0:.0f} ms, load {os.getloadavg()[0]:.1f}"
            )
    return [EdgeRun(s, tuple(http[s]), tuple(inproc[s])) for s in shapes]


def _side_row(  # noqa: PLR0913 - one side of one shape, as the table shows it
    engine: str,
    shape: tuple[int, int],
    label: str,
    *,
    rate: float,
    latencies: tuple[float | None, float | None],
    passes: float | None,
    extra: str = "",
) -> Row:
    (c, b), (p50, p99) = shape, latencies
    floor = floor_ms(c, b, rate)
    value = f"p99 / floor ({c * b} / rate = {floor:.0f} ms) {(p99 or 0) / floor:.2f}"
    if passes is not None:
        value += f"; {passes:.1f} passes/req"
    target = ""
    if shape == (16, 1) and label.startswith("over HTTP"):
        met = (p99 or float("inf")) <= _FLOOR_TARGET * floor
        target = f"p99 <= {_FLOOR_TARGET} x floor: {'met' if met else 'MISSED'}"
    measurement = f"[{engine}] c{c} b{b} corpus order, {label}"
    return Row("edge", measurement, rate, None, p50, p99, value + extra, target)


def rows_of(runs: Sequence[EdgeRun], engine: str) -> list[Row]:
    rows = []
    for run in runs:
        c, b = run.shape
        h, p = run.median_http(), run.median_in_process()
        rounds = len(run.http)
        cores = h.server_cpu_s / h.seconds, h.client_cpu_s / h.seconds
        cpu = (
            f"; CPU {h.cpu_ms_per_text:.1f} ms/text; cores: server {cores[0]:.2f} / client "
            f"{cores[1]:.2f}"
        )
        rows += [
            _side_row(
                engine,
                run.shape,
                f"in process (FrontDoor.embed, no HTTP), median of {rounds}",
                rate=p.texts_per_s,
                latencies=(p.percentile(0.5), p.percentile(0.99)),
                passes=p.passes_per_request,
                extra=f"; CPU {p.cpu_ms_per_text:.1f} ms/text",
            ),
            _side_row(
                engine,
                run.shape,
                f"over HTTP (/v1 float), median of {rounds}",
                rate=h.texts_per_s,
                latencies=(h.percentile(0.5), h.percentile(0.99)),
                passes=h.passes_per_request,
                extra=cpu,
            ),
        ]
        share = run.share
        rows.append(
            Row(
                "edge",
                f"[{engine}] c{c} b{b}: HTTP / in process (median of {rounds} back-to-back pairs)",
                value=f"{share:.2f} (CPU per text: in process / HTTP {run.cpu_share:.2f})",
                target=f">= {_SHARE_TARGET:.0%}: {'met' if share >= _SHARE_TARGET else 'MISSED'}",
            )
        )
    return rows
