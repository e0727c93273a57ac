from __future__ import annotations

import asyncio
import contextlib
import gc
import weakref
from collections.abc import Iterator, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import structlog
from structlog.testing import LogCapture
from structlog.typing import EventDict, Processor, WrappedLogger

import application.lifecycle
from application.catalogue import CATALOGUE
from application.embedding import EmbeddingService
from application.lifecycle import LoadedModel, ModelRegistry
from domain.errors import ModelUnavailable
from domain.models import ModelSpec
from domain.requests import EmbeddingRequest, EmbeddingResult
from tests.fakes import FakeEngine, FakeStore, fake_tokenizer_loader
from tests.unit.conftest import Clock

MINILM_SPEC: ModelSpec = CATALOGUE[0]


@contextlib.contextmanager
def capture_logs(*before: Processor) -> Iterator[list[MutableMapping[str, Any]]]:
    """The registry's log lines, each seen by the processors `before` first. structlog's own
    capture_logs misses a module logger that an app built earlier in the session has cached
    (cache_logger_on_first_use), so the registry's logger is swapped for a capturing one."""
    capture = LogCapture()
    original = application.lifecycle.log
    application.lifecycle.log = structlog.wrap_logger(None, processors=[*before, capture])
    try:
        yield capture.entries
    finally:
        application.lifecycle.log = original


_BY_NAME = {spec.name: spec for spec in CATALOGUE}
# three BERT-family models, which the fake engine runs
A, B, C = (_BY_NAME[n] for n in ("all-MiniLM-L6-v2", "gte-base", "bert-base-uncased"))


def _registry(
    tmp_path: Path,
    clock: Clock,
    sizes: dict[ModelSpec, int] | None = None,
    **limits: int,
) -> ModelRegistry:
    """A registry whose store holds A, B and C, each a folder of `sizes[spec]` bytes."""
    folders = {}
    for spec in (A, B, C):
        folder = tmp_path / spec.name
        folder.mkdir()
        (folder / "weights").write_bytes(b"\0" * (sizes or {}).get(spec, 0))
        folders[spec.repo_id] = folder
    executor = ThreadPoolExecutor(max_workers=1)
    return ModelRegistry(
        FakeStore(folders), FakeEngine(), fake_tokenizer_loader, executor, clock=clock, **limits
    )


async def _use(
    registry: ModelRegistry, spec: ModelSpec, keep_alive_s: float | None = None
) -> LoadedModel:
    """The model, acquired and not yet released: a request still using it."""
    acquired = await registry.acquire(spec, keep_alive_s)
    assert isinstance(acquired, tuple)
    return acquired[0]


async def _request(
    registry: ModelRegistry, spec: ModelSpec, keep_alive_s: float | None = None
) -> LoadedModel:
    """The model, acquired and released: a request that has finished."""
    model = await _use(registry, spec, keep_alive_s)
    registry.release(model)
    return model


def _names(registry: ModelRegistry) -> list[str]:
    return sorted(m.spec.name for m in registry.resident())


def _specs(registry: ModelRegistry) -> list[ModelSpec]:
    """The models listed as loaded, least recently used first."""
    return [m.spec for m in registry.resident()]


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


async def test_an_idle_model_is_unloaded_when_its_keep_alive_runs_out(
    registry: ModelRegistry, engine: FakeEngine, clock: Clock
) -> None:
    """keep_alive seconds after its request, it leaves the loaded list, and loads again on use."""
    await _request(registry, MINILM_SPEC, keep_alive_s=60)
    clock.now += 59
    assert len(registry.resident()) == 1
    clock.now += 2
    assert _specs(registry) == []
    await _request(registry, MINILM_SPEC)
    assert len(engine.loads) == 2


async def test_a_query_unloads_nothing(registry: ModelRegistry, clock: Clock) -> None:
    """A model past its keep-alive is no longer listed, but only a command unloads it."""
    await _request(registry, MINILM_SPEC, keep_alive_s=60)
    clock.now += 61
    with capture_logs() as logs:
        assert _specs(registry) == []
        assert logs == []
        assert registry.unload_expired() is None
    assert [(e["event"], e["reason"]) for e in logs] == [("model_unloaded", "keep_alive")]


async def test_keep_alive_counts_from_when_the_last_request_finished(
    registry: ModelRegistry, clock: Clock
) -> None:
    """A model in use outlives its keep-alive; the keep-alive starts when the request ends."""
    model = await _use(registry, MINILM_SPEC, keep_alive_s=60)
    clock.now += 600
    assert registry.unload_expired() is None
    assert _specs(registry) == [model.spec]
    registry.release(model)
    clock.now += 59
    assert _specs(registry) == [model.spec]
    clock.now += 2
    assert _specs(registry) == []


async def test_without_keep_alive_the_servers_default_applies(
    registry: ModelRegistry, clock: Clock
) -> None:
    """A request that names no keep_alive gets the default (5 minutes), as in Ollama."""
    await _request(registry, MINILM_SPEC)
    clock.now += 299
    assert len(registry.resident()) == 1
    clock.now += 2
    assert _specs(registry) == []


async def test_the_latest_requests_keep_alive_is_the_models(
    registry: ModelRegistry, clock: Clock
) -> None:
    """A later request's shorter keep_alive replaces an earlier one's, as Ollama's does."""
    await _request(registry, MINILM_SPEC, keep_alive_s=3600)
    await _request(registry, MINILM_SPEC, keep_alive_s=10)
    clock.now += 11
    assert _specs(registry) == []


async def test_zero_keep_alive_unloads_the_model_right_after_the_request(
    registry: ModelRegistry,
) -> None:
    """keep_alive 0: the model is gone as soon as the request that says so finishes."""
    model = await _use(registry, MINILM_SPEC, keep_alive_s=0)
    assert _specs(registry) == [model.spec]
    with capture_logs() as logs:
        registry.release(model)
    assert _specs(registry) == []
    assert {"event": "model_unloaded", "reason": "keep_alive"}.items() <= logs[-1].items()


async def test_an_embedding_request_gives_its_model_back(
    service: EmbeddingService, registry: ModelRegistry
) -> None:
    """The pipeline releases the model when the request is done: keep_alive 0 then unloads it."""
    request = EmbeddingRequest(model="all-minilm", inputs=["a b"], keep_alive_s=0)
    assert isinstance(await service.embed(request), EmbeddingResult)
    assert _specs(registry) == []


async def test_zero_keep_alive_waits_for_the_models_last_user(registry: ModelRegistry) -> None:
    """With another request still using it, a keep_alive 0 request leaves the model until
    that one finishes."""
    other = await _use(registry, MINILM_SPEC)
    await _request(registry, MINILM_SPEC, keep_alive_s=0)
    assert _specs(registry) == [other.spec]
    registry.release(other)
    assert _specs(registry) == []


async def test_negative_keep_alive_keeps_a_model_forever(
    registry: ModelRegistry, clock: Clock
) -> None:
    """keep_alive < 0 means no expiry, as in Ollama."""
    await _request(registry, MINILM_SPEC, keep_alive_s=-1)
    clock.now += 10**9
    assert [m.expires_at for m in registry.resident()] == [None]


async def test_expires_at_says_when_the_model_goes(registry: ModelRegistry, clock: Clock) -> None:
    """Idle: the release plus its keep-alive. In use: at least its keep-alive from now."""
    model = await _use(registry, MINILM_SPEC, keep_alive_s=60)
    clock.now += 10
    assert [m.expires_at for m in registry.resident()] == [clock.now + 60]
    registry.release(model)
    released = clock.now
    clock.now += 30
    assert [m.expires_at for m in registry.resident()] == [released + 60]


async def test_unload_expired_says_how_long_until_the_next_expiry(
    tmp_path: Path, clock: Clock
) -> None:
    """The background task sleeps exactly until the soonest idle model's keep-alive ends."""
    registry = _registry(tmp_path, clock)
    assert registry.unload_expired() is None
    await _request(registry, A, keep_alive_s=60)
    await _request(registry, B, keep_alive_s=20)
    await _request(registry, C, keep_alive_s=-1)
    assert registry.unload_expired() == 20
    clock.now += 25
    assert registry.unload_expired() == 35
    assert _names(registry) == ["all-MiniLM-L6-v2", "bert-base-uncased"]


async def test_the_background_task_unloads_idle_models_with_no_request(
    registry: ModelRegistry, clock: Clock
) -> None:
    """Once started, the task wakes when the schedule changes and unloads what has expired,
    without anyone consulting the registry."""
    unloaded = asyncio.Event()

    def signal(_: WrappedLogger, __: str, line: EventDict) -> EventDict:
        if line["event"] == "model_unloaded":
            unloaded.set()
        return line

    registry.start_unloading_idle()
    try:
        model = await _use(registry, MINILM_SPEC, keep_alive_s=60)
        clock.now += 61
        with capture_logs(signal) as logs:
            registry.release(model)  # the keep-alive starts: the task wakes to reschedule
            clock.now += 61
            # the task, woken by the release, finds the keep-alive run out; nothing else asks
            await asyncio.wait_for(unloaded.wait(), timeout=10)
        assert [e["event"] for e in logs] == ["model_unloaded"]
    finally:
        await registry.stop_unloading_idle()
    assert _specs(registry) == []


async def test_a_preloaded_model_ignores_keep_alive(registry: ModelRegistry, clock: Clock) -> None:
    """A model loaded with --preload stays whatever requests' keep_alive says, 0 included."""
    assert await registry.preload(MINILM_SPEC) is None
    await _request(registry, MINILM_SPEC, keep_alive_s=0)
    clock.now += 10**6
    assert [m.expires_at for m in registry.resident()] == [None]


async def test_the_least_recently_used_model_makes_room(tmp_path: Path, clock: Clock) -> None:
    """At the model limit, loading one more unloads the one used longest ago."""
    registry = _registry(tmp_path, clock, max_loaded_models=2)
    await _request(registry, A)
    await _request(registry, B)
    await _request(registry, A)  # now B is the least recently used
    with capture_logs() as logs:
        await _request(registry, C)
    assert _names(registry) == ["all-MiniLM-L6-v2", "bert-base-uncased"]
    unloaded = [e for e in logs if e["event"] == "model_unloaded"]
    assert [(e["model"], e["reason"]) for e in unloaded] == [
        (B.qualified_name, "max_loaded_models")
    ]


async def test_an_idle_model_is_evicted_before_one_in_use(tmp_path: Path, clock: Clock) -> None:
    """Room is made from idle models first, however recently a model in use was first used."""
    registry = _registry(tmp_path, clock, max_loaded_models=2)
    held = await _use(registry, A)
    await _request(registry, B)
    await _request(registry, C)
    assert _names(registry) == ["all-MiniLM-L6-v2", "bert-base-uncased"]
    registry.release(held)


async def test_a_model_evicted_while_in_use_stays_until_its_last_user_is_done(
    tmp_path: Path, clock: Clock
) -> None:
    """With every other model in use, the least recently used is marked to go, and goes when
    its request releases it; the request never loses its model."""
    registry = _registry(tmp_path, clock, max_loaded_models=1)
    held = await _use(registry, A)
    newer = await _use(registry, B)
    assert _names(registry) == ["all-MiniLM-L6-v2", "gte-base"]
    assert [m.expires_at for m in registry.resident() if m.spec == held.spec] == [clock.now]
    registry.release(held)
    assert _specs(registry) == [newer.spec]


async def test_the_memory_limit_counts_the_models_sizes(tmp_path: Path, clock: Clock) -> None:
    """Under --max-memory, models load while their sizes fit and evict the oldest once not."""
    sizes = {A: 400, B: 500, C: 200}
    registry = _registry(tmp_path, clock, sizes, max_memory_bytes=1000)
    await _request(registry, A)
    await _request(registry, B)
    assert _names(registry) == ["all-MiniLM-L6-v2", "gte-base"]  # 900 bytes
    with capture_logs() as logs:
        await _request(registry, C)  # 1100 would pass the limit: A goes
    assert _names(registry) == ["bert-base-uncased", "gte-base"]
    assert [e["reason"] for e in logs if e["event"] == "model_unloaded"] == ["max_memory"]


async def test_preloaded_models_count_against_the_limit_but_are_never_evicted(
    tmp_path: Path, clock: Clock
) -> None:
    """A pinned model stays at the limit: the unpinned ones make room around it."""
    registry = _registry(tmp_path, clock, max_loaded_models=2)
    assert await registry.preload(A) is None
    await _request(registry, B)
    await _request(registry, C)
    assert _names(registry) == ["all-MiniLM-L6-v2", "bert-base-uncased"]


async def test_a_model_that_fits_only_without_the_preloaded_ones_is_refused(
    tmp_path: Path, clock: Clock
) -> None:
    """When the pinned models alone fill a limit, a request for another model gets
    ModelUnavailable naming the limit, and nothing is unloaded."""
    registry = _registry(tmp_path, clock, max_loaded_models=1)
    assert await registry.preload(A) is None
    refused = await registry.acquire(B)
    assert isinstance(refused, ModelUnavailable)
    assert "max_loaded_models" in refused.message
    assert _names(registry) == ["all-MiniLM-L6-v2"]


async def test_a_refused_model_unloads_no_other(tmp_path: Path, clock: Clock) -> None:
    """A model too big to fit beside the preloaded ones is refused before any other model is
    unloaded to make room for it."""
    sizes = {A: 400, B: 700, C: 100}
    registry = _registry(tmp_path, clock, sizes, max_memory_bytes=1000)
    assert await registry.preload(A) is None
    await _request(registry, C)
    with capture_logs() as logs:
        refused = await registry.acquire(B)
    assert isinstance(refused, ModelUnavailable)
    assert "max_memory" in refused.message
    assert _names(registry) == ["all-MiniLM-L6-v2", "bert-base-uncased"]
    assert [e for e in logs if e["event"] == "model_unloaded"] == []


async def test_unload_lets_a_model_go_after_its_requests(registry: ModelRegistry) -> None:
    """unload() frees an idle model at once and one in use when its last user is done; it
    says False for a model that was not loaded."""
    assert registry.unload(MINILM_SPEC) is False
    held = await _use(registry, MINILM_SPEC)
    assert registry.unload(MINILM_SPEC) is True
    assert _specs(registry) == [held.spec]
    registry.release(held)
    assert _specs(registry) == []


async def test_unload_can_spare_a_preloaded_model(registry: ModelRegistry) -> None:
    """keep_pinned (keep_alive 0 with no input) leaves a preloaded model; a plain unload
    (a delete) unloads it too."""
    assert await registry.preload(MINILM_SPEC) is None
    assert registry.unload(MINILM_SPEC, keep_pinned=True) is False
    assert len(registry.resident()) == 1
    assert registry.unload(MINILM_SPEC) is True
    assert _specs(registry) == []


async def test_unload_during_a_load_unloads_the_model_once_it_is_in(
    registry: ModelRegistry,
) -> None:
    """A model asked to go while it loads is dropped as soon as it is loaded; the request
    that loaded it still gets it."""
    pending = asyncio.create_task(registry.acquire(MINILM_SPEC))
    await asyncio.sleep(0)  # the load has started
    assert registry.unload(MINILM_SPEC) is True
    acquired = await pending
    assert isinstance(acquired, tuple)
    assert _specs(registry) == []
    registry.release(acquired[0])  # an untracked model: nothing to do, and no error


async def test_an_unloaded_model_is_no_longer_referenced(registry: ModelRegistry) -> None:
    """After unloading, nothing the registry holds keeps the model (or its Batcher) alive,
    so its memory can be freed."""
    model = await _request(registry, MINILM_SPEC)
    await model.batcher.embed([[1, 2, 3]])  # a Batcher that has run holds a worker task
    gone, batcher = weakref.ref(model), weakref.ref(model.batcher)
    registry.unload(MINILM_SPEC)
    del model
    for _ in range(1000):  # its worker ends once the engine has given its memory back
        gc.collect()
        if batcher() is None:
            break
        await asyncio.sleep(0.001)
    assert gone() is None
    assert batcher() is None


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
