"""The Ray Serve endpoint at 1 and 2 replicas against the plain server, on this one machine.

Each stack serves all-MiniLM-L6-v2 on the same engine, preloaded and warmed, and takes the same
cells from bench/http_load.py: c1 b1 (one request at a time: the latency Ray's proxy and router
add per request), c16 b1 (single-text bursts: how much the batcher still merges behind Ray)
and c4 b32 (batches). Replicas split the cores: 1 replica gets them all, 2 get one share each
(--replica-cpus, and so --threads). Ray's cluster is local and bound to 127.0.0.1, started by
the command and stopped with it; the CPU time of all its processes (raylet, proxy, replicas)
counts as the server's.

    .venv/bin/python bench/ray_serve.py [--quick] [--engine onnxruntime] [--write]

--write puts the table in bench/ray_serve_results.md. On a machine with one socket, replicas
add no cores: expect the honest result to be Ray's overhead, not a gain; the scaling note
says what the per-replica figures predict for N machines.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
_ROOT = _BENCH.parent
for _path in (str(_ROOT), str(_BENCH)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from corpus import corpus, fingerprint  # noqa: E402
from http_load import Cell, CellResult, run_cell, warm_up  # noqa: E402
from report import environment  # noqa: E402
from server_process import Server, free_port, processes_cpu_s, served  # noqa: E402

_MODEL = "all-MiniLM-L6-v2"
_CELLS = (
    Cell("openai", "float", 1, 1),
    Cell("openai", "float", 16, 1),
    Cell("openai", "float", 4, 32),
)
_STARTUP_S = 300.0
_STOP_S = 60.0
_RESULTS = _BENCH / "ray_serve_results.md"


@contextmanager
def ray_served(home: Path, log: Path, replicas: int, args: Sequence[str]) -> Iterator[Server]:
    """`embedserve ray serve` on a local cluster it starts, each replica given an equal share
    of the cores; stopped with SIGTERM (it takes its cluster down), killed if it hangs."""
    cpus = max(1, (os.cpu_count() or 1) // replicas)
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "EMBEDSERVE_"))}
    env = clean | {
        "HF_HUB_OFFLINE": "1",
        "EMBEDSERVE_LOG_FORMAT": "json",
        "PYTHONPATH": str(_ROOT),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # keep the local cluster on 127.0.0.1
    }
    command = [str(Path(sys.executable).with_name("embedserve")), "ray", "serve"]
    command += ["--replicas", str(replicas), "--replica-cpus", str(cpus), "--port", str(port)]
    command += ["--home", str(home), "--proxy-location", "HeadOnly", *args]
    out = log.with_suffix(".url")
    started = time.perf_counter()
    with out.open("wb") as stdout, log.open("wb") as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            command, env=env, stdout=stdout, stderr=stderr, start_new_session=True
        )
    try:
        url = _endpoint(process, out, log)
        yield Server(url, process.pid, log, started, time.perf_counter())
    finally:
        _stop(process)


def _endpoint(process: subprocess.Popen[bytes], out: Path, log: Path) -> str:
    deadline = time.monotonic() + _STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            msg = f"embedserve ray serve exited with {process.returncode}:\n{tail}"
            raise RuntimeError(msg)
        url = out.read_text().strip()
        if url:
            return url
        time.sleep(0.2)
    msg = f"embedserve ray serve printed no endpoint within {_STARTUP_S}s"
    raise RuntimeError(msg)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the command alone (it stops its cluster); the whole session if it hangs."""
    with suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=_STOP_S)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=_STOP_S)


def _warm(server: Server, texts: Sequence[str], replicas: int) -> None:
    """Every replica answers once per shape before the clock starts: Ray's router spreads the
    warm-up's concurrent requests over them."""
    for _ in range(replicas):
        warm_up(server, texts, _MODEL)
    cell = Cell("openai", "float", 4 * replicas, 1)
    run_cell(server, texts[: 16 * replicas], cell, budget_s=30.0)


def _tree(pid: int) -> list[int]:
    """The process and its descendants: Ray starts its raylet and workers in sessions of their
    own, so the process group that http_load counts misses them."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def _tree_cpu_s(pid: int) -> float:
    return processes_cpu_s(_tree(pid))


def _measure(
    server: Server, texts: Sequence[str], replicas: int, budget_s: float
) -> list[tuple[CellResult, float]]:
    """Each cell, with the CPU seconds the server's whole process tree spent on it (the
    cell's one untimed request included, for every stack alike)."""
    _warm(server, texts, replicas)
    measured = []
    for cell in _CELLS:
        before = _tree_cpu_s(server.pid)
        result = run_cell(server, texts, cell, budget_s)
        measured.append((result, _tree_cpu_s(server.pid) - before))
    return measured


def _row(stack: str, result: CellResult, cpu_s: float) -> str:
    p50, p99 = result.percentile(0.5), result.percentile(0.99)
    cpu_ms = cpu_s * 1e3 / result.texts if result.texts else 0.0
    return (
        f"| {stack} | {result.cell.label} | {result.texts_per_s:.0f} | {p50:.1f} | {p99:.1f} | "
        f"{cpu_ms:.2f} | {result.errors} |"
    )


def _overhead(plain: CellResult, one: CellResult) -> str:
    """Ray's cost per request: p50 at c1 b1, one replica with every core against the plain
    server (the same forward pass behind it)."""
    a, b = plain.percentile(0.5), one.percentile(0.5)
    if a is None or b is None:
        return "Ray's overhead per request: not measured"
    return (
        f"Ray's overhead per request (p50 at c1 b1, 1 replica against the plain server): "
        f"{b - a:+.1f} ms ({b:.1f} ms against {a:.1f} ms)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer texts, shorter cells")
    parser.add_argument("--engine", default="onnxruntime", help="the same for every stack")
    parser.add_argument("--write", action="store_true", help=f"write {_RESULTS.name}")
    args = parser.parse_args(argv)
    texts = corpus(256 if args.quick else 1024)
    budget_s = 5.0 if args.quick else 20.0
    server_args = ["--engine", args.engine, "--preload", _MODEL]
    results: dict[str, list[tuple[CellResult, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ray-serve-") as work:
        home = Path(work) / "home"  # shared: the ONNX graph is built once, by the first stack
        with served(home, Path(work) / "plain.log", server_args) as server:
            results["embedserve serve"] = _measure(server, texts, 1, budget_s)
        for replicas in (1, 2):
            log = Path(work) / f"ray-{replicas}.log"
            with ray_served(home, log, replicas, server_args) as server:
                name = f"Ray Serve, {replicas} replica{'s' if replicas > 1 else ''}"
                results[name] = _measure(server, texts, replicas, budget_s)
    lines = [
        "# Ray Serve against the plain server",
        "",
        *(f"- {line}" for line in environment()),
        f"- corpus: {len(texts)} texts (bench/corpus.py, fingerprint {fingerprint(texts)}); "
        f"engine {args.engine}; {budget_s:.0f} s per cell at most"
        + ("; --quick" if args.quick else ""),
        "- `python bench/ray_serve.py" + (" --quick" if args.quick else "") + "`",
        "",
        "| stack | cell | texts/s | p50 ms | p99 ms | server-side CPU ms/text | errors |",
        "|---|---|---|---|---|---|---|",
        *(_row(stack, r, cpu) for stack, rs in results.items() for r, cpu in rs),
        "",
        _overhead(results["embedserve serve"][0][0], results["Ray Serve, 1 replica"][0][0]),
        "",
    ]
    report = "\n".join(lines)
    sys.stdout.write(report)
    if args.write:
        _RESULTS.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
