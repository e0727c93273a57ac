"""`embedserve batch --ray`: a corpus on Ray Data. Read as Ray Data reads files, embedded by a
pool of actors that each hold the application (built once, as `embedserve serve` builds it)
and run the same chunk code as the run in process, written as Ray Data writes: one file per
write task, in a folder.

Fault tolerance is Ray Data's: Ray 2.60 gives an actor pool's actors `max_restarts=-1` (an
actor that dies is started again) and `max_task_retries=-1` (the batches it held are retried)
unless map_batches is told otherwise (ActorPoolMapOperator._apply_default_remote_args). They
are not repeated here: passed as extra arguments they draw Ray's deprecation warning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import ray
from ray.data.block import BlockAccessor
from ray.data.datasource import BlockBasedFileDatasink

from adapters.corpus.chunks import ChunkEmbedder
from adapters.corpus.job import LINE, BatchJob, InputKind, OutputKind
from adapters.on_ray.cluster import join, leave, threads_as_assigned
from adapters.settings import Settings

__all__ = ["embed_on_ray"]


class _Embedding:
    """One actor of the pool: the application, built once, answers chunk after chunk."""

    def __init__(self, settings: Settings, job: BatchJob) -> None:
        self._embedder = ChunkEmbedder(threads_as_assigned(settings))
        self._job = job

    def __call__(self, chunk: pa.Table) -> pa.Table:
        return self._embedder.embed(chunk, self._job)


class _LinesDatasink(BlockBasedFileDatasink):
    """The Batch output's lines as they are, serialised by the actors: Ray's own write_json
    goes through pandas, which rounds floats to 10 digits."""

    def __init__(self, path: str) -> None:
        super().__init__(path, file_format="jsonl")

    def write_block_to_file(self, block: BlockAccessor, file: Any) -> None:
        lines = block.to_arrow().column(LINE).to_pylist()
        file.write("".join(line + "\n" for line in lines).encode())


# Reading and writing ask for no CPU: the actors hold every CPU they are given (a pool as
# large as the cluster's CPUs by default), and a read task waiting for a CPU would wait for ever.
_IO = 0


def _read(path: Path, kind: InputKind) -> ray.data.Dataset:
    match kind:
        case InputKind.PARQUET:
            return ray.data.read_parquet(str(path), num_cpus=_IO)
        case InputKind.CSV:
            return ray.data.read_csv(str(path), num_cpus=_IO)
        case InputKind.JSONL:
            return ray.data.read_json(str(path), lines=True, num_cpus=_IO)
        case InputKind.OPENAI_BATCH:  # as text: ragged bodies would break schema inference
            return ray.data.read_text(str(path), num_cpus=_IO)


def embed_on_ray(  # noqa: PLR0913 - the command's options
    source: Path,
    output: Path,
    job: BatchJob,
    settings: Settings,
    *,
    address: str | None,
    actors: int | None,
    batch_size: int,
) -> None:
    """Raises ValueError for an input the job cannot read (no text column, no id column to
    name rows by)."""
    join(address)
    try:
        ray.data.DataContext.get_current().execution_options.preserve_order = True
        rows = _read(source, job.source)
        _check_columns(rows.columns() or [], job)
        cpus = ray.cluster_resources().get("CPU", 1)  # type: ignore[no-untyped-call]
        size = actors or max(1, int(cpus))
        answered = rows.map_batches(
            _Embedding,
            fn_constructor_args=(settings, job),
            batch_size=batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=size),
            num_cpus=1,
        )
        if job.output is OutputKind.PARQUET:
            answered.write_parquet(str(output), ray_remote_args={"num_cpus": _IO})
        else:
            answered.write_datasink(_LinesDatasink(str(output)), ray_remote_args={"num_cpus": _IO})
    finally:
        leave()


def _check_columns(columns: list[str], job: BatchJob) -> None:
    if job.source is InputKind.OPENAI_BATCH:
        return
    if job.text_field not in columns:
        raise ValueError(f"the input has no `{job.text_field}` column (--text-field)")
    if job.output is OutputKind.OPENAI_BATCH and job.id_field not in columns:
        # a row's number is its place in the whole file, which no Ray Data block knows
        raise ValueError(
            f"on Ray, the Batch output names rows by an id column: the input has no "
            f"`{job.id_field}` column (--id-field)"
        )
