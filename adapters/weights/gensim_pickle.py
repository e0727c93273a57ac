"""The vocabulary of a gensim KeyedVectors pickle, read as data: no pickle ever runs.

gensim's `KeyedVectors.save()` writes the object as a pickle and its large arrays beside it
(`<name>.vectors.npy`). A pickle is a program: every global it names is called or instantiated.
`_DataUnpickler.find_class` resolves only the names in `_ALLOWED`, each mapped to a constructor
of this module that builds inert records (`_Record`, `_ArrayRecord`, `_DtypeRecord`); any other
global (os.system, builtins.eval, subprocess.Popen, ...) is refused before anything is called,
and the refusal surfaces as ValueError (ModelUnavailable at the ports). Persistent ids, which
the standard Unpickler refuses by default, stay refused.

What the allow-list covers is what gensim 3 and 4 write: the KeyedVectors class (and gensim 3's
per-word Vocab records) and numpy arrays / dtypes / scalars, which numpy pickles through
`_reconstruct` (protocols 2-4) or `_frombuffer` (protocol 5). Arrays are rebuilt with
np.frombuffer from their raw bytes; object arrays (whose elements are more pickles) are refused.
"""

from __future__ import annotations

import io
import pickle  # noqa: TID251 - subclassed only to restrict find_class; nothing it names is run
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["read_gensim_vocabulary"]

_NUMERIC_KINDS = frozenset("biufc")  # bool, ints, floats, complex: raw bytes, no references


class _Record:
    """An instance of an allowed gensim class: nothing but the attributes its state gives it."""


class _DtypeRecord:
    def __init__(self, name: object, *_flags: object) -> None:  # numpy passes align, copy
        if not isinstance(name, str):
            raise pickle.UnpicklingError("a numpy dtype without a name")
        self.name = name
        self.byteorder = "|"

    def __setstate__(self, state: object) -> None:
        if isinstance(state, tuple) and len(state) > 1 and isinstance(state[1], str):
            self.byteorder = state[1]

    def to_numpy(self) -> np.dtype[Any]:
        dtype = np.dtype(self.name)
        if dtype.kind not in _NUMERIC_KINDS:
            raise pickle.UnpicklingError(f"numpy arrays of dtype {self.name!r} are refused")
        if self.byteorder == "<":
            return dtype.newbyteorder("<")
        if self.byteorder == ">":
            return dtype.newbyteorder(">")
        return dtype


class _ArrayRecord:
    """A numpy array rebuilt from its raw bytes; `array` holds it once the state arrives."""

    def __init__(self) -> None:
        self.array: np.ndarray[Any, Any] | None = None

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, tuple) or len(state) != 5:  # noqa: PLR2004 - numpy's state
            raise pickle.UnpicklingError("an array state numpy does not write")
        _version, shape, dtype, fortran, raw = state
        self.array = _array(raw, dtype, shape, "F" if fortran else "C")


def _array(raw: object, dtype: object, shape: object, order: object) -> np.ndarray[Any, Any]:
    if not isinstance(dtype, _DtypeRecord):
        raise pickle.UnpicklingError("an array without a numpy dtype")
    if not isinstance(raw, (bytes, bytearray)):
        raise pickle.UnpicklingError("an array whose elements are not raw bytes")
    if not isinstance(shape, tuple) or not all(isinstance(n, int) for n in shape):
        raise pickle.UnpicklingError("an array with a malformed shape")
    flat = np.frombuffer(bytes(raw), dtype=dtype.to_numpy())
    return flat.reshape(shape, order="F" if order == "F" else "C")


_NDARRAY = object()  # stands for numpy.ndarray, which numpy passes to _reconstruct


def _reconstruct(subtype: object, _shape: object, _typecode: object) -> _ArrayRecord:
    if subtype is not _NDARRAY:
        raise pickle.UnpicklingError("only plain numpy arrays are read")
    return _ArrayRecord()


def _frombuffer(raw: object, dtype: object, shape: object, order: object) -> _ArrayRecord:
    record = _ArrayRecord()
    record.array = _array(raw, dtype, shape, order)
    return record


def _scalar(dtype: object, raw: object = b"") -> object:
    if not isinstance(dtype, _DtypeRecord) or not isinstance(raw, bytes):
        raise pickle.UnpicklingError("a numpy scalar that is not a plain number")
    return np.frombuffer(raw, dtype=dtype.to_numpy(), count=1)[0].item()


def _numpy(module: str) -> dict[tuple[str, str], object]:
    return {
        (f"{module}.multiarray", "_reconstruct"): _reconstruct,
        (f"{module}.multiarray", "scalar"): _scalar,
        (f"{module}.numeric", "_frombuffer"): _frombuffer,
    }


# (module, name) a pickle may name -> what it gets instead: our constructors, never the original
_GENSIM = "gensim.models.keyedvectors"
_ALLOWED: Mapping[tuple[str, str], object] = {
    (_GENSIM, "KeyedVectors"): _Record,
    (_GENSIM, "Word2VecKeyedVectors"): _Record,  # gensim 3's name for it
    (_GENSIM, "Vocab"): _Record,  # gensim 3: one per word, holding its index and count
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _DtypeRecord,
    **_numpy("numpy.core"),  # numpy 1 writes numpy.core, numpy 2 numpy._core
    **_numpy("numpy._core"),
}


def _private_copy(allowed: object) -> object:
    """What the pickle gets for an allowed name: a fresh subclass or wrapper, so a BUILD
    opcode aimed at it (setting attributes, or a function's __defaults__) changes nothing of
    this module's for the rest of the process."""
    if isinstance(allowed, type):
        return type(allowed.__name__, (allowed,), {})
    if callable(allowed):
        constructor = allowed

        def call(*args: object) -> object:
            return constructor(*args)

        return call
    return allowed  # the ndarray marker: a bare object(), which takes no attributes


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module_name: str, global_name: str, /) -> Any:
        allowed = _ALLOWED.get((module_name, global_name))
        if allowed is None:
            msg = f"the pickle names {module_name}.{global_name}, which is not allowed"
            raise pickle.UnpicklingError(msg)
        return _private_copy(allowed)


def _vocabulary(root: object) -> list[str]:
    if not isinstance(root, _Record):
        raise pickle.UnpicklingError("the pickle does not hold a KeyedVectors object")
    state: dict[str, Any] = vars(root)
    for key in ("index_to_key", "index2word", "index2entity"):  # gensim 4, then gensim 3
        words = state.get(key)
        if isinstance(words, list) and all(isinstance(w, str) for w in words):
            return words
    vocab = state.get("vocab")  # gensim 3 without index2word: word -> Vocab(index=...)
    if isinstance(vocab, dict):
        at: Callable[[Any], object] = lambda record: vars(record).get("index")  # noqa: E731
        pairs = [(at(r), w) for w, r in vocab.items() if isinstance(r, _Record)]
        if len(pairs) == len(vocab) and all(isinstance(i, int) for i, _ in pairs):
            ordered = sorted(pairs, key=lambda p: p[0])  # type: ignore[arg-type,return-value]
            if [i for i, _ in ordered] == list(range(len(ordered))):
                return [str(w) for _, w in ordered]
    raise pickle.UnpicklingError("the KeyedVectors pickle holds no vocabulary list")


def read_gensim_vocabulary(path: Path) -> list[str]:
    """Row i of `<path>.vectors.npy` is the vector of word i of this list."""
    raw = path.read_bytes()
    try:
        return _vocabulary(_DataUnpickler(io.BytesIO(raw)).load())
    except Exception as exc:  # a malformed pickle raises almost anything; all of it is a refusal
        msg = f"{path.name}: refused as a gensim KeyedVectors pickle ({exc})"
        raise ValueError(msg) from exc
