"""safetensors files read memory-mapped, for models too large to copy on a whim.

A safetensors file is an 8-byte little-endian header length, a JSON header ({name: {dtype,
shape, data_offsets}}, plus `__metadata__`), then the tensors' bytes. Here the file is mapped
once and each float32 tensor is a view into the mapping: nothing is read until the forward pass
touches it, and the page cache, not the heap, holds it. bfloat16 and float16 tensors (how
decoder checkpoints ship: Qwen3-Embedding is bfloat16) are widened to float32 copies, the dtype
every engine computes in; numpy has no bfloat16, so it is widened by hand: its 16 bits are the
top half of a float32's.

A model split into shards (`model.safetensors.index.json` naming `model-0000N-of-0000M.safetensors`
files) reads as one mapping of every shard's tensors.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FLOAT32_BYTES",
    "INDEX",
    "SINGLE",
    "held_bytes",
    "read_header",
    "read_mapped",
    "weight_files",
]

SINGLE = "model.safetensors"
INDEX = "model.safetensors.index.json"
FLOAT32_BYTES = 4  # what every engine holds a weight in, whatever the file stores
_MAX_HEADER = 100 * 2**20  # safetensors' own limit on a header's length
_NUMPY: dict[str, np.dtype[Any]] = {
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "F64": np.dtype("<f8"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "BF16": np.dtype("<u2"),  # widened below
}


def weight_files(folder: Path) -> list[Path]:
    """The weights files of a folder: model.safetensors, else the shards its index names."""
    if (folder / SINGLE).is_file():
        return [folder / SINGLE]
    index = folder / INDEX
    if not index.is_file():
        msg = f"the model folder has no {SINGLE} (nor a {INDEX})"
        raise ValueError(msg)
    weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map")
    if not isinstance(weight_map, dict):
        msg = f"{INDEX} has no weight_map"
        raise ValueError(msg)  # noqa: TRY004 - a malformed file, reported as a load failure
    shards = sorted({str(name) for name in weight_map.values()})
    paths = [(folder / name).resolve() for name in shards]
    if any(not p.is_relative_to(folder.resolve()) for p in paths):
        msg = f"{INDEX} names a file outside the model"
        raise ValueError(msg)
    return paths


def read_header(head: bytes) -> dict[str, Any]:
    """The JSON header from a file's first bytes (at least 8 + its length of them)."""
    if len(head) < 8:  # noqa: PLR2004 - the length field's size
        msg = "a safetensors file shorter than its header length"
        raise ValueError(msg)
    length = int.from_bytes(head[:8], "little")
    if length > _MAX_HEADER or len(head) < 8 + length:
        msg = "a safetensors header longer than the bytes given"
        raise ValueError(msg)
    header = json.loads(head[8 : 8 + length])
    if not isinstance(header, dict):
        msg = "a safetensors header that is not a JSON object"
        raise ValueError(msg)  # noqa: TRY004 - a malformed file, reported as a load failure
    return header


def _header_of(path: Path) -> tuple[dict[str, Any], int]:
    with path.open("rb") as f:
        length = int.from_bytes(f.read(8), "little")
        if length > _MAX_HEADER:
            msg = f"{path.name} is not a safetensors file (header of {length} bytes)"
            raise ValueError(msg)
        return read_header(length.to_bytes(8, "little") + f.read(length)), 8 + length


def _tensors(path: Path) -> dict[str, np.ndarray[Any, Any]]:
    header, start = _header_of(path)
    size = path.stat().st_size
    mapped = np.memmap(path, dtype=np.uint8, mode="r") if size > start else None
    tensors: dict[str, np.ndarray[Any, Any]] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = _NUMPY.get(str(entry.get("dtype")))
        if dtype is None:
            msg = f"{path.name}: tensor {name!r} has dtype {entry.get('dtype')!r}, not read here"
            raise ValueError(msg)
        shape = tuple(int(n) for n in entry["shape"])
        begin, end = (start + int(n) for n in entry["data_offsets"])
        if end - begin != math.prod(shape) * dtype.itemsize or end > size or mapped is None:
            msg = f"{path.name}: tensor {name!r} does not fit its byte range"
            raise ValueError(msg)
        raw = mapped[begin:end].view(dtype).reshape(shape)
        tensors[name] = _widened(raw, str(entry["dtype"]))
    return tensors


def _widened(raw: np.ndarray[Any, Any], dtype: str) -> np.ndarray[Any, Any]:
    if dtype == "BF16":  # a bfloat16 is the top 16 bits of the float32 it rounds
        return (raw.astype(np.uint32) << np.uint32(16)).view(np.float32)
    if dtype == "F16":
        return raw.astype(np.float32)
    return raw  # float32 stays a view into the mapping; integers are the loader's to judge


def held_bytes(folder: Path) -> int | None:
    """Bytes the folder's safetensors weights take as float32, from their headers alone; None
    where the folder has none (a pickle-only checkpoint) or a header cannot be read."""
    try:
        headers = [_header_of(path)[0] for path in weight_files(folder)]
        shapes = [e["shape"] for h in headers for k, e in h.items() if k != "__metadata__"]
        return FLOAT32_BYTES * sum(math.prod(int(n) for n in shape) for shape in shapes)
    except (OSError, ValueError, KeyError, TypeError):  # unreadable: the load will say why
        return None


def read_mapped(folder: Path) -> dict[str, np.ndarray[Any, Any]]:
    """Every tensor of the folder's weights files, float32 ones memory-mapped."""
    tensors: dict[str, np.ndarray[Any, Any]] = {}
    for path in weight_files(folder):
        for name, tensor in _tensors(path).items():
            if name in tensors:
                msg = f"tensor {name!r} is in more than one shard"
                raise ValueError(msg)
            tensors[name] = tensor
    return tensors
