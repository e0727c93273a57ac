from __future__ import annotations

import numpy as np
import pytest

from application.catalogue import CATALOGUE, Catalogue
from application.embedding import EmbeddingService
from application.embedding_cache import ENTRY_OVERHEAD, CacheStats, EmbeddingCache
from application.lifecycle import ModelRegistry
from domain.errors import InputTooLong
from domain.requests import EmbeddingRequest, EmbeddingResult, Normalization, TokenIds, Truncation
from tests.fakes import FakeDecoder, FakeEngine

MODEL = "m:latest@fake/fp32"
IDS = (1, 5, 2)  # three ids: 12 bytes packed
_D = 4


def _row(value: float) -> np.ndarray:
    return np.full(_D, value, dtype=np.float32)


def _cost(ids: tuple[int, ...] = IDS) -> int:
    return 4 * _D + 4 * len(ids) + ENTRY_OVERHEAD


def test_a_hit_gives_back_the_same_bytes_it_was_given() -> None:
    """float32 rows are kept as they are: the bytes out are the bytes in, and read-only."""
    cache = EmbeddingCache(10_000)
    row = np.random.default_rng(0).standard_normal(_D).astype(np.float32)
    cache.put(MODEL, IDS, row)
    hit = cache.get(MODEL, IDS)
    assert hit is not None
    assert hit.dtype == np.float32
    assert hit.tobytes() == row.tobytes()
    assert not hit.flags.writeable


def test_the_key_is_the_model_and_every_token_id() -> None:
    """Another model, or ids that differ anywhere (one more, one other), is a miss."""
    cache = EmbeddingCache(10_000)
    cache.put(MODEL, IDS, _row(1))
    assert cache.get("m:latest@openvino/bf16", IDS) is None
    assert cache.get(MODEL, (1, 5)) is None
    assert cache.get(MODEL, (1, 6, 2)) is None
    assert cache.get(MODEL, list(IDS)) is not None


def test_counters_count_every_lookup_and_bytes_count_every_entry() -> None:
    """A hit, a miss, and the bytes held: the vector, its packed ids and the overhead."""
    cache = EmbeddingCache(10_000)
    assert cache.get(MODEL, IDS) is None
    cache.put(MODEL, IDS, _row(1))
    cache.put(MODEL, IDS, _row(2))  # stored again: replaced, not counted twice
    assert cache.get(MODEL, IDS) is not None
    assert cache.stats == CacheStats(
        hits=1, misses=1, evictions=0, entries=1, bytes=_cost(), max_bytes=10_000
    )


def test_the_least_recently_used_entry_goes_first_when_the_bytes_run_out() -> None:
    """Room for two: a third evicts the one neither stored nor read most lately."""
    cache = EmbeddingCache(2 * _cost())
    a, b, c = (1, 1, 2), (1, 2, 2), (1, 3, 2)
    cache.put(MODEL, a, _row(1))
    cache.put(MODEL, b, _row(2))
    assert cache.get(MODEL, a) is not None  # a is now more recent than b
    cache.put(MODEL, c, _row(3))
    assert cache.get(MODEL, b) is None
    assert cache.get(MODEL, a) is not None
    assert cache.get(MODEL, c) is not None
    assert (cache.stats.evictions, cache.stats.entries, cache.stats.bytes) == (1, 2, 2 * _cost())


def test_a_long_input_costs_more_and_evicts_as_many_as_it_needs() -> None:
    """The budget counts bytes, not entries: a row with a long key pushes out two short ones."""
    long_ids = tuple(range(1, 41))  # costs more than one short entry, less than two
    assert _cost() < _cost(long_ids) <= 2 * _cost()
    cache = EmbeddingCache(3 * _cost())
    cache.put(MODEL, (1, 1, 2), _row(1))
    cache.put(MODEL, (1, 2, 2), _row(2))
    cache.put(MODEL, (1, 3, 2), _row(3))
    cache.put(MODEL, long_ids, _row(4))
    assert cache.stats.evictions == 2
    assert cache.get(MODEL, (1, 3, 2)) is not None
    assert cache.get(MODEL, long_ids) is not None
    assert cache.stats.bytes == _cost() + _cost(long_ids)


def test_a_row_larger_than_the_whole_budget_is_not_kept() -> None:
    """It would evict everything and still not fit: the cache keeps what it has."""
    cache = EmbeddingCache(_cost())
    cache.put(MODEL, IDS, _row(1))
    cache.put(MODEL, (*IDS, 7), _row(2))
    assert cache.get(MODEL, IDS) is not None
    assert cache.stats.evictions == 0


# The cache in the pipeline: EmbeddingService over the fake engine (tests/unit/conftest.py).


@pytest.fixture
def cache() -> EmbeddingCache:
    return EmbeddingCache(1 << 20)


@pytest.fixture
def cached(registry: ModelRegistry, cache: EmbeddingCache) -> EmbeddingService:
    return EmbeddingService(Catalogue(CATALOGUE), registry, FakeDecoder(), cache=cache)


def _ok(result: object) -> EmbeddingResult:
    assert isinstance(result, EmbeddingResult), result
    return result


async def test_a_repeated_request_is_answered_without_a_forward_pass(
    cached: EmbeddingService, engine: FakeEngine, cache: EmbeddingCache
) -> None:
    """The second time, every row comes from the cache: same bytes, same token counts."""
    request = EmbeddingRequest("all-minilm", ["a bb", "ccc dddd ee"])
    first = _ok(await cached.embed(request))
    passes = len(engine.encoder.batches)
    second = _ok(await cached.embed(request))
    assert len(engine.encoder.batches) == passes
    assert second.vectors.tobytes() == first.vectors.tobytes()
    assert second.token_counts == first.token_counts == (4, 5)
    assert second.batches == 0
    assert (cache.stats.hits, cache.stats.misses) == (2, 2)


async def test_hits_and_misses_mixed_in_one_request_keep_input_order(
    cached: EmbeddingService, registry: ModelRegistry, engine: FakeEngine, cache: EmbeddingCache
) -> None:
    """Only the misses reach the engine, each distinct one once; rows stay where they were."""
    _ok(await cached.embed(EmbeddingRequest("all-minilm", ["bb", "dddd"])))
    engine.encoder.batches.clear()
    texts = ["a", "dddd", "ccc", "a", "bb"]
    result = _ok(await cached.embed(EmbeddingRequest("all-minilm", texts)))
    passes = list(engine.encoder.batches)
    plain = EmbeddingService(Catalogue(CATALOGUE), registry, FakeDecoder())
    uncached = _ok(await plain.embed(EmbeddingRequest("all-minilm", texts)))
    assert result.vectors.tobytes() == uncached.vectors.tobytes()
    assert result.token_counts == uncached.token_counts
    assert [rows for rows, _ in passes] == [2]  # "a" and "ccc", once each
    assert (cache.stats.hits, cache.stats.misses) == (2, 5)


async def test_text_and_token_ids_the_model_reads_alike_share_an_entry(
    cached: EmbeddingService, cache: EmbeddingCache
) -> None:
    """The key is what the model sees: ids that decode to the same text are a hit."""
    _ok(await cached.embed(EmbeddingRequest("all-minilm", ["xx xxx"])))
    _ok(await cached.embed(EmbeddingRequest("all-minilm", [TokenIds((2, 3))])))
    assert cache.stats.hits == 1


async def test_normalisation_and_dimensions_apply_to_cached_rows_too(
    cached: EmbeddingService,
) -> None:
    """The cache holds the model's own row; each request's post-processing runs on a hit."""
    raw = _ok(await cached.embed(EmbeddingRequest("all-minilm", ["a bb"])))
    unit = _ok(
        await cached.embed(
            EmbeddingRequest("all-minilm", ["a bb"], normalization=Normalization.ALWAYS)
        )
    )
    cut = _ok(
        await cached.embed(
            EmbeddingRequest(
                "all-minilm", ["a bb"], dimensions=2, normalization=Normalization.ALWAYS
            )
        )
    )
    assert raw.vectors[0].tolist() == [6.0, 4.0, 3.0, 4.0]
    assert np.linalg.norm(unit.vectors[0]) == pytest.approx(1.0)
    assert cut.vectors.shape == (1, 2)
    assert cut.vectors[0] == pytest.approx([6 / np.hypot(6, 4), 4 / np.hypot(6, 4)])


async def test_a_cached_cut_input_is_still_refused_when_truncation_is_off(
    cached: EmbeddingService,
) -> None:
    """A row cached from a truncated input answers no request that refuses truncation."""
    long = "a " * 20
    _ok(await cached.embed(EmbeddingRequest("all-minilm", [long])))
    refused = await cached.embed(EmbeddingRequest("all-minilm", [long], truncate=Truncation.REFUSE))
    assert isinstance(refused, InputTooLong)
