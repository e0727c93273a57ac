from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.batching import (
    Batcher,
    BatchRun,
    BatchSettings,
    pad,
    pass_length,
    plan_batches,
    plan_full_passes,
)
from domain.architectures.cross_encoder import SECOND_TEXT
from domain.errors import Overloaded
from domain.ops import Array, IdArray
from domain.sentence_head import PROMPT_TOKEN
from tests.fakes import FakeEncoder, FakeImageTextEncoder


@given(st.lists(st.integers(1, 64), max_size=60), st.integers(64, 512), st.integers(1, 16))
def test_plan_covers_every_row_once_within_budget(
    lengths: list[int], budget: int, cap: int
) -> None:
    """Each row lands in exactly one batch; no batch's padded size exceeds the budget or cap."""
    plan = plan_batches(lengths, budget, cap)
    assert sorted(i for batch in plan for i in batch) == list(range(len(lengths)))
    for batch in plan:
        assert len(batch) <= cap
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= budget


def test_plan_groups_rows_of_similar_length() -> None:
    """Sorted longest first, so short rows are not padded to a long one's length."""
    plan = plan_batches([2, 50, 3, 49, 2, 51], token_budget=110, max_batch=8)
    assert plan == [[5, 1], [3], [2, 0, 4]]


@given(st.lists(st.integers(1, 64), max_size=60), st.integers(64, 512), st.integers(1, 16))
def test_full_passes_cover_every_row_once_in_the_fewest_passes(
    lengths: list[int], budget: int, cap: int
) -> None:
    """Each row lands in exactly one pass within the budget and cap, and no pass could have
    taken the next pass's first row: with padding free, a pass left short is a pass too many."""
    plan = plan_full_passes(lengths, budget, cap)
    assert sorted(i for batch in plan for i in batch) == list(range(len(lengths)))
    for n, batch in enumerate(plan):
        width = max(lengths[i] for i in batch)
        assert len(batch) <= cap
        assert len(batch) == 1 or len(batch) * width <= budget
        if n + 1 < len(plan):
            assert len(batch) == cap or (len(batch) + 1) * width > budget


def test_full_passes_take_short_rows_into_a_long_ones_pass() -> None:
    """Where the cheapest cuts give a long row a pass of its own, padding being dear, a pass
    that pads for free takes them all."""
    lengths = [100, *[1] * 20]
    assert len(plan_batches(lengths, token_budget=8192, max_batch=64)) == 2
    assert plan_full_passes(lengths, token_budget=8192, max_batch=64) == [list(range(21))]


def test_pad_right_pads_with_a_mask() -> None:
    """Rows are padded on the right; the mask marks the real tokens."""
    ids, mask = pad([[5, 6, 7], [8]])
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_pad_marks_prompt_tokens_and_second_texts() -> None:
    """A row's first `skips` real tokens are prompt, its tokens from `seconds` on the second
    text; padding stays 0 in both ids and mask."""
    ids, mask = pad([(5, 6, 7, 8), (9, 10), ()], skips=[1, 3, 0], seconds=[2, 1, 0])
    assert ids.tolist() == [[5, 6, 7, 8], [9, 10, 0, 0], [0, 0, 0, 0]]
    assert mask.tolist() == [
        [PROMPT_TOKEN, 1, SECOND_TEXT, SECOND_TEXT],
        [PROMPT_TOKEN, SECOND_TEXT, 0, 0],
        [0, 0, 0, 0],
    ]


class _FreePadding(FakeEncoder):
    pads_for_free = True


async def test_an_encoder_that_pads_for_free_gets_the_fewest_passes() -> None:
    """The batcher asks the encoder (domain.ports.PadsForFree): one pass for a long row and
    twenty short ones, where an encoder that pays for padding gets two."""
    rows = [[7] * 100, *[[7]] * 20]
    free, paying = _FreePadding(), FakeEncoder()
    for encoder in (free, paying):
        _ran(await Batcher(encoder, ThreadPoolExecutor(max_workers=1)).embed(rows))
    assert free.batches == [(21, 100)]
    assert paying.batches == [(1, 100), (20, 1)]


@given(st.integers(1, 8192), st.integers(0, 8192))
def test_a_pass_length_is_a_little_longer_and_never_past_the_limit(longest: int, more: int) -> None:
    """At least the longest row, at most the model's limit (where the row fits it), and under
    a quarter longer (short rows: under 8 tokens longer)."""
    limit = longest + more
    length = pass_length(longest, limit)
    assert longest <= length <= limit
    assert length - longest < max(8, longest / 4)


def test_passes_come_in_a_few_lengths() -> None:
    """Every multiple of 8 to 64, then four per doubling: all-MiniLM-L6-v2's 256 tokens give 16
    lengths, 8,192 give 36; CLIP's 77 stop at 77."""
    assert sorted({pass_length(n, 256) for n in range(1, 257)}) == [
        *range(8, 65, 8), 80, 96, 112, 128, 160, 192, 224, 256
    ]  # fmt: skip
    assert sorted({pass_length(n, 77) for n in range(1, 78)}) == [*range(8, 65, 8), 77]
    assert len({pass_length(n, 8192) for n in range(1, 8193)}) == 8 + 4 * 7


class _KeepsShapes(FakeEncoder):
    keeps_shapes = True


async def test_an_encoder_that_keeps_shapes_gets_passes_of_a_few_lengths() -> None:
    """The batcher asks the encoder (domain.ports.KeepsShapes): its passes are padded to
    `pass_length`, never past the model's limit, and every row gets the vector it would get
    unpadded. An encoder that does not keep shapes gets passes as long as their longest row."""
    rows = [[7] * 70, [8] * 20, [9] * 3]
    keeps, plain = _KeepsShapes(), FakeEncoder()
    runs = [
        _ran(await Batcher(e, ThreadPoolExecutor(max_workers=1), max_tokens=77).embed(rows))
        for e in (keeps, plain)
    ]
    assert keeps.batches == [(1, 77), (2, 24)]
    assert plain.batches == [(1, 70), (2, 20)]
    assert runs[0].vectors.tolist() == runs[1].vectors.tolist()


async def test_without_the_models_limit_passes_keep_their_own_length() -> None:
    """No limit known, no length is safe to pad to: passes stay as long as their longest row."""
    encoder = _KeepsShapes()
    _ran(await Batcher(encoder, ThreadPoolExecutor(max_workers=1)).embed([[7] * 70]))
    assert encoder.batches == [(1, 70)]


async def test_passes_padded_to_a_few_lengths_stay_within_the_token_budget() -> None:
    """Planned with their padded length: 8 rows of 120 tokens fit a budget of 1,000 as they
    are (960) but not padded to 128 (1,024), so they take two passes."""
    encoder = _KeepsShapes()
    settings = BatchSettings(token_budget=1000)
    batcher = Batcher(encoder, ThreadPoolExecutor(max_workers=1), settings, max_tokens=256)
    _ran(await batcher.embed([[7] * 120] * 8))
    assert all(b * t <= settings.token_budget for b, t in encoder.batches)
    assert sum(b for b, _ in encoder.batches) == 8


class _SideBySide(FakeEncoder):
    """Its first passes wait until two of them have started (or 1 s), so that passes that may
    run at once do. Records how many ran at once at most."""

    def __init__(self, *, overlaps: bool) -> None:
        super().__init__()
        self.overlaps_passes = overlaps
        self._started = threading.Barrier(2)
        self._lock = threading.Lock()
        self._running = 0
        self.most_at_once = 0

    def embed(self, ids: IdArray, mask: IdArray) -> Array:
        with self._lock:
            self._running += 1
            self.most_at_once = max(self.most_at_once, self._running)
        with contextlib.suppress(threading.BrokenBarrierError):  # passes in turn: one waited
            self._started.wait(timeout=1)
        try:
            return super().embed(ids, mask)
        finally:
            with self._lock:
                self._running -= 1


# three passes: lengths 100, 40 and 1 cost more padded together than apart
_THREE_PASSES = [[7] * 100, [8] * 40, [9]]


async def test_an_encoder_that_overlaps_passes_runs_them_side_by_side() -> None:
    """With `passes_at_once` 2 and an encoder that allows it (domain.ports.OverlapsPasses),
    two passes of one merged run are on the executor at once, never more, and every row
    still gets its own vector."""
    encoder = _SideBySide(overlaps=True)
    batcher = Batcher(encoder, ThreadPoolExecutor(max_workers=4), BatchSettings(passes_at_once=2))
    run = _ran(await batcher.embed(_THREE_PASSES))
    assert encoder.most_at_once == 2
    assert len(encoder.batches) == 3
    assert run.batches == 3
    assert run.vectors[:, 0].tolist() == [700.0, 320.0, 9.0]


@pytest.mark.parametrize(("overlaps", "at_once"), [(True, 1), (False, 2)])
async def test_passes_take_turns_unless_both_the_encoder_and_the_setting_allow(
    *, overlaps: bool, at_once: int
) -> None:
    """The default (one pass at a time), or an encoder that serves one caller at a time
    (OpenVINO's infer request), keeps the passes in turn."""
    encoder = _SideBySide(overlaps=overlaps)
    settings = BatchSettings(passes_at_once=at_once)
    batcher = Batcher(encoder, ThreadPoolExecutor(max_workers=4), settings)
    run = _ran(await batcher.embed(_THREE_PASSES))
    assert encoder.most_at_once == 1
    assert run.vectors[:, 0].tolist() == [700.0, 320.0, 9.0]


class _FailsOnLongRows(FakeEncoder):
    overlaps_passes = True

    def embed(self, ids: IdArray, mask: IdArray) -> Array:
        if ids.shape[1] > 50:
            msg = "a bug in the engine"
            raise RuntimeError(msg)
        return super().embed(ids, mask)


async def test_a_failing_pass_side_by_side_fails_its_request_and_the_batcher_goes_on() -> None:
    batcher = Batcher(
        _FailsOnLongRows(), ThreadPoolExecutor(max_workers=2), BatchSettings(passes_at_once=2)
    )
    with pytest.raises(RuntimeError, match="a bug in the engine"):
        await batcher.embed(_THREE_PASSES)
    assert _ran(await batcher.embed([[1, 2], [3]])).vectors[:, 0].tolist() == [3.0, 3.0]


async def _until(condition: Callable[[], bool]) -> None:
    """Lets the other tasks run until the condition holds: a barrier on the batcher's state,
    where a fixed count of yields would guess how many steps the tasks take."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    pytest.fail("the condition never held")


def _ran(run: BatchRun | Overloaded) -> BatchRun:
    assert isinstance(run, BatchRun), run
    return run


async def test_requests_arriving_during_a_forward_pass_are_merged() -> None:
    """While one pass runs, later requests queue and then run together in one pass."""
    gate = threading.Event()
    encoder = FakeEncoder(gate)
    batcher = Batcher(encoder, ThreadPoolExecutor(max_workers=1))
    first = asyncio.create_task(batcher.embed([[1, 2]]))
    assert await asyncio.to_thread(encoder.entered.wait, 10)  # its pass is held at the gate
    later = [asyncio.create_task(batcher.embed([[3] * n])) for n in (1, 1, 1)]
    await _until(lambda: batcher.waiting == 4)  # the three have queued behind it
    gate.set()
    runs = await asyncio.gather(first, *later)
    assert encoder.batches == [(1, 2), (3, 1)]
    assert [_ran(r).vectors[0, 0] for r in runs] == [3.0, 3.0, 3.0, 3.0]


_QUICK_RELEASE = BatchSettings(release_after_idle_s=0.01)


async def test_memory_is_released_once_the_queue_is_empty_not_between_passes() -> None:
    """The engine gives its working memory back when no request waits, after the last pass of
    a merged run; passes that follow one another keep it."""
    gate = threading.Event()
    encoder = FakeEncoder(gate)
    batcher = Batcher(encoder, ThreadPoolExecutor(max_workers=1), _QUICK_RELEASE)
    first = asyncio.create_task(batcher.embed([[1, 2]]))
    assert await asyncio.to_thread(encoder.entered.wait, 10)
    later = asyncio.create_task(batcher.embed([[3] * 4, [5]]))  # two passes: lengths 4 and 1
    await _until(lambda: batcher.waiting == 3)
    gate.set()
    await asyncio.gather(first, later)
    await _released(encoder, 1)  # answers go out first, then the memory
    passes = len(encoder.batches)
    assert passes >= 2
    assert encoder.releases == [passes]  # after all the passes, once
    await batcher.embed([[7]])
    await _released(encoder, 2)
    assert encoder.releases == [passes, passes + 1]  # idle again after the next request


async def test_a_request_within_the_idle_window_keeps_the_memory() -> None:
    """A closed loop's pause between rounds is not idleness: the memory goes back once the
    queue has stayed empty for the whole window, not after each round."""
    encoder = FakeEncoder()
    batcher = Batcher(
        encoder, ThreadPoolExecutor(max_workers=1), BatchSettings(release_after_idle_s=0.5)
    )
    for _ in range(3):
        await batcher.embed([[1, 2]])
        await asyncio.sleep(0.01)  # well inside the window
    assert encoder.releases == []
    await _released(encoder, 1)
    assert encoder.releases == [3]  # once, after the last of the three rounds


async def _released(encoder: FakeEncoder, times: int) -> None:
    """Waits for the release that follows the answers, on the executor's thread."""
    for _ in range(10_000):
        if len(encoder.releases) >= times:
            return
        await asyncio.sleep(0.001)
    pytest.fail("the memory was never released")


async def test_a_batcher_with_nothing_to_do_runs_no_pass() -> None:
    """An empty request gets an empty [0, D] result without touching the engine."""
    encoder = FakeEncoder()
    run = _ran(await Batcher(encoder, ThreadPoolExecutor(max_workers=1)).embed([]))
    assert run.vectors.shape == (0, 4)
    assert encoder.batches == []


async def test_past_the_queue_limit_a_request_is_refused_with_a_retry_time() -> None:
    """Inputs waiting for a model are bounded: the request that would pass the bound is
    refused at once (a 503 with Retry-After at the wire), and the queue drains as before."""
    gate = threading.Event()
    encoder = FakeEncoder(gate)
    batcher = Batcher(encoder, ThreadPoolExecutor(max_workers=1), BatchSettings(queue_limit=3), "m")
    first = asyncio.create_task(batcher.embed([[1], [2]]))
    assert await asyncio.to_thread(encoder.entered.wait, 10)  # its pass is held at the gate
    refused = await batcher.embed([[3], [4]])
    assert isinstance(refused, Overloaded)
    assert (refused.name, refused.waiting) == ("m", 2)
    assert refused.retry_after_s >= 1
    fits = asyncio.create_task(batcher.embed([[5]]))
    await _until(lambda: batcher.waiting == 3)  # queued, not refused, while the pass is held
    gate.set()
    assert len(_ran(await first).vectors) == 2
    assert len(_ran(await fits).vectors) == 1
    assert batcher.waiting == 0


async def test_one_request_larger_than_the_limit_still_runs_on_an_idle_model() -> None:
    """The bound protects a busy model; it never makes a big request impossible."""
    batcher = Batcher(
        FakeEncoder(), ThreadPoolExecutor(max_workers=1), BatchSettings(queue_limit=2)
    )
    assert len(_ran(await batcher.embed([[1]] * 5)).vectors) == 5


async def test_images_run_at_most_sixteen_a_pass() -> None:
    """An image pass holds 16 images, however many rows a text pass may hold: a ViT-L/14 pass's
    attention scores stay near 70 MB. The vectors come back in the order the images were given."""
    encoder = FakeImageTextEncoder()
    batcher = Batcher(encoder, ThreadPoolExecutor(max_workers=1), BatchSettings(max_batch=64))
    pixels = np.arange(40, dtype=np.float32)[:, None, None, None] * np.ones((1, 1, 2, 2))
    run = await batcher.embed_images(pixels)
    assert encoder.images.batches == [16, 16, 8]
    assert run.vectors[:, 0].tolist() == list(range(40))
    assert run.batches == 3  # what the request's log line counts


async def test_a_smaller_row_cap_also_caps_image_passes() -> None:
    """max_batch below 16 bounds image passes too."""
    encoder = FakeImageTextEncoder()
    batcher = Batcher(encoder, ThreadPoolExecutor(max_workers=1), BatchSettings(max_batch=4))
    await batcher.embed_images(np.zeros((10, 1, 2, 2), dtype=np.float32))
    assert encoder.images.batches == [4, 4, 2]
