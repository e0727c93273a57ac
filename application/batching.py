"""Turning many token sequences, from many requests, into few well-shaped forward passes.

Padding a batch to its longest row is what costs: sorting by length and cutting the sorted
rows under a token budget keeps padding small. Requests that arrive while a forward pass runs
wait together and run as one merged set (dynamic batching).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from domain.errors import Overloaded
from domain.ops import Array, IdArray
from domain.ports import Encoder
from domain.sentence_head import PROMPT_TOKEN

__all__ = ["BatchRun", "BatchSettings", "Batcher", "pad", "plan_batches"]


def plan_batches(lengths: Sequence[int], token_budget: int, max_batch: int) -> list[list[int]]:
    """Row indices grouped into batches, longest rows first, each batch's padded size in budget.

    A row shorter than half its batch's longest starts a new batch: more than half of it
    would be padding.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[current[0]] if current else 0
        too_big = (len(current) + 1) * longest > token_budget or len(current) == max_batch
        if current and (too_big or 2 * lengths[i] < longest):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def pad(rows: Sequence[Sequence[int]], skips: Sequence[int] = ()) -> tuple[IdArray, IdArray]:
    """Right-pad to the longest row: ids [B,T] and attention mask [B,T]. A row's first
    `skips[n]` tokens (none where `skips` is empty) are marked PROMPT_TOKEN in the mask: read by
    attention, left out of pooling (domain/sentence_head.py)."""
    width = max(len(r) for r in rows)
    ids = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for n, row in enumerate(rows):
        ids[n, : len(row)] = row
        mask[n, : len(row)] = 1
        if skips:
            mask[n, : min(skips[n], len(row))] = PROMPT_TOKEN
    return ids, mask


@dataclass(frozen=True, slots=True)
class BatchSettings:
    token_budget: int = 8192  # padded tokens per forward pass
    max_batch: int = 64  # rows per forward pass
    # inputs that may wait for one model; past it a request is refused with a retry time,
    # so a burst turns into quick 503s instead of minutes of queueing for everyone
    queue_limit: int = 16_384


# ViT-L/14 reads 257 positions of 1024 per image: 16 keep a pass's attention scores ~70 MB
_IMAGES_PER_PASS = 16


@dataclass(frozen=True, slots=True)
class BatchRun:
    vectors: Array  # [N,D] in the order the rows were given
    batches: int  # forward passes of the merged run this request took part in


@dataclass(slots=True)
class _Job:
    rows: Sequence[Sequence[int]]
    skip: int  # each row's first tokens that pooling leaves out (a prompt's), as `pad` takes
    future: asyncio.Future[BatchRun]


class Batcher:
    """One per loaded model. Forward passes run on `executor`, never on the event loop."""

    def __init__(
        self,
        encoder: Encoder,
        executor: Executor,
        settings: BatchSettings = BatchSettings(),
        name: str = "",
        on_pass: Callable[[int], None] | None = None,
    ) -> None:
        self._encoder = encoder
        self._on_pass = on_pass  # told the rows of every forward pass, for metrics
        self._executor = executor
        self._token_budget = settings.token_budget
        self._max_batch = settings.max_batch
        self._queue_limit = settings.queue_limit
        self._name = name
        self._pending: list[_Job] = []
        self._worker: asyncio.Task[None] | None = None
        self._waiting = 0  # rows queued or being embedded
        self._rows_per_s = 0.0  # the last merged run's rate, to tell refused clients a wait

    @property
    def waiting(self) -> int:
        return self._waiting

    async def embed(self, rows: Sequence[Sequence[int]], skip: int = 0) -> BatchRun | Overloaded:
        """Rows of token ids to vectors; `skip`: each row's first tokens pooling leaves out."""
        if not rows:
            empty = np.zeros((0, self._encoder.dimensions), dtype=np.float32)
            return BatchRun(empty, 0)
        if self._waiting and self._waiting + len(rows) > self._queue_limit:
            return Overloaded(self._name, self._waiting, self._retry_after())
        self._waiting += len(rows)
        try:
            return await self._queued(rows, skip)
        finally:
            self._waiting -= len(rows)

    def _retry_after(self) -> int:
        if self._rows_per_s <= 0:
            return 1
        return max(1, min(60, math.ceil(self._waiting / self._rows_per_s)))

    async def _queued(self, rows: Sequence[Sequence[int]], skip: int) -> BatchRun:
        job = _Job(rows, skip, asyncio.get_running_loop().create_future())
        self._pending.append(job)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await job.future

    async def embed_images(self, pixels: Array) -> BatchRun:
        """[N,C,S,S] -> [N,D], a few images per forward pass. Images share one shape, so there
        is no padding to save by sorting; requests are not merged."""
        images = self._encoder.images
        if images is None:
            msg = "this model has no image tower"
            raise ValueError(msg)
        loop = asyncio.get_running_loop()
        per_pass = min(self._max_batch, _IMAGES_PER_PASS)
        parts = [
            await loop.run_in_executor(self._executor, images.embed, pixels[n : n + per_pass])
            for n in range(0, len(pixels), per_pass)
        ]
        return BatchRun(np.concatenate(parts), batches=len(parts))

    async def _drain(self) -> None:
        while self._pending:
            jobs, self._pending = self._pending, []
            started = time.perf_counter_ns()
            try:
                rows = [r for job in jobs for r in job.rows]
                skips = [job.skip for job in jobs for _ in job.rows]
                vectors, batches = await self._run(rows, skips if any(skips) else [])
            except Exception as exc:  # noqa: BLE001 - a bug in an engine fails its requests, not the worker
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            infer_ns = time.perf_counter_ns() - started
            self._rows_per_s = len(vectors) / max(infer_ns / 1e9, 1e-9)
            offset = 0
            for job in jobs:
                part = vectors[offset : offset + len(job.rows)]
                offset += len(job.rows)
                if not job.future.done():  # its client may have gone away
                    job.future.set_result(BatchRun(part, batches))

    async def _run(self, rows: Sequence[Sequence[int]], skips: Sequence[int]) -> tuple[Array, int]:
        loop = asyncio.get_running_loop()
        plan = plan_batches([len(r) for r in rows], self._token_budget, self._max_batch)
        out = np.empty((len(rows), self._encoder.dimensions), dtype=np.float32)
        for batch in plan:
            ids, mask = pad([rows[i] for i in batch], [skips[i] for i in batch] if skips else ())
            out[batch] = await loop.run_in_executor(self._executor, self._encoder.embed, ids, mask)
            if self._on_pass is not None:
                self._on_pass(len(batch))
        return out, len(plan)
