"""`embedserve batch`: a corpus in, vectors out, in this process or on a Ray cluster."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import IO

from adapters.cli.options import add_options
from adapters.corpus.job import BatchJob, InputKind, OutputKind, input_kind, output_kind
from adapters.observability import configure_logging
from adapters.settings import Settings

__all__ = ["add_command", "run"]

_BAR = 24
_SPARSE_STEP = 0.1  # off a terminal, a line per tenth of the rows
_SPARSE_ROWS = 10_000  # or, where the total is unknown, per this many rows
_BATCH_SIZE = 512  # rows per chunk: enough for the batcher to sort by length; OpenAI's cap 2048
_MAX_BATCH_SIZE = 2048


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    batch = commands.add_parser(
        "batch",
        help="embed a whole corpus: a file in, a file of vectors out",
        description="Embed every row of INPUT (JSONL, CSV or Parquet, one text per row; or an "
        "OpenAI Batch API input file of /v1/embeddings requests) into OUTPUT: Parquet (the "
        "input's columns, `embedding` as float32 lists and `error`, null where the row was "
        "embedded) or .jsonl (the OpenAI Batch output). A row that cannot be embedded is "
        "written with the error the server would answer, never dropped. Runs in this process, "
        "or with --ray on a Ray cluster, where OUTPUT is a folder of files.",
    )
    batch.add_argument("input", type=Path, help="a .jsonl, .csv or .parquet file")
    batch.add_argument("output", type=Path, help="a .parquet or .jsonl file (a folder with --ray)")
    batch.add_argument("--model", required=True, help="a catalogue name, alias or repo id")
    batch.add_argument("--text-field", default="text", help="the column of texts (default text)")
    batch.add_argument(
        "--id-field",
        default="id",
        help="the column that names rows in the Batch output's custom_id (default id; without "
        "such a column, the row number)",
    )
    batch.add_argument("--dimensions", type=int, default=None, help="Matryoshka: keep the first N")
    batch.add_argument(
        "--prompt-name", default=None, help="one of the model's prompts, put before each text"
    )
    batch.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDR",
        help="run on Ray Data: the cluster whose head is at ADDR (host:port), or without ADDR "
        "the one at RAY_ADDRESS, else a new local one on 127.0.0.1 (needs the ray extra: "
        "pip install 'embedserve[ray]')",
    )
    batch.add_argument(
        "--actors",
        type=int,
        default=None,
        help="with --ray: actors that each hold the model, 1 CPU each (default: the "
        "cluster's CPUs)",
    )
    batch.add_argument(
        "--batch-size",
        type=_batch_size,
        default=_BATCH_SIZE,
        help=f"rows embedded together (default {_BATCH_SIZE}, at most {_MAX_BATCH_SIZE})",
    )
    add_options(batch, ["truncate", "engine", "precisions", "threads", "max_batch_tokens", "home"])


def _batch_size(text: str) -> int:
    size = int(text)
    if not 1 <= size <= _MAX_BATCH_SIZE:
        raise argparse.ArgumentTypeError(f"give 1 to {_MAX_BATCH_SIZE}")
    return size


def run(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging("console", level=logging.WARNING)  # stderr is for the progress bar
    try:
        job = _job(args)
        if args.ray is not None:
            return _on_ray(args, job, settings)
        return _in_process(args, job, settings)
    except (ValueError, OSError) as exc:
        return _fail(str(exc))


def _job(args: argparse.Namespace) -> BatchJob:
    """Raises ValueError for files the command does not read or write."""
    job = BatchJob(
        model=args.model,
        text_field=args.text_field,
        id_field=args.id_field,
        dimensions=args.dimensions,
        prompt_name=args.prompt_name,
        source=input_kind(args.input),
        output=output_kind(args.output),
    )
    if job.source is InputKind.OPENAI_BATCH and job.output is OutputKind.PARQUET:
        raise ValueError("an OpenAI Batch input file is answered in a .jsonl Batch output")
    return job


def _on_ray(args: argparse.Namespace, job: BatchJob, settings: Settings) -> int:
    try:
        from adapters.on_ray.corpus import embed_on_ray
    except ImportError:
        from adapters.on_ray.cluster import MISSING_EXTRA

        return _fail(MISSING_EXTRA)
    embed_on_ray(
        args.input,
        args.output,
        job,
        settings,
        address=args.ray or None,
        actors=args.actors,
        batch_size=args.batch_size,
    )
    sys.stderr.write(f"wrote {args.output}/\n")
    return 0


def _in_process(args: argparse.Namespace, job: BatchJob, settings: Settings) -> int:
    # pyarrow only where a corpus is read: it costs every `embedserve serve` ~17 MB and ~30 ms
    from adapters.corpus.chunks import ChunkEmbedder
    from adapters.corpus.files import OutputFile, chunks, count_rows

    embedder = ChunkEmbedder(settings)
    try:
        problem = embedder.check_model(job.model)
        if problem is not None and job.source is not InputKind.OPENAI_BATCH:
            return _fail(problem)  # else every row would say so
        progress = _Progress(sys.stderr, count_rows(args.input, job.source))
        with OutputFile(args.output, job.output) as output:
            for chunk in chunks(args.input, job, args.batch_size):
                if (
                    job.source is not InputKind.OPENAI_BATCH
                    and job.text_field not in chunk.column_names
                ):
                    raise ValueError(f"the input has no `{job.text_field}` column (--text-field)")
                output.write(embedder.embed(chunk, job))
                progress.add(chunk.num_rows)
        progress.finish()
    finally:
        embedder.close()
    return 0


class _Progress:
    """Rows done of the total on stderr: redrawn in place on a terminal; elsewhere (a log, a
    pipe) a line now and then."""

    def __init__(self, out: IO[str], total: int | None) -> None:
        self._out = out
        self._live = out.isatty()
        self._total = total
        self._done = 0
        self._shown = 0  # rows at the last sparse line

    def add(self, rows: int) -> None:
        self._done += rows
        if self._live:
            self._out.write("\r" + self._line())
        elif self._done - self._shown >= self._step():
            self._shown = self._done
            self._out.write(self._line() + "\n")
        self._out.flush()

    def finish(self) -> None:
        if self._live:
            self._out.write("\n")
        elif self._shown != self._done:
            self._out.write(self._line() + "\n")
        self._out.flush()

    def _step(self) -> float:
        return self._total * _SPARSE_STEP if self._total else _SPARSE_ROWS

    def _line(self) -> str:
        if not self._total:
            return f"embedding {self._done} rows"
        fraction = min(1.0, self._done / self._total)
        filled = round(fraction * _BAR)
        bar = "█" * filled + " " * (_BAR - filled)
        return f"embedding {fraction:4.0%} ▕{bar}▏ {self._done}/{self._total} rows"


def _fail(message: str) -> int:
    sys.stderr.write(f"Error: {message}\n")
    return 1
