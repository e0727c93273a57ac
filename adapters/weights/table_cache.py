"""A word2vec text file parsed once: its table (.npy) and its words (.txt) kept beside it.

glove-twitter-200's 1.2M x 200 text takes ~47 s to parse on two cores; the table it yields
loads from a .npy, memory-mapped, in well under a second. The copies live in the model's
folder under `.embedserve/` (so `rm` takes them with the model), named by the text file's name,
size and modification time: a changed file is parsed again. What is read back is checked
against the text file's own header (rows, width, dtype, word count); a damaged or mismatched
copy is treated as absent, with a warning, and written anew. A folder we cannot write in (an
installed package) is parsed every time, as before.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
import structlog

from domain.ops import Array

__all__ = ["cached_table", "cached_words", "keep_table", "keep_words"]

log = structlog.get_logger(__name__)

_FOLDER = ".embedserve"
_FORMAT = 1  # bumped when what is kept changes meaning


def _stem(source: Path) -> Path:
    stat = source.stat()
    return source.parent / _FOLDER / f"{source.name}.{stat.st_size}-{stat.st_mtime_ns}.v{_FORMAT}"


def cached_table(source: Path, count: int, dim: int) -> Array | None:
    """The kept [count, dim] float32 table, memory-mapped; None if there is none fit to use."""
    path = _stem(source).with_suffix(".npy")
    if not path.is_file():
        return None
    try:
        table = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        log.warning("word_table_copy_unreadable", path=str(path), error=str(exc))
        return None
    if table.shape != (count, dim) or table.dtype != np.float32:
        log.warning("word_table_copy_mismatched", path=str(path), shape=list(table.shape))
        return None
    return table


def cached_words(source: Path, count: int) -> list[str] | None:
    """The kept vocabulary, word i on line i; None if there is none fit to use."""
    path = _stem(source).with_suffix(".txt")
    if not path.is_file():
        return None
    try:
        # bytes, not read_text: its newline translation would split a word holding a \r
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("word_list_copy_unreadable", path=str(path), error=str(exc))
        return None
    words = text.split("\n") if text else []
    if len(words) != count:
        log.warning("word_list_copy_mismatched", path=str(path), words=len(words))
        return None
    return words


def keep_table(source: Path, table: Array) -> None:
    def fill(f: BinaryIO) -> None:
        np.save(f, np.ascontiguousarray(table, dtype=np.float32), allow_pickle=False)

    _write(source, ".npy", fill)


def keep_words(source: Path, words: list[str]) -> None:
    """Words never hold a line break (the text format splits on it), so one a line reads back."""
    _write(source, ".txt", lambda f: f.write("\n".join(words).encode("utf-8")))


def _write(source: Path, suffix: str, fill: Callable[[BinaryIO], object]) -> None:
    """Written whole under another name, then renamed: a reader sees all of it or none. Copies
    of earlier versions of the text file go."""
    target = _stem(source).with_suffix(suffix)
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    try:
        target.parent.mkdir(exist_ok=True)
        for old in target.parent.glob(f"{source.name}.*{suffix}"):
            if old != target:
                old.unlink(missing_ok=True)
        with partial.open("wb") as f:
            fill(f)
        partial.replace(target)
    except OSError as exc:
        with contextlib.suppress(OSError):  # the folder itself may be what failed
            partial.unlink(missing_ok=True)
        log.warning("word_table_copy_not_kept", path=str(target), error=str(exc))
