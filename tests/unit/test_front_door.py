"""The front door: what every front end calls. Commands change state; queries do not."""

from __future__ import annotations

from pathlib import Path

import pytest

from application.catalogue import CATALOGUE, Catalogue
from application.embedding import EmbeddingService
from application.front_door import FrontDoor, ModelEntry
from application.lifecycle import ModelRegistry
from application.model_admin import ModelAdmin
from domain.errors import ModelNotFound
from domain.models import ModelSpec
from domain.requests import EmbeddingRequest, EmbeddingResult
from tests.fakes import FakeDecoder, FakeDownloads, FakeEngine, FakeFacts, FakeStore
from tests.unit.conftest import Clock

CATALOGUED = Catalogue(CATALOGUE)


def _spec(name: str) -> ModelSpec:
    spec = CATALOGUED.resolve(name)
    assert spec is not None
    return spec


MINILM = _spec("all-MiniLM-L6-v2")
GTE = _spec("gte-base")


@pytest.fixture
def door(registry: ModelRegistry, tmp_path: Path) -> FrontDoor:
    catalogue = Catalogue(CATALOGUE).with_aliases([("text-embedding-3-small", "all-minilm")])
    assert isinstance(catalogue, Catalogue)
    return FrontDoor(
        catalogue,
        registry,
        EmbeddingService(catalogue, registry, FakeDecoder()),
        ModelAdmin(catalogue, FakeDownloads(tmp_path / "hub"), [], registry),
        FakeFacts(MINILM),
        ready_model=MINILM,
    )


def _ok(result: object) -> EmbeddingResult:
    assert isinstance(result, EmbeddingResult), result
    return result


async def test_no_inputs_and_keep_alive_zero_unloads_without_loading(
    door: FrontDoor, engine: FakeEngine
) -> None:
    """Ollama's unload idiom answers an empty result and never loads a model to unload it."""
    result = _ok(await door.embed(EmbeddingRequest("all-minilm", [], keep_alive_s=0)))
    assert result.vectors.shape == (0, MINILM.dimensions)
    assert engine.loads == []
    assert door.resident() == ()


async def test_no_inputs_and_keep_alive_zero_unloads_a_loaded_model(door: FrontDoor) -> None:
    """The model goes: the next query no longer lists it."""
    _ok(await door.embed(EmbeddingRequest("all-minilm", ["a"])))
    assert [m.spec for m in door.resident()] == [MINILM]
    _ok(await door.embed(EmbeddingRequest("all-minilm", [], keep_alive_s=0)))
    assert door.resident() == ()


async def test_unloading_an_unknown_model_is_model_not_found(door: FrontDoor) -> None:
    """An unknown name is the same 404 as for embedding."""
    assert await door.embed(EmbeddingRequest("nope", [], keep_alive_s=0)) == ModelNotFound("nope")


async def test_ready_once_the_ready_model_has_loaded_and_from_then_on(
    door: FrontDoor, registry: ModelRegistry, clock: Clock
) -> None:
    """Not ready before the model loads; still ready after keep-alive has unloaded it."""
    assert not door.ready()
    _ok(await door.embed(EmbeddingRequest("all-minilm", ["a"], keep_alive_s=1)))
    assert door.ready()
    clock.now += 10
    registry.unload_expired()  # what the scheduler does when the keep-alive runs out
    assert door.resident() == ()
    assert door.ready()


async def test_another_model_does_not_make_the_server_ready(
    door: FrontDoor, store: FakeStore, tmp_path: Path
) -> None:
    """Readiness waits for its own model, not for any model."""
    store.folders[GTE.repo_id] = tmp_path
    _ok(await door.embed(EmbeddingRequest("gte-base", ["a"])))
    assert [m.spec for m in door.resident()] == [GTE]
    assert not door.ready()


async def test_queries_change_nothing(
    door: FrontDoor, registry: ModelRegistry, clock: Clock
) -> None:
    """Listing a model whose keep-alive has run out does not unload it: only commands do."""
    _ok(await door.embed(EmbeddingRequest("all-minilm", ["a"], keep_alive_s=1)))
    clock.now += 10
    for _ in range(2):
        assert door.resident() == ()  # as good as gone, so not listed
        assert all(e.running is None for e in await door.models())
        assert await door.running() == []
        assert door.ready()
    assert registry.unload(MINILM)  # a command: the model was still there to unload


async def test_models_lists_the_catalogue_with_disk_facts_and_what_runs(door: FrontDoor) -> None:
    """One entry per catalogue model; facts where on disk; the snapshot where loaded."""
    _ok(await door.embed(EmbeddingRequest("all-minilm", ["a"])))
    entries = await door.models()
    assert [e.spec for e in entries] == list(CATALOGUE)
    minilm = next(e for e in entries if e.spec == MINILM)
    assert minilm.disk is not None
    assert minilm.running is not None
    assert minilm.running.engine == "fake"
    assert all(e.disk is None and e.running is None for e in entries if e.spec != MINILM)


async def test_a_model_looked_up_by_alias_says_which_alias(door: FrontDoor) -> None:
    """A configured alias is named on the entry; the model's own name names none."""
    by_alias = await door.model("text-embedding-3-small")
    assert isinstance(by_alias, ModelEntry)
    assert by_alias.spec == MINILM
    assert by_alias.named is not None
    assert by_alias.named.configured
    by_name = await door.model("all-MiniLM-L6-v2")
    assert isinstance(by_name, ModelEntry)
    assert by_name.named is None
    assert await door.model("nope") == ModelNotFound("nope")


async def test_running_lists_only_loaded_models_with_their_facts(door: FrontDoor) -> None:
    """/api/ps's query: the loaded models, each with its disk facts."""
    assert await door.running() == []
    _ok(await door.embed(EmbeddingRequest("all-minilm", ["a"])))
    (entry,) = await door.running()
    assert entry.spec == MINILM
    assert entry.disk is not None
    assert entry.running is not None
    assert entry.running.queue_depth == 0


def test_canonical_names_resolve_aliases_and_refuse_unknown_names(door: FrontDoor) -> None:
    """Metrics label requests by the model's own name, so aliases share one series."""
    assert door.canonical_name("all-minilm") == "all-MiniLM-L6-v2:latest"
    assert door.canonical_name("text-embedding-3-small") == "all-MiniLM-L6-v2:latest"
    assert door.canonical_name("nope") is None
