"""Models too large for --max-memory or for the machine are refused before any download."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from application.catalogue import CATALOGUE
from application.engine_choice import Candidate, EngineSelector
from application.lifecycle import ModelRegistry
from domain.errors import ModelTooLarge
from domain.models import Family
from tests.fakes import FakeEngine, FakeStore, fake_tokenizer_loader

if TYPE_CHECKING:
    from pathlib import Path

    from domain.models import ModelSpec

_BY_NAME = {spec.name: spec for spec in CATALOGUE}
SMALL, LARGE = _BY_NAME["all-MiniLM-L6-v2"], _BY_NAME["bge-m3"]
GiB = 2**30


class Sizes:
    """A WeightsSize that knows some models' float32 sizes, and counts the questions."""

    def __init__(self, sizes: dict[ModelSpec, int]) -> None:
        self.sizes = sizes
        self.asked: list[str] = []

    def held_bytes(self, spec: ModelSpec) -> int | None:
        self.asked.append(spec.name)
        return self.sizes.get(spec)


def _registry(
    tmp_path: Path,
    sizes: Sizes,
    *,
    available: int | None = None,
    max_memory_bytes: int | None = None,
    gated: bool = False,
) -> tuple[ModelRegistry, FakeStore]:
    store = FakeStore({s.repo_id: tmp_path for s in (SMALL, LARGE)})
    every = frozenset(Family)
    engine = FakeEngine(every)
    fast = Candidate("fast", "fp32", every, lambda: FakeEngine(every))
    selector = EngineSelector(engine, [fast] if gated else [])
    registry = ModelRegistry(
        store,
        selector,
        fake_tokenizer_loader,
        ThreadPoolExecutor(1),
        max_memory_bytes=max_memory_bytes,
        weights=sizes,
        available_memory=lambda: available,
    )
    return registry, store


async def test_past_max_memory_is_refused_before_the_store_fetches(tmp_path: Path) -> None:
    """A model whose float32 weights pass --max-memory on their own is ModelTooLarge, and the
    store never fetches it; a smaller one loads."""
    sizes = Sizes({SMALL: 1 * GiB, LARGE: 16 * GiB})
    registry, store = _registry(tmp_path, sizes, max_memory_bytes=8 * GiB)
    refused = await registry.acquire(LARGE)
    assert isinstance(refused, ModelTooLarge)
    assert "--max-memory" in refused.message
    assert "16.0 GiB" in refused.message
    assert store.fetches == []
    assert isinstance(await registry.acquire(SMALL), tuple)


async def test_past_the_machines_memory_is_refused_counting_the_load_peak(tmp_path: Path) -> None:
    """Where a fast engine is gated against the reference, a load holds the weights twice: a
    model of 12 GiB does not fit in 20 GiB available, one of 8 GiB does; on the reference
    alone 12 GiB fits."""
    sizes = Sizes({LARGE: 12 * GiB, SMALL: 8 * GiB})
    gated, store = _registry(tmp_path, sizes, available=20 * GiB, gated=True)
    refused = await gated.acquire(LARGE)
    assert isinstance(refused, ModelTooLarge)
    assert refused.needed == 24 * GiB
    assert "available" in refused.message
    assert store.fetches == []
    assert isinstance(await gated.acquire(SMALL), tuple)
    alone, _ = _registry(tmp_path, sizes, available=20 * GiB)
    assert isinstance(await alone.acquire(LARGE), tuple)


async def test_what_unpinned_models_hold_counts_as_available(tmp_path: Path) -> None:
    """A loaded model that would be unloaded to make room does not cause a refusal: 6 GiB
    loading twice (12) fits in 10 GiB available beside a 4 GiB model that can go. A loaded
    model counts at its weights' float32 size, not its folder's."""
    sizes = Sizes({SMALL: 4 * GiB, LARGE: 6 * GiB})
    registry, _ = _registry(tmp_path, sizes, available=10 * GiB, gated=True)
    small = await registry.acquire(SMALL)
    assert isinstance(small, tuple)
    assert small[0].size_bytes == 4 * GiB
    registry.release(small[0])
    assert isinstance(await registry.acquire(LARGE), tuple)


async def test_an_untold_size_is_judged_after_the_fetch_as_before(tmp_path: Path) -> None:
    """Where no safetensors header tells the size, the model is fetched and sized on disk."""
    sizes = Sizes({})
    registry, store = _registry(tmp_path, sizes, available=1, max_memory_bytes=1)
    result = await registry.acquire(SMALL)
    assert sizes.asked == ["all-MiniLM-L6-v2"]
    assert store.fetches == [SMALL.repo_id]
    assert not isinstance(result, ModelTooLarge)
