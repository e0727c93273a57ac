"""The real server as users start it: the console script, as a subprocess on 127.0.0.1."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

_STARTUP_S = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    pytest.fail(f"server did not answer within {_STARTUP_S}s:\n{log.read_text()}")


def _descriptor_limit(limit: int | None) -> Callable[[], None] | None:
    """Run in the child before exec: a lower limit on open descriptors, soft and hard."""
    if limit is None:
        return None
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


@contextmanager
def running_server(
    home: Path, log: Path, env: Mapping[str, str], *, max_descriptors: int | None = None
) -> Iterator[str]:
    """`embedserve serve`, its HF_* and EMBEDSERVE_* variables cleared, plus `env`: its URL.
    `max_descriptors` lowers the process's limit on open descriptors (RLIMIT_NOFILE)."""
    port = _free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "EMBEDSERVE_"))}
    script = Path(sys.executable).with_name("embedserve")
    command = [str(script), "serve", "--port", str(port), "--home", str(home)]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            env=clean | dict(env),
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=_descriptor_limit(max_descriptors),  # noqa: PLW1509 - it only calls setrlimit
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
