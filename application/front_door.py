"""The application's one front door: what every front end calls, and all that it calls.

The HTTP dialects, the CLI, and any later front end (a cluster deployment, a batch job) embed,
describe, list, pull, delete, unload and preload models here, and read readiness here. Commands
change state; queries return frozen snapshots (`ModelEntry`, `ResidentModel`) and change
nothing. No front end touches the catalogue, the model registry or a loaded model's parts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from application.catalogue import Alias, Catalogue
from application.embedding import EmbeddingService
from application.embedding_cache import CacheStats, EmbeddingCache
from application.lifecycle import ModelRegistry, ResidentModel
from application.model_admin import ModelAdmin, Pulled, Removed
from application.model_lookup import Lookup, ModelLookup, as_lookup
from application.ollama_library import AwaitedModel
from application.readiness import Readiness
from application.reranking import RerankService
from domain.errors import (
    ArchitectureNotSupported,
    EmbedError,
    ModelNotFound,
    ModelUnavailable,
    NotRemovable,
)
from domain.models import ModelSpec
from domain.ports import FolderFacts, ModelFacts, OnProgress
from domain.requests import EmbeddingRequest, EmbeddingResult
from domain.reranking import RerankRequest, RerankResult

__all__ = [
    "AwaitedModel",
    "CacheStats",
    "FrontDoor",
    "ModelEntry",
    "Pulled",
    "Removed",
    "ResidentModel",
]


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A model as the listings show it, at one moment."""

    spec: ModelSpec
    aliases: tuple[Alias, ...]  # the other names it answers to: library names, --alias
    disk: FolderFacts | None  # None: not downloaded yet
    running: ResidentModel | None  # None: not loaded
    named: Alias | None = None  # the alias a look-up by name went through, if one did


class FrontDoor:
    """One object per server (or CLI run) that wires the use cases together."""

    def __init__(  # noqa: PLR0913 - the use cases, given by the composition root
        self,
        catalogue: Catalogue | ModelLookup,
        registry: ModelRegistry,
        embeddings: EmbeddingService,
        admin: ModelAdmin,
        facts: ModelFacts,
        *,
        ready_model: ModelSpec | None = None,
        preload: Sequence[ModelSpec] = (),
        cache: EmbeddingCache | None = None,
        reranking: RerankService | None = None,
    ) -> None:
        """`ready_model`: the model whose first load makes the server ready (see Readiness)."""
        self._names = as_lookup(catalogue)
        self._registry = registry
        self._embeddings = embeddings
        # the same lookup and registry as embedding: one lifecycle for both kinds of model
        self._reranking = reranking or RerankService(self._names, registry)
        self._admin = admin
        self._facts = facts
        self._cache = cache
        self._readiness = Readiness(registry, ready_model, preload)

    # -- commands ---------------------------------------------------------------------------

    async def start(self) -> None:
        """On start-up: idle models unload on schedule; preloads begin in the background."""
        self._registry.start_unloading_idle()
        self._readiness.start()

    async def stop(self) -> None:
        await self._readiness.stop()
        await self._registry.stop_unloading_idle()

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResult | EmbedError:
        """Nothing to embed and keep_alive 0 is Ollama's way to unload a model (see `unload`)."""
        if not request.inputs and request.keep_alive_s == 0:
            return self.unload(request.model)
        result = await self._embeddings.embed(request)
        if isinstance(result, EmbeddingResult):
            spec = self._names.known(request.model)
            if spec is not None:
                self._readiness.loaded(spec)
        return result

    async def rerank(self, request: RerankRequest) -> RerankResult | EmbedError:
        result = await self._reranking.rerank(request)
        if isinstance(result, RerankResult):
            spec = self._names.known(request.model)
            if spec is not None:
                self._readiness.loaded(spec)
        return result

    def unload(self, name: str) -> EmbeddingResult | ModelNotFound:
        """The model goes once its requests in flight finish (a preloaded one stays); one that
        is not loaded is not loaded first. Answers an empty result, as Ollama does."""
        spec = self._names.known(name)
        if spec is None:
            return ModelNotFound(name)
        self._registry.unload(spec, reason="keep_alive", keep_pinned=True)
        return EmbeddingResult(
            model=spec.qualified_name,
            vectors=np.zeros((0, spec.dimensions), dtype=np.float32),
            token_counts=(),
            load_ns=0,
            total_ns=0,
            batches=0,
        )

    async def find(self, name: str) -> Lookup:
        """The model a name stands for, to pull it: a repo id is described from its config
        files (fetched from the Hub if it is not on disk), and refused if we cannot run it."""
        return await asyncio.to_thread(self._admin.resolve, name)

    def pull(
        self, spec: ModelSpec, progress: OnProgress | None = None
    ) -> Pulled | ModelNotFound | ModelUnavailable:
        """Blocks until the model is on disk: callers on an event loop use a thread."""
        return self._admin.pull(spec, progress)

    def stored(self) -> list[tuple[ModelSpec, int | None]]:
        """Every listed model with its bytes on disk (None: not there), without hashing.
        Walks folders: callers on an event loop use a thread."""
        return self._admin.stored()

    async def delete(self, name: str) -> Removed | NotRemovable | ModelNotFound:
        """Unloads the model, then deletes its files."""
        spec = await asyncio.to_thread(self._admin.resolve_present, name)
        if isinstance(spec, ModelNotFound):
            return spec
        return await self._admin.delete(spec, name)

    # -- queries ----------------------------------------------------------------------------

    def ready(self) -> bool:
        return self._readiness.ready()

    def canonical_name(self, requested: str) -> str | None:
        """`name:tag` of the model a requested name stands for; None for an unknown name."""
        spec = self._names.known(requested)
        return None if spec is None else spec.qualified_name

    def cache_stats(self) -> CacheStats | None:
        """The embeddings cache's counters; None where the server runs without one."""
        return None if self._cache is None else self._cache.stats

    def resident(self) -> tuple[ResidentModel, ...]:
        """The models in memory now, with their expiry and queue depth."""
        return self._registry.resident()

    async def models(self) -> list[ModelEntry]:
        """Every catalogue model and every repo-id model on disk (as --allow-models lets);
        facts from disk are read in a thread (hashing is slow)."""

        def listed() -> list[tuple[ModelSpec, FolderFacts | None]]:
            return [(s, self._facts.facts(s)) for s in self._names.listed()]

        running = {m.spec: m for m in self._registry.resident()}
        return [
            ModelEntry(spec, self._names.aliases(spec), facts, running.get(spec))
            for spec, facts in await asyncio.to_thread(listed)
        ]

    def awaited(self) -> tuple[AwaitedModel, ...]:
        """Ollama library names listed before their architecture runs here."""
        return self._names.awaited()

    async def model(
        self, name: str
    ) -> ModelEntry | ModelNotFound | ModelUnavailable | ArchitectureNotSupported:
        """A model by any of its names; a repo id is described first (from the Hub if it is
        not on disk), so it can be shown before it is pulled."""
        spec = await self._names.find(name)
        if not isinstance(spec, ModelSpec):
            return spec
        return await self._entry(spec, named=self._names.alias(name))

    async def running(self) -> list[ModelEntry]:
        """The models in memory, each with its facts from disk."""
        resident = self._registry.resident()
        disk = await asyncio.to_thread(lambda: [self._facts.facts(m.spec) for m in resident])
        return [
            ModelEntry(m.spec, self._names.aliases(m.spec), facts, m)
            for m, facts in zip(resident, disk, strict=True)
        ]

    async def _entry(self, spec: ModelSpec, named: Alias | None = None) -> ModelEntry:
        facts = await asyncio.to_thread(self._facts.facts, spec)
        running = next((m for m in self._registry.resident() if m.spec == spec), None)
        return ModelEntry(spec, self._names.aliases(spec), facts, running, named)
