"""The benchmark, in one command: one table, one chart, one markdown file.

    .venv/bin/python bench/run.py            # the full run (~10-15 min on 2 quiet cores)
    .venv/bin/python bench/run.py --quick    # a smoke run: fewer texts, cells and starts

Sections (docs/benchmarks.md says what each row means):
  in-process  all-MiniLM-L6-v2 texts/s per engine vs sentence-transformers (engine_throughput)
  HTTP        the real server on 127.0.0.1: throughput and latency per load shape (http_load)
  edge        c16 x b1 and c4 x b32 over HTTP and straight into FrontDoor.embed, interleaved:
              HTTP / in-process is what the edge costs (edge_cost, front_door_load)
  static      Model2Vec on our numpy engine vs the model2vec library (static_families)
  architectures  one row set per architecture at its published widths, reduced depth: every
              engine in process and the server over HTTP vs sentence-transformers (architectures)
  rerank      a cross-encoder at ms-marco-MiniLM-L6-v2's widths, query x 100 documents: pairs/s
              of every engine in process and of /v1/rerank vs CrossEncoder.predict (rerank)
  start       cold start to the first embedding, and resident memory (cold_start)
  stack       uvicorn vs granian (and uvicorn with httptools+uvloop), JSON encoding costs
Every rate is also given as a ratio to sentence-transformers measured in the same run (HTTP
rows: divided too by a gauge of how much faster or slower the machine was at that moment).

Writes bench/results.md and bench/results.png (or --out DIR). `--extra-site DIR` names a
folder holding optional packages that are not dependencies (orjson, httptools, uvloop; install
them with `pip install --target DIR ...`): the stack section then measures them too.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
_ROOT = _BENCH.parent
for _path in (str(_ROOT), str(_BENCH)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import architectures  # noqa: E402
import cold_start  # noqa: E402 - bench/ and the repository root go on the path first
import edge_cost  # noqa: E402
import engine_throughput  # noqa: E402
import rerank  # noqa: E402
import static_families  # noqa: E402
from corpus import corpus, fingerprint  # noqa: E402
from front_door_load import FrontDoorRunner  # noqa: E402
from http_load import Cell, CellResult, run_cell, warm_up  # noqa: E402
from report import Row, draw_chart, environment, markdown, text_table  # noqa: E402
from server_process import Server, rss_mb, served  # noqa: E402
from serving_stack import json_costs  # noqa: E402

__all__ = ["main"]

_C1B1 = (1, 1)
_C16B1 = (16, 1)
_C4B32 = (4, 32)
_SHAPES = (_C1B1, _C16B1, _C4B32)
# an idle server gives memory back: the batcher after 1 s without requests
# (BatchSettings.release_after_idle_s), the heap 2 s after a large request (adapters/heap.py)
_SETTLE_S = 3.0


@dataclass(frozen=True, slots=True)
class ServerPlan:
    """One server configuration and the cells measured against it."""

    label: str
    args: tuple[str, ...] = ()
    cells: tuple[Cell, ...] = ()
    stack: str = "uvicorn"
    env: dict[str, str] = field(default_factory=dict)
    section: str = "HTTP"


@dataclass(slots=True)
class Context:
    texts: list[str]
    work: Path
    quick: bool
    cell_s: float
    extra_site: Path | None
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    st_rate: float | None = None  # sentence-transformers, sorted b32, in process
    reference: engine_throughput.Reference | None = None  # ST kept loaded: a load gauge
    drift: float | None = None  # the gauge around the current cell: > 1 faster than in-process
    bf16_rate: float | None = None  # OpenVINO bf16, sorted b32, in process

    def log(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')} load {_load()}] {text}", flush=True)


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f}/{five:.1f}"


def _cells(shapes: Sequence[tuple[int, int]], *wires: tuple[str, str]) -> tuple[Cell, ...]:
    return tuple(Cell(d, e, c, b) for (d, e) in wires for (c, b) in shapes)


_FLOAT = ("openai", "float")
_BASE64 = ("openai", "base64")
_OLLAMA = ("ollama", "")


# --- sections -----------------------------------------------------------------------------


def in_process(ctx: Context) -> None:
    budgets = engine_throughput.QUICK_BUDGETS_S if ctx.quick else engine_throughput.BUDGETS_S
    runs, ctx.reference = engine_throughput.measure(
        ctx.texts, ctx.work / "in-process", budgets_s=budgets, keep_reference=True, log=ctx.log
    )
    by_key = {(r.engine, r.order): r for r in runs}
    st = by_key.get((engine_throughput.ST, "sorted"))
    ctx.st_rate = st.texts_per_s if st else None
    bf16 = by_key.get(("openvino-bf16", "sorted"))
    ctx.bf16_rate = bf16.texts_per_s if bf16 else None
    ctx.rows += engine_throughput.rows_of(runs)


def _plans(ctx: Context) -> list[ServerPlan]:
    if ctx.quick:
        return [ServerPlan("default", cells=_cells(_SHAPES, _FLOAT))]
    plans = [
        ServerPlan("default", cells=_cells(_SHAPES, _FLOAT, _BASE64, _OLLAMA)),
        ServerPlan("--engine numpy", ("--engine", "numpy"), _cells(_SHAPES, _FLOAT)),
        ServerPlan("--precision bf16", ("--precision", "bf16"), _cells(_SHAPES, _FLOAT)),
        ServerPlan(
            "default, batching off (--max-batch-tokens 1)",
            ("--max-batch-tokens", "1"),
            _cells((_C16B1, _C4B32), _FLOAT),
        ),
    ]
    # uvicorn's own rows for the same cells are the HTTP section's (default, --engine numpy)
    stack_cells = _cells((_C16B1, _C4B32), _FLOAT)
    for engine in ("numpy", "auto"):
        args = ("--engine", engine)
        plans.append(
            ServerPlan(f"granian, --engine {engine}", args, stack_cells, "granian", section="stack")
        )
        if ctx.extra_site and engine == "auto":
            plans.append(
                ServerPlan(
                    f"uvicorn+httptools+uvloop, --engine {engine}",
                    args,
                    stack_cells,
                    env={"EMBEDSERVE_BENCH_EXTRA": str(ctx.extra_site)},
                    section="stack",
                )
            )
    return plans


def _chosen_engine(log: Path) -> str:
    import json

    for line in log.read_text(errors="replace").splitlines():
        if '"model_loaded"' in line:
            entry = json.loads(line)
            return f"{entry.get('engine')} {entry.get('precision')}"
    return "?"


def _http_target(ctx: Context, plan: ServerPlan, result: CellResult) -> tuple[str, str]:
    """(target and whether it was met, a note) for the cells the targets name."""
    cell = result.cell
    shape = (cell.concurrency, cell.batch)
    ratio = _ratio(ctx, result.texts_per_s)
    if cell.encoding != "float":
        return "", ""
    if plan.label == "default" and shape == _C4B32:
        return f">= 1.4x: {_met(ratio is not None and ratio >= 1.4)}", ""
    if plan.label == "default" and shape == _C16B1:
        p99 = result.percentile(0.99) or float("inf")
        met = ratio is not None and ratio >= 1.2 and p99 < 150
        return f">= 1.2x, p99 < 150 ms: {_met(met)}", ""
    if plan.label == "--precision bf16" and shape == _C4B32:
        share = result.texts_per_s / ctx.bf16_rate if ctx.bf16_rate else None
        note = "in-process bf16 unavailable" if share is None else f"{share:.0%} of in-process"
        verdict = "n/a here" if share is None else _met(share >= 0.8)
        return f">= 80% of in-process bf16: {verdict}", note
    return "", ""


def _ratio(ctx: Context, rate: float) -> float | None:
    """To in-process ST, and to the load of the moment: divided by the ST gauge's reading."""
    if not ctx.st_rate:
        return None
    return rate / ctx.st_rate / (ctx.drift or 1.0)


def _met(ok: bool) -> str:  # noqa: FBT001 - a verdict
    return "met" if ok else "MISSED"


def _http_row(ctx: Context, plan: ServerPlan, engine: str, result: CellResult) -> Row:
    rate = result.texts_per_s
    ratio = _ratio(ctx, rate)
    target, extra = _http_target(ctx, plan, result)
    notes = [f"{result.requests} requests", f"load {os.getloadavg()[0]:.1f}"]
    if ctx.drift and ctx.st_rate:
        raw = rate / ctx.st_rate
        notes.append(f"ST gauge {ctx.drift:.2f}, unadjusted {raw:.2f}x")
    if result.errors:
        notes.append(f"{result.errors} errors")
    if extra:
        notes.append(extra)
    value_parts = []
    if result.server_ms is not None and result.mean_ms is not None:
        value_parts.append(f"mean {result.mean_ms:.1f} ms, handler {result.server_ms:.1f} ms")
    if result.passes_per_request is not None:
        value_parts.append(f"{result.passes_per_request:.1f} passes/req")
    cores = (result.server_cpu_s / result.seconds, result.client_cpu_s / result.seconds)
    value_parts.append(f"CPU server {cores[0]:.2f} / client {cores[1]:.2f}")
    return Row(
        plan.section,
        f"{plan.label} [{engine}]: {result.cell.label}",
        rate,
        ratio,
        result.percentile(0.5),
        result.percentile(0.99),
        "; ".join(value_parts),
        target,
        ", ".join(notes),
    )


def _serve_plan(ctx: Context, plan: ServerPlan, n: int) -> None:
    log = ctx.work / f"server-{n}.log"
    env = dict(plan.env)
    extra = env.pop("EMBEDSERVE_BENCH_EXTRA", None)
    if extra:
        env["PYTHONPATH"] = os.pathsep.join([extra, str(_BENCH), str(_ROOT)])
    ctx.log(f"HTTP: {plan.label} ({plan.stack}) starting")
    server: Server
    with served(ctx.work / "home", log, plan.args, stack=plan.stack, env=env) as server:
        warm_up(server, ctx.texts)
        engine = _chosen_engine(log)
        # the load gauge is read just before and just after each cell (the server idle); the
        # row shows the mean, so a reader sees when the machine was busier than in-process
        before = ctx.reference.drift() if ctx.reference else None
        for cell in plan.cells:
            ctx.log(f"HTTP: {plan.label} [{engine}] {cell.label}")
            result = run_cell(server, ctx.texts, cell, ctx.cell_s)
            after = ctx.reference.drift() if ctx.reference else None
            ctx.drift = (before + after) / 2 if before and after else None
            ctx.rows.append(_http_row(ctx, plan, engine, result))
            before = after
        if plan.label == "default":
            _edge(ctx, server, plan, engine)
            busy = rss_mb(server.pid)
            time.sleep(_SETTLE_S)
            idle = rss_mb(server.pid)
            label = (
                f"RSS after the HTTP runs (default server, {engine}), {_SETTLE_S:.0f} s after the"
                f" last request ({busy:.0f} MB right after it)"
            )
            ctx.rows.append(
                Row(
                    "start",
                    label,
                    value=f"{idle:.0f} MB",
                    target=f"< 300 MB: {'met' if idle < 300 else 'MISSED'}",
                )
            )


def _edge(ctx: Context, server: Server, plan: ServerPlan, engine: str) -> None:
    """The edge section, against the default server: its HTTP cells interleaved with the same
    cells in process, on the same home (so the same engine)."""
    rounds = 1 if ctx.quick else 3
    cell_s = max(ctx.cell_s, 8.0)  # a c4 x b32 cell of 6 s holds a dozen requests
    ctx.log(f"edge: HTTP vs FrontDoor.embed in process, {rounds} rounds of {cell_s:.0f} s cells")
    runner = FrontDoorRunner(ctx.texts, ctx.work / "home", plan.args)
    try:
        if runner.engine != engine:
            ctx.notes.append(f"edge: in process ran {runner.engine}, the server {engine}")
        runs = edge_cost.measure_edge(
            server, runner, ctx.texts, cell_s=cell_s, rounds=rounds, log=ctx.log
        )
    finally:
        runner.close()
    ctx.rows += edge_cost.rows_of(runs, engine)


def http(ctx: Context) -> None:
    for n, plan in enumerate(_plans(ctx)):
        _guarded(ctx, f"HTTP {plan.label}", lambda p=plan, k=n: _serve_plan(ctx, p, k))  # type: ignore[misc]


def static(ctx: Context) -> None:
    ctx.log("static: Model2Vec, ours vs model2vec")
    ctx.rows += static_families.rows_of(static_families.measure(ctx.texts, ctx.work / "static"))  # type: ignore[arg-type]


def architectures_section(ctx: Context) -> None:
    texts = ctx.texts[: 64 if ctx.quick else 256]
    results = architectures.measure(texts, ctx.work / "architectures", quick=ctx.quick, log=ctx.log)
    ctx.rows += architectures.rows_of(results)


def rerank_section(ctx: Context) -> None:
    result = rerank.measure(ctx.texts, ctx.work / "rerank", quick=ctx.quick, log=ctx.log)
    ctx.rows += rerank.rows_of(result)


def start(ctx: Context) -> None:
    starts = 1 if ctx.quick else 3
    ctx.log(f"start: 1 + {starts} cold starts")
    first, later = cold_start.measure(ctx.work / "start", starts)
    ctx.rows += cold_start.rows_of(first, later)  # type: ignore[arg-type]


def stack(ctx: Context) -> None:
    ctx.log("stack: JSON encoding of 32 x 384 float32 vectors")
    if ctx.extra_site:
        sys.path.insert(0, str(ctx.extra_site))
    for e in json_costs():
        value = "n/a" if e.microseconds is None else f"{e.microseconds:,.0f} us per response"
        note = e.note or f"{e.size / 1024:,.0f} KiB"
        ctx.rows.append(Row("stack", f"encode: {e.name}", value=value, note=note))


_SECTIONS: dict[str, Callable[[Context], None]] = {
    "in-process": in_process,
    "static": static,
    "architectures": architectures_section,
    "rerank": rerank_section,
    "stack": stack,
    "http": http,
    "start": start,
}


def _guarded(ctx: Context, name: str, run: Callable[[], None]) -> None:
    """A section that fails leaves a row saying so; the rest of the run goes on."""
    try:
        run()
    except Exception as exc:  # noqa: BLE001 - a benchmark reports a failure and goes on
        traceback.print_exc()
        section = name.split(maxsplit=1)[0]
        ctx.rows.append(Row(section, f"{name}: FAILED", note=type(exc).__name__))
        ctx.notes.append(f"{name} failed: {type(exc).__name__}: {str(exc)[:300]}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run in about 2 minutes")
    parser.add_argument("--texts", type=int, default=None, help="corpus size (1024; quick 128)")
    parser.add_argument(
        "--cell-seconds", type=float, default=None, help="per HTTP cell (6; quick 3)"
    )
    parser.add_argument("--sections", default=",".join(_SECTIONS), help="comma-separated")
    parser.add_argument("--extra-site", type=Path, default=None, help="orjson/httptools/uvloop")
    parser.add_argument("--out", type=Path, default=_BENCH, help="where results.* go")
    args = parser.parse_args(argv)
    quick = bool(args.quick)
    texts = corpus(args.texts or (128 if quick else 1024))
    wanted = [s.strip() for s in args.sections.split(",") if s.strip()]
    started = time.perf_counter()
    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="embedserve-bench-") as tmp:
        ctx = Context(
            texts=texts,
            work=Path(tmp),
            quick=quick,
            cell_s=args.cell_seconds or (3.0 if quick else 6.0),
            extra_site=args.extra_site.resolve() if args.extra_site else None,
        )
        ctx.log(f"{len(texts)} texts, fingerprint {fingerprint(texts)}")
        try:
            for name in wanted:
                if name == "http":
                    http(ctx)  # each server is guarded on its own
                else:
                    _guarded(ctx, name, lambda n=name: _SECTIONS[n](ctx))  # type: ignore[misc]
        finally:
            if ctx.reference is not None:
                ctx.reference.close()
    minutes = (time.perf_counter() - started) / 60
    header = [
        *environment(),
        (
            f"corpus: {len(texts)} texts (bench/corpus.py, fingerprint {fingerprint(texts)}); "
            f"{'quick' if quick else 'full'} run, {minutes:.1f} min; HTTP cells of "
            f"{ctx.cell_s:.0f} s at most"
        ),
        (
            f"load average (1/5 min) at start {load_before}, at end {_load()}: the machine is "
            "shared; a load above the core count means other work took CPU from this run"
        ),
    ]
    print()
    print("\n".join(header))
    print(text_table(ctx.rows))
    for note in ctx.notes:
        print(f"- {note}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.md").write_text(markdown(ctx.rows, header, ctx.notes), encoding="utf-8")
    draw_chart(
        ctx.rows,
        args.out / "results.png",
        f"embedserve, all-MiniLM-L6-v2, {os.cpu_count()} cores: texts/s vs sentence-transformers",
    )
    print(f"wrote {args.out / 'results.md'} and {args.out / 'results.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
