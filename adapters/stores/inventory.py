"""Facts about models on disk (size, digest, parameters) that the model listings report."""

from __future__ import annotations

import hashlib
import json
import math
import struct
from datetime import UTC, datetime
from pathlib import Path

from domain.models import ModelSpec
from domain.ports import FolderFacts, ModelStore

__all__ = ["Inventory", "parameter_count"]


def parameter_count(weights: Path) -> int:
    """Parameters in a safetensors file, from its header alone."""
    with weights.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    return sum(math.prod(entry["shape"]) for key, entry in header.items() if key != "__metadata__")


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _facts(folder: Path) -> FolderFacts:
    files = [p for p in folder.rglob("*") if p.is_file()]
    weights = folder / "model.safetensors"
    has_weights = weights.is_file()
    return FolderFacts(
        size=sum(p.stat().st_size for p in files),
        modified=datetime.fromtimestamp(max((p.stat().st_mtime for p in files), default=0), UTC),
        digest=_sha256(weights)
        if has_weights
        else hashlib.sha256(str(folder).encode()).hexdigest(),
        parameters=parameter_count(weights) if has_weights else 0,
    )


class Inventory:
    """What the models in a store weigh on disk (a ModelFacts). Facts are cached per folder.

    Hashing weights takes a while the first time: callers on an event loop use a thread.
    """

    def __init__(self, store: ModelStore) -> None:
        self._store = store
        self._cache: dict[tuple[Path, float], FolderFacts] = {}

    def facts(self, spec: ModelSpec) -> FolderFacts | None:
        folder = self._store.locate(spec)
        if folder is None:
            return None
        key = (folder, folder.stat().st_mtime)
        if key not in self._cache:
            self._cache[key] = _facts(folder)
        return self._cache[key]
