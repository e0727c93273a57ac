"""`embedserve ray serve` as users start it: the console script, as a subprocess, joined to the
tests' cluster; its endpoint read from the line it prints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

_STARTUP_S = 240.0  # two replicas importing the server on a busy 2-core machine
_STOP_S = 90.0


@dataclass(frozen=True, slots=True)
class RayServe:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> int:
        """SIGTERM, as a service manager stops it: its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=_STOP_S)


def start(args: Sequence[str], out: Path, log: Path) -> RayServe:
    """Started with HF_* and EMBEDSERVE_* variables cleared, offline; returns once the printed
    endpoint answers an embedding (the first request on each replica loads the model)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "EMBEDSERVE_"))}
    script = Path(sys.executable).with_name("embedserve")
    with out.open("wb") as stdout, log.open("wb") as stderr:
        process = subprocess.Popen(
            [str(script), "ray", "serve", *args],
            env=clean | {"HF_HUB_OFFLINE": "1", "EMBEDSERVE_LOG_FORMAT": "json"},
            stdout=stdout,
            stderr=stderr,
        )
    deadline = time.monotonic() + _STARTUP_S
    url = ""
    while not url:
        url = out.read_text().strip()
        _still_starting(process, log, deadline)
        time.sleep(0.2)
    body = {"model": "all-minilm", "input": "warm"}
    while True:
        _still_starting(process, log, deadline)
        try:
            if httpx.post(f"{url}/api/embed", json=body, timeout=60).status_code == 200:
                return RayServe(url, process, log)
        except httpx.TransportError:
            pass
        time.sleep(0.5)


def _still_starting(process: subprocess.Popen[bytes], log: Path, deadline: float) -> None:
    if process.poll() is not None:
        pytest.fail(f"embedserve ray serve exited with {process.returncode}:\n{_tail(log)}")
    if time.monotonic() > deadline:
        process.kill()
        process.wait()
        pytest.fail(f"embedserve ray serve did not answer within {_STARTUP_S}s:\n{_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-6000:]
