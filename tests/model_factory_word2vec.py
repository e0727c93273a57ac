"""Small random word-vector models in the layouts GloVe / Word2Vec repos use, and hostile pickles.

- `write_word2vec_text`: jkrukowski/glove-twitter-N's layout, one `glove-twitter-N.txt` in
  word2vec text format (`count dim`, then `word v1 … vdim`), values written with repr-exact
  float32 text so a direct parse gives the same table.
- `write_gensim_keyed_vectors`: fse/glove-twitter-N's layout, `<name>.model` (a KeyedVectors
  pickle) beside `<name>.model.vectors.npy`. gensim is not installed: the pickle is written from
  stand-in classes registered for the time of the dump under gensim's module and class names,
  holding the attributes gensim 4 (`index_to_key`, `key_to_index`, numpy `expandos`) or gensim 3
  (`index2word`, `vocab` of Vocab records) pickles, so the bytes name what a real save names.
- `write_malicious_pickle`: the same layout whose pickle, when run, calls os.system or
  builtins.eval to create a marker file.

Public API: the three writers and `random_vectors`.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
import types
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from pathlib import Path

__all__ = [
    "random_vectors",
    "write_gensim_keyed_vectors",
    "write_malicious_pickle",
    "write_word2vec_text",
]

_GENSIM = "gensim.models.keyedvectors"


def random_vectors(count: int, dim: int, seed: int) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)


def write_word2vec_text(
    folder: Path, words: Sequence[str], vectors: np.ndarray[Any, Any], name: str
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    lines = [f"{len(words)} {vectors.shape[1]}"]
    lines += [
        w + " " + " ".join(repr(float(v)) for v in row)
        for w, row in zip(words, vectors, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class _KeyedVectors:
    pass


class _Vocab:
    def __init__(self, count: int, index: int) -> None:
        self.count = count
        self.index = index


@contextlib.contextmanager
def _as_gensim(**classes: type) -> Iterator[None]:
    """Make pickle name `classes` as gensim's own, as a real gensim save does."""
    packages = ("gensim", "gensim.models", _GENSIM)
    if any(p in sys.modules for p in packages):
        raise RuntimeError("a real gensim is imported: write with it instead")
    modules = {p: types.ModuleType(p) for p in packages}
    for name, cls in classes.items():
        cls.__module__, cls.__qualname__ = _GENSIM, name
        setattr(modules[_GENSIM], name, cls)
    sys.modules.update(modules)
    try:
        yield
    finally:
        for p in packages:
            del sys.modules[p]


def write_gensim_keyed_vectors(  # noqa: PLR0913 - the gensim version and protocol vary
    folder: Path,
    words: Sequence[str],
    vectors: np.ndarray[Any, Any],
    name: str,
    *,
    gensim: Literal[3, 4] = 4,
    protocol: int = 4,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    kv = _KeyedVectors()
    counts = np.arange(len(words), 0, -1, dtype=np.int64)
    state: dict[str, Any] = {
        "vector_size": vectors.shape[1],
        "vectors": None,  # saved beside the pickle, as gensim does for large arrays
        "norms": None,
        "mapfile_path": None,
        "__numpys": ["vectors"],
        "__scipys": [],
        "__ignoreds": [],
        "__recursive_saves": [],
    }
    if gensim == 4:
        state |= {
            "index_to_key": list(words),
            "key_to_index": {w: i for i, w in enumerate(words)},
            "next_index": len(words),
            "expandos": {"count": counts},
        }
    else:
        state |= {
            "index2word": list(words),
            "vocab": {w: _Vocab(int(counts[i]), i) for i, w in enumerate(words)},
            "vectors_norm": None,
        }
    kv.__dict__.update(state)
    path = folder / name
    classes: dict[str, type] = {"KeyedVectors" if gensim == 4 else "Word2VecKeyedVectors": type(kv)}
    if gensim == 3:
        classes["Vocab"] = _Vocab
    with _as_gensim(**classes):
        path.write_bytes(pickle.dumps(kv, protocol=protocol))
    np.save(folder / f"{name}.vectors.npy", vectors)
    return path


class _Exploit:
    def __init__(self, how: Literal["os.system", "builtins.eval"], marker: Path) -> None:
        self.how = how
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        if self.how == "os.system":
            return (os.system, (f"touch {self.marker}",))
        code = f"open({str(self.marker)!r}, 'w').close()"
        return (eval, (code,))


def write_malicious_pickle(
    folder: Path, how: Literal["os.system", "builtins.eval"], marker: Path, name: str
) -> Path:
    """A gensim-layout folder whose pickle would create `marker` if it were ever run."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(pickle.dumps({"index_to_key": ["a"], "payload": _Exploit(how, marker)}))
    np.save(folder / f"{name}.vectors.npy", random_vectors(1, 4, seed=0))
    return path
