"""Turning many token sequences, from many requests, into few well-shaped forward passes.

Padding a batch to its longest row is what costs: sorting by length and cutting the sorted
rows under a token budget keeps padding small. An encoder that pads for free (a lookup and a
mean, as the static families' are) only wants few passes; one that keeps state per input
shape (OpenVINO) wants few shapes, so its passes come in a few lengths (`pass_length`).
Requests that arrive while a forward pass runs wait together and run as one merged set
(dynamic batching).
"""

from __future__ import annotations

import asyncio
import functools
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from itertools import chain

import numpy as np
import structlog

from domain.architectures.cross_encoder import SECOND_TEXT
from domain.errors import Overloaded
from domain.ops import Array, IdArray
from domain.ports import Encoder, KeepsShapes, OverlapsPasses, PadsForFree, ReleasesMemory
from domain.sentence_head import PROMPT_TOKEN

__all__ = [
    "BatchRun",
    "BatchSettings",
    "Batcher",
    "pad",
    "pass_length",
    "pass_lengths",
    "plan_batches",
    "plan_full_passes",
]

log = structlog.get_logger(__name__)


# What one more forward pass costs beyond its rows, in padded tokens' worth. On 2 cores, with
# all-MiniLM-L6-v2's texts of 58 tokens on average, one text alone took 15.5 ms and 11.7 ms per
# text in sorted passes of 32 (OpenVINO): ~22 tokens more of wall time (ONNX Runtime ~12, numpy
# ~8), and more of CPU time, the runtimes' threads waking and spinning around each pass. Cut
# for 32, plans lose under 1% where a pass costs 16 and gain where it costs 64
# (bench/batching_sim.py --overhead).
PASS_OVERHEAD_TOKENS = 32
# a merged run this long is planned on the executor: ~20 us a row, off the event loop
_PLAN_ON_LOOP = 512
# loop turns a starting merged run waits while requests are still joining it (see `_gather`)
_GATHER_TURNS = 8


def plan_batches(
    lengths: Sequence[int],
    token_budget: int,
    max_batch: int,
    pass_overhead: int = PASS_OVERHEAD_TOKENS,
) -> list[list[int]]:
    """Row indices grouped into batches, longest rows first, each batch's padded size in budget.

    Rows sorted by length are cut into runs of neighbours so that the padded tokens plus
    `pass_overhead` per pass are fewest (dynamic programming over the cut points): a short row
    joins a longer one's pass when its padding costs less than a pass of its own.
    """
    order = _longest_first(lengths)
    sizes = [lengths[i] for i in order]
    return _cheapest_cuts(order, sizes, token_budget, max_batch, pass_overhead)


def pass_length(longest: int, limit: int) -> int:
    """The length a pass whose longest row has `longest` tokens is padded to, for an encoder
    that keeps state per shape (domain.ports.KeepsShapes): the next multiple of an eighth of
    the power of two at or above it (of 8 at least), never past the model's `limit`. Every
    multiple of 8 up to 64, then four lengths per doubling: 16 up to 256 tokens, 36 up to 8,192,
    each under a quarter longer than its longest row (up to 7 tokens below 64)."""
    step = 1 << max((longest - 1).bit_length() - 3, 3)
    return max(longest, min(-(-longest // step) * step, limit))


def pass_lengths(encoder: Encoder, max_tokens: int | None) -> Callable[[int], int] | None:
    """What `pad` pads a pass of `encoder` to, from its longest row: `pass_length` under the
    model's limit for an encoder that keeps shapes (domain.ports.KeepsShapes); None, the longest
    row itself, for any other, or where the limit is not known (no longer length is safe)."""
    if max_tokens is None or not (isinstance(encoder, KeepsShapes) and encoder.keeps_shapes):
        return None
    return functools.partial(pass_length, limit=max_tokens)


def plan_full_passes(lengths: Sequence[int], token_budget: int, max_batch: int) -> list[list[int]]:
    """Row indices grouped into the fewest batches, longest rows first, each batch's padded
    size in budget: for an encoder whose padding costs nothing, what costs is a pass."""
    order = _longest_first(lengths)
    batches: list[list[int]] = []
    start = 0
    while start < len(order):
        rows = max(1, min(max_batch, token_budget // max(lengths[order[start]], 1)))
        batches.append(order[start : start + rows])
        start += rows
    return batches


def _longest_first(lengths: Sequence[int]) -> list[int]:
    """Row indices by length, longest first; rows of one length keep their order."""
    return sorted(range(len(lengths)), key=lambda i: -lengths[i])


def _cheapest_cuts(
    rows: list[int], sizes: list[int], token_budget: int, max_batch: int, pass_overhead: int
) -> list[list[int]]:
    """`sizes` longest first: best[j] is the least cost of the first j rows, whose last pass
    starts at cut[j] (and is padded to that row's size)."""
    best = [0] * (len(sizes) + 1)
    cut = [0] * (len(sizes) + 1)
    for j in range(1, len(sizes) + 1):
        best[j], cut[j] = best[j - 1] + pass_overhead + sizes[j - 1], j - 1  # a pass of its own
        for i in range(j - 2, max(-1, j - 1 - max_batch), -1):
            padded = (j - i) * sizes[i]
            if padded > token_budget:
                break  # a longer pass is longer still
            cost = best[i] + pass_overhead + padded
            if cost < best[j]:
                best[j], cut[j] = cost, i
    batches: list[list[int]] = []
    j = len(sizes)
    while j > 0:
        batches.append(rows[cut[j] : j])
        j = cut[j]
    return batches[::-1]


def pad(
    rows: Sequence[Sequence[int]],
    skips: Sequence[int] = (),
    seconds: Sequence[int] = (),
    length: Callable[[int], int] | None = None,
) -> tuple[IdArray, IdArray]:
    """Right-pad to the longest row, or to `length` of it: ids [B,T] and mask [B,T]. A row's first
    `skips[n]` tokens (none where `skips` is empty) are marked PROMPT_TOKEN in the mask: read by
    attention, left out of pooling (domain/sentence_head.py). A pair's tokens from `seconds[n]`
    on (none where `seconds` is empty) are marked SECOND_TEXT: token type 1
    (domain/architectures/cross_encoder.py)."""
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    longest = int(lengths.max())
    columns = np.arange(longest if length is None else length(longest))
    real = columns < lengths[:, None]  # [B,T]
    ids = np.zeros(real.shape, dtype=np.int64)
    # the rows' ids one after another fill the real places in row order: one C loop, not B
    ids[real] = np.fromiter(chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum()))
    mask = real.astype(np.int64)
    if skips:
        prompt = np.minimum(np.asarray(skips, dtype=np.int64), lengths)
        mask[columns < prompt[:, None]] = PROMPT_TOKEN
    if seconds:
        mask[real & (columns >= np.asarray(seconds, dtype=np.int64)[:, None])] = SECOND_TEXT
    return ids, mask


@dataclass(frozen=True, slots=True)
class BatchSettings:
    token_budget: int = 8192  # padded tokens per forward pass
    max_batch: int = 64  # rows per forward pass
    pass_overhead_tokens: int = PASS_OVERHEAD_TOKENS  # a pass's own cost, for plan_batches
    # inputs that may wait for one model; past it a request is refused with a retry time,
    # so a burst turns into quick 503s instead of minutes of queueing for everyone
    queue_limit: int = 16_384
    # one merged run's forward passes that may run at once, where the encoder allows it
    # (domain.ports.OverlapsPasses); they take as many of the executor's threads
    passes_at_once: int = 1
    # how long the queue stays empty before the engine's working memory goes back: a pause
    # between a closed loop's rounds is not idleness, and releasing there costs each next pass
    release_after_idle_s: float = 1.0


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
    seconds: Sequence[int] | None = None  # each pair's token-type-1 start, as `pad` takes


class Batcher:
    """One per loaded model. Forward passes run on `executor`, never on the event loop."""

    def __init__(  # noqa: PLR0913 - the model, where it runs, and what the server set
        self,
        encoder: Encoder,
        executor: Executor,
        settings: BatchSettings = BatchSettings(),
        name: str = "",
        *,
        on_pass: Callable[[int], None] | None = None,
        max_tokens: int | None = None,
    ) -> None:
        """`max_tokens`: the longest row the model takes, which no pass is padded past."""
        self._encoder = encoder
        self._pads_for_free = isinstance(encoder, PadsForFree) and encoder.pads_for_free
        self._length = pass_lengths(encoder, max_tokens)
        overlaps = isinstance(encoder, OverlapsPasses) and encoder.overlaps_passes
        self._passes_at_once = max(1, settings.passes_at_once) if overlaps else 1
        self._on_pass = on_pass  # told the rows of every forward pass, for metrics
        self._executor = executor
        self._token_budget = settings.token_budget
        self._max_batch = settings.max_batch
        self._pass_overhead = settings.pass_overhead_tokens
        self._queue_limit = settings.queue_limit
        self._release_after_idle_s = settings.release_after_idle_s
        self._name = name
        self._pending: list[_Job] = []
        self._arrival: asyncio.Future[None] | None = None  # the idle wait in `_drain`
        self._worker: asyncio.Task[None] | None = None
        self._waiting = 0  # rows queued or being embedded
        self._rows_per_s = 0.0  # the last merged run's rate, to tell refused clients a wait

    @property
    def waiting(self) -> int:
        return self._waiting

    async def embed(
        self, rows: Sequence[Sequence[int]], skip: int = 0, seconds: Sequence[int] | None = None
    ) -> BatchRun | Overloaded:
        """Rows of token ids to vectors; `skip`: each row's first tokens pooling leaves out;
        `seconds`: for a cross-encoder's pairs, where each row's second text starts. Pairs and
        texts share the queue, its token budget and its merged passes alike."""
        if not rows:
            empty = np.zeros((0, self._encoder.dimensions), dtype=np.float32)
            return BatchRun(empty, 0)
        if self._waiting and self._waiting + len(rows) > self._queue_limit:
            return Overloaded(self._name, self._waiting, self._retry_after())
        self._waiting += len(rows)
        try:
            return await self._queued(rows, skip, seconds)
        finally:
            self._waiting -= len(rows)

    def _retry_after(self) -> int:
        if self._rows_per_s <= 0:
            return 1
        return max(1, min(60, math.ceil(self._waiting / self._rows_per_s)))

    async def _queued(
        self, rows: Sequence[Sequence[int]], skip: int, seconds: Sequence[int] | None
    ) -> BatchRun:
        loop = asyncio.get_running_loop()
        job = _Job(rows, skip, loop.create_future(), seconds)
        self._pending.append(job)
        arrival = self._arrival
        if arrival is not None and not arrival.done() and arrival.get_loop() is loop:
            arrival.set_result(None)
        # a worker idling on another loop (tests run one per test) never sees this job
        worker = self._worker
        if worker is None or worker.done() or worker.get_loop() is not loop:
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

    async def _gather(self) -> None:
        """Before a merged run starts on an idle model: requests that are already on their way
        (read from their sockets in this turn of the loop, a step or two from the batcher)
        join it, instead of the first one running alone while the rest wait for it. Waits
        only while more keep coming, a few loop turns at most: no timer, no added latency."""
        for _ in range(_GATHER_TURNS):
            seen = len(self._pending)
            await asyncio.sleep(0)
            if len(self._pending) == seen:
                return

    async def _drain(self) -> None:
        await self._gather()
        while self._pending:
            await self._answer_pending()
            # the model is idle: the working memory its passes kept goes back (a burst of large
            # batches would otherwise hold its peak for good); under sustained load the queue
            # does not stay empty, so it is not released and taken again pass after pass
            if not await self._more_within(self._release_after_idle_s):
                await self._release_memory()

    async def _more_within(self, seconds: float) -> bool:
        """Whether a request comes within `seconds` of the queue emptying."""
        if self._pending:
            return True
        self._arrival = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(self._arrival, seconds)
        except TimeoutError:
            return False
        finally:
            self._arrival = None
        return True

    async def _release_memory(self) -> None:
        if isinstance(self._encoder, ReleasesMemory):
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(self._executor, self._encoder.release_memory)
            except Exception:  # a bug in an engine keeps its memory; the worker must go on
                log.exception("memory_release_failed", model=self._name)

    async def _answer_pending(self) -> None:
        while self._pending:
            jobs, self._pending = self._pending, []
            started = time.perf_counter_ns()
            try:
                rows = [r for job in jobs for r in job.rows]
                skips = [job.skip for job in jobs for _ in job.rows]
                seconds = [s for job in jobs for s in (job.seconds or [len(r) for r in job.rows])]
                paired = any(job.seconds is not None for job in jobs)
                vectors, batches = await self._run(
                    rows, skips if any(skips) else [], seconds if paired else []
                )
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

    async def _run(
        self, rows: Sequence[Sequence[int]], skips: Sequence[int], seconds: Sequence[int] = ()
    ) -> tuple[Array, int]:
        loop = asyncio.get_running_loop()
        lengths = [len(r) for r in rows]
        if self._length is not None:  # a pass then costs its padded length: plan with it
            lengths = [self._length(n) for n in lengths]
        if self._pads_for_free:  # a sort and a few slices: on the loop, however many rows
            plan = plan_full_passes(lengths, self._token_budget, self._max_batch)
        elif len(rows) > _PLAN_ON_LOOP:
            args = (lengths, self._token_budget, self._max_batch, self._pass_overhead)
            plan = await loop.run_in_executor(self._executor, plan_batches, *args)
        else:
            plan = plan_batches(lengths, self._token_budget, self._max_batch, self._pass_overhead)
        out = np.empty((len(rows), self._encoder.dimensions), dtype=np.float32)

        async def one_pass(batch: list[int]) -> None:
            ids, mask = pad(
                [rows[i] for i in batch],
                [skips[i] for i in batch] if skips else (),
                [seconds[i] for i in batch] if seconds else (),
                self._length,
            )
            out[batch] = await loop.run_in_executor(self._executor, self._encoder.embed, ids, mask)
            if self._on_pass is not None:
                self._on_pass(len(batch))

        if self._passes_at_once == 1 or len(plan) == 1:
            for batch in plan:
                await one_pass(batch)
        else:
            await self._overlapped(plan, one_pass)
        return out, len(plan)

    async def _overlapped(
        self, plan: list[list[int]], one_pass: Callable[[list[int]], Awaitable[None]]
    ) -> None:
        """The plan's passes, `passes_at_once` of them running at any time, in the plan's order.
        Small passes leave a runtime's threads waiting on one another at every operator; passes
        side by side on a thread each keep the cores busy (bench/overlapped_passes.py, 2 cores,
        all-MiniLM-L6-v2: 1.04-1.32x the rows per second in passes of 1-8 rows, 0.89x in passes
        of 32). A pass is padded once it has its slot: at most `passes_at_once` are held."""
        slots = asyncio.Semaphore(self._passes_at_once)

        async def in_slot(batch: list[int]) -> None:
            async with slots:
                await one_pass(batch)

        outcomes = await asyncio.gather(*(in_slot(b) for b in plan), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
