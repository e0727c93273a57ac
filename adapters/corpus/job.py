"""What one `embedserve batch` run asks for, and what kinds of file it reads and writes."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BatchJob", "InputKind", "OutputKind", "input_kind", "output_kind"]

# The OpenAI Batch API's files are read as text, one line per row, in this column: the name
# Ray Data's read_text gives it, so both runs hand the chunk code the same table.
LINE = "text"
EMBEDDING = "embedding"
ERROR = "error"
ROW = "__row"  # the row number, where the input has no id column to name rows by

_BATCH_KEYS = ('"custom_id"', '"body"')


class InputKind(enum.Enum):
    JSONL = "jsonl"
    CSV = "csv"
    PARQUET = "parquet"
    OPENAI_BATCH = "openai-batch"  # JSONL lines of {custom_id, method, url, body}


class OutputKind(enum.Enum):
    PARQUET = "parquet"  # the input's columns, `embedding` and `error`
    OPENAI_BATCH = "openai-batch"  # JSONL lines of {id, custom_id, response, error}


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchJob:
    """The request options every plain row gets; a Batch file's lines carry their own."""

    model: str
    text_field: str = "text"
    id_field: str = "id"
    dimensions: int | None = None
    prompt_name: str | None = None
    source: InputKind = InputKind.JSONL
    output: OutputKind = OutputKind.PARQUET


def input_kind(path: Path) -> InputKind:
    """By extension; a .jsonl whose first line is an OpenAI Batch request is one.

    Raises ValueError for an extension none of the readers take."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return InputKind.PARQUET
    if suffix == ".csv":
        return InputKind.CSV
    if suffix not in {".jsonl", ".json", ".ndjson"}:
        raise ValueError(f"{path.name}: give a .jsonl, .csv or .parquet file")
    with path.open(encoding="utf-8", errors="replace") as lines:
        first = next((line for line in lines if line.strip()), "")
    is_batch = all(key in first for key in _BATCH_KEYS)
    return InputKind.OPENAI_BATCH if is_batch else InputKind.JSONL


def output_kind(path: Path) -> OutputKind:
    """Raises ValueError for an extension none of the writers take."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return OutputKind.PARQUET
    if suffix in {".jsonl", ".ndjson"}:
        return OutputKind.OPENAI_BATCH
    raise ValueError(f"{path.name}: write a .parquet or a .jsonl (OpenAI Batch output) file")
