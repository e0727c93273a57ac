"""Reading a corpus in chunks and writing the answers as they come, in this process: memory
holds a chunk or two, whatever the corpus's size."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Self

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from adapters.corpus.job import LINE, ROW, BatchJob, InputKind, OutputKind

__all__ = ["OutputFile", "chunks", "count_rows"]

_READ_BLOCK = 1 << 20  # bytes the JSON and CSV readers parse at a time


def count_rows(path: Path, kind: InputKind) -> int | None:
    """Rows in the input, for the progress bar; None where only a full parse would tell (a CSV
    field may hold line breaks)."""
    if kind is InputKind.PARQUET:
        return int(pq.ParquetFile(path).metadata.num_rows)
    if kind is InputKind.CSV:
        return None
    with path.open("rb") as lines:
        return sum(1 for line in lines if line.strip())


def chunks(path: Path, job: BatchJob, size: int) -> Iterator[pa.Table]:
    """The input in tables of `size` rows (the last may be shorter), in order; a row number
    column where the output names rows and the input has no id column."""
    number = 0
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in _batches(path, job.source):
        pending.append(batch)
        held += batch.num_rows
        while held >= size:
            table = pa.Table.from_batches(pending)
            pending, held = list(table.slice(size).to_batches()), held - size
            yield _numbered(table.slice(0, size), job, number)
            number += size
    if held:
        yield _numbered(pa.Table.from_batches(pending), job, number)


def _batches(path: Path, kind: InputKind) -> Iterator[pa.RecordBatch]:
    match kind:
        case InputKind.PARQUET:
            yield from pq.ParquetFile(path).iter_batches()
        case InputKind.CSV:
            yield from pa_csv.open_csv(
                path, read_options=pa_csv.ReadOptions(block_size=_READ_BLOCK)
            )
        case InputKind.JSONL:
            yield from pa_json.open_json(
                path, read_options=pa_json.ReadOptions(block_size=_READ_BLOCK)
            )
        case InputKind.OPENAI_BATCH:
            yield from _lines(path)


def _lines(path: Path, per_batch: int = 1024) -> Iterator[pa.RecordBatch]:
    """Each non-blank line as text, as Ray Data's read_text gives them."""
    held: list[str] = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                held.append(line.rstrip("\r\n"))
            if len(held) == per_batch:
                yield pa.record_batch({LINE: held})
                held = []
    if held:
        yield pa.record_batch({LINE: held})


def _numbered(table: pa.Table, job: BatchJob, first: int) -> pa.Table:
    names_rows = job.output is OutputKind.OPENAI_BATCH and job.source is not InputKind.OPENAI_BATCH
    if not names_rows or job.id_field in table.column_names:
        return table
    return table.append_column(ROW, pa.array(range(first, first + table.num_rows), pa.int64()))


class OutputFile:
    """Parquet row groups, or Batch output lines, appended as chunks are answered, under a
    `.partial` name until the last one is: a run that stops leaves no file that looks whole."""

    def __init__(self, path: Path, kind: OutputKind) -> None:
        self._path = path
        self._partial = path.with_name(path.name + ".partial")
        self._kind = kind
        self._parquet: pq.ParquetWriter | None = None
        self._text: IO[str] | None = None

    def __enter__(self) -> Self:
        if self._kind is OutputKind.OPENAI_BATCH:
            self._text = self._partial.open("w", encoding="utf-8")
        return self

    def __exit__(self, failed: type[BaseException] | None, *_: object) -> None:
        if self._parquet is not None:
            self._parquet.close()
        if self._text is not None:
            self._text.close()
        if failed is not None:
            self._partial.unlink(missing_ok=True)
        elif self._parquet is None and self._text is None:  # no row: an empty file still says so
            pq.write_table(pa.table({}), self._partial)
            self._partial.replace(self._path)
        else:
            self._partial.replace(self._path)

    def write(self, answers: pa.Table) -> None:
        if self._text is not None:
            self._text.writelines(line + "\n" for line in answers.column(LINE).to_pylist())
            return
        if self._parquet is None:  # the first chunk's schema is the file's
            self._parquet = pq.ParquetWriter(self._partial, answers.schema)
        self._parquet.write_table(answers)
