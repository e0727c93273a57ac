"""The reference engine's answers to the parity probe, kept as .npy files beside the graphs.

An answer depends on the model's files, the probe's token ids and the code the reference runs:
the file name hashes all three (files by path, size and modification time; the code by the
contents of the domain package, the numpy engine's modules and the family table), so an edited
model, another tokenizer or a changed forward pass is a miss and the reference runs again.
Writes go to a temporary file renamed into place: a reader sees a whole answer or none.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np

import adapters.engines.numpy_ref
import adapters.families
import adapters.weights.model_folder
import adapters.weights.torch_checkpoint
import domain
from adapters.engines.partial_writes import PREFIX
from domain.ops import Array, IdArray

__all__ = ["NpyProbeAnswers"]

_SUFFIX = "-probe.npy"


@cache
def _reference_code() -> bytes:
    """Every source file the reference's vectors come from, by contents."""
    digest = hashlib.sha256(np.__version__.encode())
    sources = sorted(Path(domain.__file__).parent.rglob("*.py"))
    sources += [
        Path(m.__file__ or "")
        for m in (
            adapters.engines.numpy_ref,
            adapters.families,  # which reader and forward pass a family's answer comes from
            adapters.weights.model_folder,
            adapters.weights.torch_checkpoint,
        )
    ]
    for path in sources:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.digest()


def _key(folder: Path, probe: Sequence[tuple[IdArray, IdArray]]) -> str:
    digest = hashlib.sha256(_reference_code())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(folder)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    for ids, mask in probe:
        for part in (ids, mask):
            digest.update(repr(part.shape).encode())
            digest.update(np.ascontiguousarray(part, dtype=np.int64).tobytes())
    return digest.hexdigest()[:32]


class NpyProbeAnswers:
    def __init__(self, root: Path) -> None:
        self._root = root

    def recall(self, folder: Path, probe: Sequence[tuple[IdArray, IdArray]]) -> Array | None:
        path = self._root / f"{_key(folder, probe)}{_SUFFIX}"
        try:
            answer = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None  # absent or unreadable: the reference runs again
        rows = sum(len(ids) for ids, _ in probe)
        if answer.dtype != np.float32 or answer.ndim != 2 or len(answer) != rows:  # noqa: PLR2004
            return None
        return answer

    def remember(
        self, folder: Path, probe: Sequence[tuple[IdArray, IdArray]], answer: Array
    ) -> None:
        path = self._root / f"{_key(folder, probe)}{_SUFFIX}"
        with contextlib.suppress(OSError):  # a read-only home only costs the next load time
            self._root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(
                dir=self._root, prefix=PREFIX, suffix=".npy", delete=False
            ) as tmp:
                np.save(tmp, np.ascontiguousarray(answer, dtype=np.float32))
            Path(tmp.name).replace(path)
