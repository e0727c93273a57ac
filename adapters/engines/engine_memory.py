"""Engine choices remembered in `<home>/engine-choices.json`, per host.

A choice made by timing engines holds for the machine it was timed on: the file keys choices by
a fingerprint of the CPU, the core count and the runtimes' versions, so a copied home folder or
an upgraded runtime times the engines again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import tempfile
import threading
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import msgspec
import structlog

__all__ = ["JsonChoiceMemory", "host_fingerprint"]

log = structlog.get_logger(__name__)

# the file as a whole, then each host's slot: {"model|precision": "engine"}
_FILE = msgspec.json.Decoder(dict[str, msgspec.Raw])
_CHOICES = msgspec.json.Decoder(dict[str, str])
_ENCODER = msgspec.json.Encoder(order="sorted")

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
    """Choices in one JSON file: `{host: {model|precision: engine}}`.

    The file is state a person can edit or damage: whatever in it is not that shape is ignored
    with a warning (and dropped at the next write), and a file that cannot be read or written
    at all only means that choices are not remembered. It never fails a load.
    """

    def __init__(self, path: Path, host: str | None = None) -> None:
        self._path = path
        self._host = host or host_fingerprint()
        self._lock = threading.Lock()

    def recall(self, key: str) -> str | None:
        return self._read().get(self._host, {}).get(key)

    def remember(self, key: str, engine: str) -> None:
        with self._lock:
            data = self._read()
            data.setdefault(self._host, {})[key] = engine
            try:
                self._write(data)
            except OSError as err:  # a directory in its place, a read-only home
                log.warning("engine_choice_not_saved", path=str(self._path), reason=str(err))

    def _write(self, data: dict[str, dict[str, str]]) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # a whole file or the old one: a crash mid-write never leaves half a JSON document
        with tempfile.NamedTemporaryFile(
            "wb", dir=self._path.parent, delete=False, suffix=".tmp"
        ) as tmp:
            tmp.write(msgspec.json.format(_ENCODER.encode(data), indent=1))
        try:
            Path(tmp.name).replace(self._path)
        except OSError:
            Path(tmp.name).unlink(missing_ok=True)
            raise

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            return {}  # nothing chosen yet
        except OSError as err:
            log.warning("engine_choices_unreadable", path=str(self._path), reason=str(err))
            return {}
        try:
            hosts = _FILE.decode(raw)
        except msgspec.DecodeError as err:
            log.warning("engine_choices_ignored", path=str(self._path), reason=str(err))
            return {}
        # one host's slot in the wrong shape costs that host its choices, not every host
        valid = {}
        for host, slot in hosts.items():
            try:
                valid[host] = _CHOICES.decode(slot)
            except msgspec.DecodeError as err:
                log.warning(
                    "engine_choices_ignored", path=str(self._path), host=host, reason=str(err)
                )
        return valid
