"""Facts about models on disk (size, digest, parameters) that the model listings report."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from safetensors import SafetensorError, safe_open

from domain.models import ModelSpec
from domain.ports import FolderFacts, ModelStore

__all__ = ["Damaged", "Inventory", "parameter_count"]

_WEIGHTS = "model.safetensors"


@dataclass(frozen=True, slots=True)
class Damaged:
    """Why a weights file cannot be read, in words a listing can show (no paths)."""

    reason: str


def parameter_count(weights: Path) -> int | Damaged:
    """Parameters in a safetensors file, from its header alone; or why the header is damaged.

    safetensors' own reader checks the header (its length against the file, JSON, every shape
    and data type against its byte range), as the engines would when they load it.
    """
    try:
        with safe_open(weights, framework="np") as f:
            return sum(math.prod(f.get_slice(name).get_shape()) for name in f.keys())  # noqa: SIM118 - not a dict
    except SafetensorError as err:
        return Damaged(f"{weights.name} is not a valid safetensors file: {err}")
    except OSError as err:  # its own error text names the path, which listings never show
        return Damaged(f"{weights.name} cannot be read: {err.strerror}")


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _facts(folder: Path) -> FolderFacts:
    """What can be known of a folder; one damaged file is reported, never raised."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    size = sum(p.stat().st_size for p in files)
    modified = datetime.fromtimestamp(max((p.stat().st_mtime for p in files), default=0), UTC)
    weights = folder / _WEIGHTS
    placeholder = hashlib.sha256(str(folder).encode()).hexdigest()
    if not weights.is_file():
        return FolderFacts(size, modified, placeholder, parameters=0)
    counted = parameter_count(weights)
    parameters, damaged = (0, counted.reason) if isinstance(counted, Damaged) else (counted, None)
    try:
        digest = _sha256(weights)  # a damaged file's bytes still name it
    except OSError as err:
        digest, damaged = placeholder, damaged or f"{weights.name} cannot be read: {err.strerror}"
    return FolderFacts(size, modified, digest, parameters, damaged)


class Inventory:
    """What the models in a store weigh on disk (a ModelFacts). Facts are cached per folder.

    Hashing weights takes a while the first time: callers on an event loop use a thread.
    """

    def __init__(self, store: ModelStore) -> None:
        self._store = store
        self._cache: dict[tuple[Path, int, tuple[int, int] | None], FolderFacts] = {}

    def facts(self, spec: ModelSpec) -> FolderFacts | None:
        folder = self._store.locate(spec)
        if folder is None:
            return None
        # the weights too: a file rewritten in place (damaged, or repaired) leaves the folder's
        # own time as it was
        weights = folder / _WEIGHTS
        key = (folder, folder.stat().st_mtime_ns, _identity(weights))
        if key not in self._cache:
            self._cache[key] = _facts(folder)
        return self._cache[key]
