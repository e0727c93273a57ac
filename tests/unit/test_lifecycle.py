from __future__ import annotations

import asyncio

from application.catalogue import CATALOGUE
from application.lifecycle import ModelRegistry
from domain.errors import ModelUnavailable
from domain.models import ModelSpec
from tests.fakes import FakeEngine, FakeStore
from tests.unit.conftest import Clock

MINILM_SPEC: ModelSpec = CATALOGUE[0]


async def test_concurrent_first_requests_share_one_load(
    registry: ModelRegistry, engine: FakeEngine
) -> None:
    """Ten requests for a cold model cause one load, and all get the same model."""
    results = await asyncio.gather(*(registry.acquire(MINILM_SPEC) for _ in range(10)))
    assert len(engine.loads) == 1
    assert len({id(r[0]) for r in results if isinstance(r, tuple)}) == 1


async def test_load_time_is_reported_only_to_requests_that_waited(registry: ModelRegistry) -> None:
    """The first request sees a load duration; a request for a warm model sees zero."""
    first = await registry.acquire(MINILM_SPEC)
    second = await registry.acquire(MINILM_SPEC)
    assert isinstance(first, tuple)
    assert isinstance(second, tuple)
    assert first[1] > 0
    assert second[1] == 0


async def test_an_idle_model_is_forgotten_after_its_keep_alive(
    registry: ModelRegistry, engine: FakeEngine, clock: Clock
) -> None:
    """After keep_alive seconds without use it leaves the loaded list and loads again on use."""
    await registry.acquire(MINILM_SPEC, keep_alive_s=60)
    clock.now += 59
    assert len(registry.loaded()) == 1
    clock.now += 2
    assert registry.loaded() == []
    await registry.acquire(MINILM_SPEC)
    assert len(engine.loads) == 2


async def test_negative_keep_alive_keeps_a_model_forever(
    registry: ModelRegistry, clock: Clock
) -> None:
    """keep_alive < 0 means no expiry, as in Ollama."""
    await registry.acquire(MINILM_SPEC, keep_alive_s=-1)
    clock.now += 10**9
    assert [m.expires_at for m in registry.loaded()] == [None]


async def test_a_failed_load_is_reported_and_not_remembered(
    registry: ModelRegistry, store: FakeStore, engine: FakeEngine
) -> None:
    """A broken model answers ModelUnavailable, and the next request tries again."""
    folder = store.folders[MINILM_SPEC.repo_id]
    (folder / "broken").touch()
    assert isinstance(await registry.acquire(MINILM_SPEC), ModelUnavailable)
    (folder / "broken").unlink()
    assert isinstance(await registry.acquire(MINILM_SPEC), tuple)
    assert len(engine.loads) == 2
