"""A PyTorch checkpoint (pytorch_model.bin) read as data: no pickle ever runs.

torch.save (since 1.6) writes a zip: `<archive>/data.pkl`, a pickle of the state dict whose
tensors name their storages by persistent id, `<archive>/data/<key>`, each storage's raw bytes,
and `<archive>/byteorder`. `_CheckpointUnpickler.find_class` resolves only the names in
`_ALLOWED`, each mapped to a constructor of this module that builds inert records; any other
global (os.system, builtins.eval, subprocess.Popen, a torch.nn module) is refused before anything
is called. `persistent_load` answers a storage's id with its bytes from the zip, and each tensor
is cut from its storage by offset, size and stride, so views and shared storages (tied weights)
come out as torch sees them.

Only a flat state dict is read (`model.state_dict()`: name -> tensor). A pickled nn.Module, a
nested dict ({"state_dict": ...}), and the legacy non-zip format are refused, as ValueError.
"""

from __future__ import annotations

import io
import pickle  # noqa: TID251 - subclassed only to restrict find_class; nothing it names is run
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

__all__ = ["read_torch_checkpoint"]

# what torch.save wrote first before 1.6: its magic number, pickled; such files are not zips
_LEGACY_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19"
_ByteOrder = Literal["<", ">"]
_BYTE_ORDERS: Mapping[bytes, _ByteOrder] = {b"little": "<", b"big": ">"}


class _StorageType(NamedTuple):
    dtype: str  # numpy's name for one element; "bfloat16", which numpy lacks, is read as uint16


class _Storage(NamedTuple):
    flat: np.ndarray[Any, Any]  # the elements, in the file's byte order
    bfloat16: bool


class _Tensor(NamedTuple):  # a tuple: the pickle can neither BUILD nor SETITEM into it
    array: np.ndarray[Any, Any]


class _StateDict(dict[object, object]):
    """collections.OrderedDict as a pickle builds it."""

    def __setstate__(self, _state: object) -> None:
        """Drop torch's `_metadata` (module versions): the tensors are all a reader needs."""


def _sizes(values: object) -> tuple[int, ...]:
    if not isinstance(values, tuple) or not all(type(n) is int and n >= 0 for n in values):
        raise pickle.UnpicklingError("a tensor with a malformed size or stride")
    return values


def _rebuild_tensor(
    storage: object, offset: object, size: object, stride: object, *_autograd: object
) -> _Tensor:
    """torch._utils._rebuild_tensor(_v2); v2 adds requires_grad and hooks, which data ignores."""
    if not isinstance(storage, _Storage) or type(offset) is not int or offset < 0:
        raise pickle.UnpicklingError("a tensor without a storage and offset")
    shape, steps = _sizes(size), _sizes(stride)
    flat = storage.flat
    if len(shape) != len(steps):
        raise pickle.UnpicklingError(f"a tensor of size {shape} with stride {steps}")
    last = offset + sum((n - 1) * s for n, s in zip(shape, steps, strict=True))
    if 0 not in shape and last >= flat.size:  # as_strided would read past the buffer
        msg = f"a tensor of size {shape}, stride {steps}, offset {offset} overruns its storage"
        raise pickle.UnpicklingError(f"{msg} of {flat.size} elements")
    view = np.lib.stride_tricks.as_strided(
        flat[offset:], shape, [s * flat.itemsize for s in steps], writeable=False
    )
    array = np.array(view, dtype=flat.dtype.newbyteorder("="), order="C")
    if storage.bfloat16:  # bfloat16 is the top half of a float32, so widening is exact
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return _Tensor(array)


def _rebuild_parameter(data: object, *_autograd: object) -> _Tensor:
    """torch._utils._rebuild_parameter: state_dict(keep_vars=True) saves nn.Parameters."""
    if not isinstance(data, _Tensor):
        raise pickle.UnpicklingError("a parameter without a tensor")
    return data


_STORAGE_TYPES = {
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "DoubleStorage": "float64",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128",
}


class _Constructor(NamedTuple):
    """A function as the pickle gets it: a tuple, so BUILD cannot set its attributes or defaults."""

    build: Callable[..., _Tensor]

    def __call__(self, *args: object) -> _Tensor:
        return self.build(*args)


# (module, name) a pickle may name -> what it gets instead: our constructors, never the original
_ALLOWED: Mapping[tuple[str, str], object] = {
    ("collections", "OrderedDict"): _StateDict,
    ("torch._utils", "_rebuild_tensor_v2"): _Constructor(_rebuild_tensor),
    ("torch._utils", "_rebuild_tensor"): _Constructor(_rebuild_tensor),
    ("torch._utils", "_rebuild_parameter"): _Constructor(_rebuild_parameter),
    **{("torch", name): _StorageType(dtype) for name, dtype in _STORAGE_TYPES.items()},
}


class _CheckpointUnpickler(pickle.Unpickler):
    def __init__(self, archive: zipfile.ZipFile, prefix: str, byteorder: _ByteOrder) -> None:
        super().__init__(io.BytesIO(archive.read(f"{prefix}data.pkl")))
        self._archive = archive
        self._prefix = prefix
        self._byteorder = byteorder
        self._storages: dict[tuple[_StorageType, str, int], _Storage] = {}  # tied weights: once

    def find_class(self, module_name: str, global_name: str, /) -> Any:
        allowed = _ALLOWED.get((module_name, global_name))
        if allowed is None:
            msg = f"the pickle names {module_name}.{global_name}, which is not allowed"
            if module_name.startswith("torch.nn."):
                msg += "; this is a whole pickled model, only a state dict is read"
            raise pickle.UnpicklingError(msg)
        return allowed

    def persistent_load(self, pid: Any) -> _Storage:
        match pid:  # what torch.save writes for each storage: ('storage', type, key, device, numel)
            case ("storage", _StorageType() as kind, str(key), _, int(numel)) if numel >= 0:
                if (kind, key, numel) not in self._storages:
                    self._storages[kind, key, numel] = self._read(kind, key, numel)
                return self._storages[kind, key, numel]
        raise pickle.UnpicklingError("a persistent id that is not a torch storage")

    def _read(self, kind: _StorageType, key: str, numel: int) -> _Storage:
        name = f"{self._prefix}data/{key}"
        bfloat16 = kind.dtype == "bfloat16"
        dtype = np.dtype("uint16" if bfloat16 else kind.dtype).newbyteorder(self._byteorder)
        try:
            size = self._archive.getinfo(name).file_size
        except KeyError:
            raise pickle.UnpicklingError(f"storage {key!r} is missing: no member {name}") from None
        if size != numel * dtype.itemsize:
            msg = f"storage {key!r} holds {size} bytes, not the {numel * dtype.itemsize} needed"
            raise pickle.UnpicklingError(f"{msg} for {numel} {kind.dtype} elements")
        return _Storage(np.frombuffer(self._archive.read(name), dtype=dtype), bfloat16)


def _state_dict(archive: zipfile.ZipFile) -> dict[str, np.ndarray[Any, Any]]:
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise pickle.UnpicklingError("a zip without one <archive>/data.pkl, not from torch.save")
    prefix = pickles[0].removesuffix("data.pkl")
    # torch 1.6 to 1.x wrote no byteorder, and was only used little-endian
    marked = archive.read(f"{prefix}byteorder") if f"{prefix}byteorder" in names else b"little"
    byteorder = _BYTE_ORDERS.get(marked)
    if byteorder is None:
        raise pickle.UnpicklingError(f"an unknown byte order {marked!r}")
    root = _CheckpointUnpickler(archive, prefix, byteorder).load()
    if not isinstance(root, dict):
        raise pickle.UnpicklingError("the pickle does not hold a state dict")
    tensors: dict[str, np.ndarray[Any, Any]] = {}
    for key, value in root.items():
        if not isinstance(key, str) or not isinstance(value, _Tensor):
            msg = f"{key!r} is not a tensor: only a flat state dict (name -> tensor) is read"
            raise pickle.UnpicklingError(msg)
        tensors[key] = value.array
    return tensors


def read_torch_checkpoint(path: Path) -> dict[str, np.ndarray[Any, Any]]:
    """The state dict torch.save wrote to `path`, as C-contiguous arrays; bfloat16 as float32."""
    with path.open("rb") as file:
        if file.read(len(_LEGACY_MAGIC)) == _LEGACY_MAGIC:
            msg = f"{path.name}: a legacy (non-zip) torch checkpoint; only the zip format"
            raise ValueError(f"{msg} torch.save writes since 1.6 is read")
        try:
            with zipfile.ZipFile(file) as archive:
                return _state_dict(archive)
        except Exception as exc:  # a malformed pickle raises almost anything; all is a refusal
            msg = f"{path.name}: refused as a torch checkpoint ({exc})"
            raise ValueError(msg) from exc
