"""Engine choices remembered in `<home>/engine-choices.json`, per host.

A choice made by timing engines holds for the machine it was timed on: the file keys choices by
a fingerprint of the CPU, the core count and the runtimes' versions, so a copied home folder or
an upgraded runtime times the engines again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import tempfile
import threading
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["JsonChoiceMemory", "host_fingerprint"]

_RUNTIMES = ("onnxruntime", "onnxruntime-gpu", "openvino", "coremltools", "numpy")


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "-"


def host_fingerprint() -> str:
    facts = [platform.system(), platform.machine(), _cpu_name(), str(os.cpu_count())]
    facts += [f"{p}={_version(p)}" for p in _RUNTIMES]
    return hashlib.sha256("\n".join(facts).encode()).hexdigest()[:16]


class JsonChoiceMemory:
    def __init__(self, path: Path, host: str | None = None) -> None:
        self._path = path
        self._host = host or host_fingerprint()
        self._lock = threading.Lock()

    def recall(self, key: str) -> str | None:
        choice = self._read().get(self._host, {}).get(key)
        return choice if isinstance(choice, str) else None

    def remember(self, key: str, engine: str) -> None:
        with self._lock:
            data = self._read()
            data.setdefault(self._host, {})[key] = engine
            self._path.parent.mkdir(parents=True, exist_ok=True)
            # a whole file or the old one: a crash mid-write never leaves half a JSON document
            with tempfile.NamedTemporaryFile(
                "w", dir=self._path.parent, delete=False, suffix=".tmp", encoding="utf-8"
            ) as tmp:
                json.dump(data, tmp, indent=1, sort_keys=True)
            Path(tmp.name).replace(self._path)

    def _read(self) -> dict[str, dict[str, object]]:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # absent or unreadable: choose again
        return data if isinstance(data, dict) else {}
