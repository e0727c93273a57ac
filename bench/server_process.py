"""A real embedserve server for the benchmark: `embedserve serve` (or granian) as a subprocess.

Started in a session of its own, so stopping it ends its whole process group (granian's workers
included), whatever happens in between; its JSON log goes to a file the benchmark reads back.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = [
    "Server",
    "cpu_seconds",
    "embed_lines",
    "free_port",
    "loop_cpu_seconds",
    "processes_cpu_s",
    "rss_mb",
    "served",
    "source_tree",
]

_BIN = Path(sys.executable).parent
_BENCH = Path(__file__).resolve().parent
_ROOT = _BENCH.parent
_STARTUP_S = 180.0  # a first start on an empty home builds and times the fast engines' graphs
_STOP_S = 15.0
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Server:
    url: str
    pid: int
    log: Path
    started: float  # perf_counter() just before the process was started
    ready: float  # perf_counter() when it first answered


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _group(pgid: int) -> list[int]:
    """Every live process in the group: a server and any workers it forked."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the command: state, ppid, pgrp, ...
            found.append(int(entry.name))
    return found


def rss_mb(pgid: int) -> float:
    """Resident memory of the server's process group, in MB (10^6 bytes)."""
    total = 0
    for pid in _group(pgid):
        with suppress(OSError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    return total / 1e6


def cpu_seconds(pgid: int) -> float:
    """User + system CPU time the server's process group has used so far."""
    return processes_cpu_s(_group(pgid))


def loop_cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process's main thread, where the server's event loop runs
    (HTTP, routing, tokenizing short inputs): what the edge costs shows there, not in the
    runtime's threads. 0 once the process is gone."""
    with suppress(OSError):
        fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS
    return 0.0


def processes_cpu_s(pids: Iterable[int]) -> float:
    """User + system CPU time these processes have used so far (gone ones count 0)."""
    total = 0
    for pid in pids:
        with suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


def _command(port: int, home: Path, args: Sequence[str], stack: str) -> list[str]:
    if stack == "granian":
        return [
            str(_BIN / "granian"),
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--factory",
            "granian_app:app",
        ]
    return [str(_BIN / "embedserve"), "serve", "--port", str(port), "--home", str(home), *args]


def _wait(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            msg = f"server exited with {process.returncode}:\n{tail}"
            raise RuntimeError(msg)
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.02)
    msg = f"server did not answer within {_STARTUP_S}s"
    raise RuntimeError(msg)


def _stop(process: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=_STOP_S)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=_STOP_S)
    with suppress(ProcessLookupError):  # workers that outlived their parent
        os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def served(  # noqa: PLR0913 - what a server is started with, as keywords
    home: Path,
    log: Path,
    args: Sequence[str] = (),
    *,
    stack: str = "uvicorn",
    env: Mapping[str, str] | None = None,
    wait: bool = True,
    root: Path = _ROOT,
) -> Iterator[Server]:
    """The server on a free port of 127.0.0.1, JSON logs, offline; stopped on leaving.

    `stack="granian"` serves the same app (bench/granian_app.py) with granian instead of the
    console script's uvicorn; `args` then go to the app as EMBEDSERVE_* variables' defaults.
    `wait=False` yields at once (cold-start timing polls by itself). `root`: the source tree
    whose code the server runs (an A/B's side: `source_tree`).
    """
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "EMBEDSERVE_"))}
    extra = {
        "HF_HUB_OFFLINE": "1",
        "EMBEDSERVE_LOG_FORMAT": "json",
        "EMBEDSERVE_HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(_BENCH), str(root)]),
        "EMBEDSERVE_BENCH_ARGS": json.dumps(list(args)),
    }
    started = time.perf_counter()
    with log.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own console script or granian
            _command(port, home, args, stack),
            env=clean | extra | dict(env or {}),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=_BENCH,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        if wait:
            _wait(url, process, log)
        yield Server(url, process.pid, log, started, time.perf_counter())
    finally:
        _stop(process)


def source_tree(text: str) -> tuple[str, Path]:
    """`name=path` from a command line: a source tree a server runs (`served(root=...)`)."""
    name, _, path = text.partition("=")
    return name, Path(path).resolve()


def embed_lines(log: Path, since: int = 0) -> list[dict[str, object]]:
    """The canonical `embed` lines of the server's JSON log, from byte `since` on."""
    with log.open("rb") as f:
        f.seek(since)
        data = f.read().decode("utf-8", errors="replace")
    found = []
    for line in data.splitlines():
        if '"embed"' not in line:
            continue
        with suppress(ValueError):
            entry = json.loads(line)
            if entry.get("event") == "embed":
                found.append(entry)
    return found
