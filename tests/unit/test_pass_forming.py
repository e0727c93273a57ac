"""How concurrent requests become forward passes: who joins whom, and how rows are cut."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from application.batching import Batcher, pass_length, plan_batches
from application.catalogue import CATALOGUE, Catalogue
from application.embedding import EmbeddingService
from application.lifecycle import ModelRegistry
from domain.models import ModelSpec
from domain.ports import Encoded, Tokenizer
from domain.requests import EmbeddingRequest, EmbeddingResult
from tests.fakes import FakeDecoder, FakeEncoder, FakeEngine, FakeStore, FakeTokenizer

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


class _WhereTokenized(FakeTokenizer):
    """Records the thread each `encode` ran on."""

    def __init__(self) -> None:
        super().__init__(max_tokens=64)
        self.threads: list[threading.Thread] = []

    def encode(self, texts: Sequence[str], read: int | None = None) -> list[Encoded]:
        self.threads.append(threading.current_thread())
        return super().encode(texts, read)


def _service(tmp_path: Path, tokenizer: FakeTokenizer, engine: FakeEngine) -> EmbeddingService:
    def load(spec: ModelSpec, folder: Path) -> Tokenizer:
        return tokenizer

    executor = ThreadPoolExecutor(max_workers=1)
    registry = ModelRegistry(FakeStore({MINILM: tmp_path}), engine, load, executor)
    return EmbeddingService(Catalogue(CATALOGUE), registry, FakeDecoder())


async def test_a_few_short_texts_are_tokenized_on_the_event_loop(tmp_path: Path) -> None:
    """No hand-off to a thread and back for a request that takes microseconds to read."""
    tokenizer = _WhereTokenized()
    service = _service(tmp_path, tokenizer, FakeEngine())
    result = await service.embed(EmbeddingRequest("all-minilm", ["a short text", "another"]))
    assert isinstance(result, EmbeddingResult)
    assert tokenizer.threads == [threading.current_thread()]


async def test_long_texts_are_tokenized_off_the_event_loop(tmp_path: Path) -> None:
    """Thousands of characters go to a thread, so other requests are not held up meanwhile."""
    tokenizer = _WhereTokenized()
    service = _service(tmp_path, tokenizer, FakeEngine())
    result = await service.embed(EmbeddingRequest("all-minilm", ["word " * 1000]))
    assert isinstance(result, EmbeddingResult)
    assert tokenizer.threads
    assert threading.current_thread() not in tokenizer.threads


async def test_concurrent_single_text_requests_form_one_pass(tmp_path: Path) -> None:
    """Sixteen one-text requests that arrive together run as one forward pass (3 to 5 tokens:
    padding them costs less than a second pass would)."""
    engine = FakeEngine()
    service = _service(tmp_path, _WhereTokenized(), engine)
    await service.embed(EmbeddingRequest("all-minilm", ["load it"]))
    engine.encoder.batches.clear()
    texts = [" ".join(["word"] * (1 + n % 3)) for n in range(16)]
    results = await asyncio.gather(
        *(service.embed(EmbeddingRequest("all-minilm", [t])) for t in texts)
    )
    assert all(isinstance(r, EmbeddingResult) and r.batches == 1 for r in results)
    assert [b for b, _ in engine.encoder.batches] == [16]


class _KeepsShapes(FakeEncoder):
    keeps_shapes = True


async def test_a_loaded_model_that_keeps_shapes_pads_its_passes_up_to_its_limit(
    tmp_path: Path,
) -> None:
    """The registry tells the batcher the model's token limit (the tokenizer's): passes of an
    encoder that keeps shapes come in `pass_length`s of it, none past it."""
    engine = FakeEngine()
    engine.encoder = _KeepsShapes()
    service = _service(tmp_path, FakeTokenizer(max_tokens=12), engine)
    for words in (2, 30):  # the second is cut to the limit
        result = await service.embed(EmbeddingRequest("all-minilm", [" ".join(["w"] * words)]))
        assert isinstance(result, EmbeddingResult)
    assert [t for _, t in engine.encoder.batches] == [pass_length(4, 12), 12] == [8, 12]


async def test_requests_a_few_loop_turns_apart_join_a_starting_pass() -> None:
    """A merged run that starts on an idle model waits the loop turns that requests already
    on their way take to reach it, so the first does not run alone."""
    encoder = FakeEncoder()
    batcher = Batcher(encoder, ThreadPoolExecutor(max_workers=1))

    async def arriving(turns: int) -> object:
        for _ in range(turns):
            await asyncio.sleep(0)
        return await batcher.embed([[1, 2, 3]])

    await asyncio.gather(*(arriving(turns) for turns in (0, 1, 2, 3)))
    assert encoder.batches == [(4, 3)]


def test_short_rows_of_mixed_lengths_share_a_pass() -> None:
    """Padding a few short rows costs less than another pass: one pass, though the shortest
    is less than half the longest."""
    lengths = [4, 5, 6, 7, 8, 9, 10, 10]
    assert plan_batches(lengths, token_budget=8192, max_batch=64) == [[6, 7, 5, 4, 3, 2, 1, 0]]


def test_rows_far_apart_in_length_get_passes_of_their_own() -> None:
    """Padding sixty short rows to a long one's length costs more than a pass: two passes."""
    lengths = [256] * 4 + [8] * 60
    plan = plan_batches(lengths, token_budget=8192, max_batch=64)
    assert [sorted(batch) for batch in plan] == [[0, 1, 2, 3], list(range(4, 64))]


def test_the_plan_pads_fewer_tokens_than_halving_by_length() -> None:
    """Between 'a new pass below half the longest' and the cheapest cut, the cheapest wins:
    a spread of lengths padded, plus 16 per pass, costs the least the cuts allow."""
    lengths = [100, 90, 80, 60, 55, 51, 40, 30, 26, 20, 12, 11, 10, 6, 5, 4]
    plan = plan_batches(lengths, token_budget=8192, max_batch=64, pass_overhead=16)
    cost = sum(16 + len(b) * max(lengths[i] for i in b) for b in plan)
    assert cost == _least_cost(sorted(lengths, reverse=True), 16)


def _least_cost(sizes: list[int], overhead: int) -> int:
    """Every way of cutting the sorted rows into runs, tried: the cheapest."""
    if not sizes:
        return 0
    return min(
        overhead + k * sizes[0] + _least_cost(sizes[k:], overhead) for k in range(1, len(sizes) + 1)
    )
