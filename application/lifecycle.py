"""Loading models once, sharing concurrent first loads, and forgetting them after keep-alive."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import structlog

from application.batching import Batcher, BatchSettings
from application.engine_choice import EngineSelector, ParityCheck, Precision
from domain.errors import FamilyNotSupported, ModelNotFound, ModelUnavailable
from domain.models import ModelSpec
from domain.ports import Encoder, InferenceEngine, ModelStore, Tokenizer, TokenizerLoader

__all__ = ["LoadError", "LoadedModel", "ModelRegistry"]

log = structlog.get_logger(__name__)

LoadError = ModelNotFound | ModelUnavailable | FamilyNotSupported
_DEFAULT_BATCHING = BatchSettings()


@dataclass(slots=True)
class LoadedModel:
    spec: ModelSpec
    folder: Path
    tokenizer: Tokenizer
    encoder: Encoder
    batcher: Batcher
    engine: str  # the engine that runs it
    precision: Precision
    parity: ParityCheck | None  # the gate it passed; None on the reference engine
    size_bytes: int
    load_ns: int
    expires_at: float | None  # wall-clock seconds; None keeps it loaded forever


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class ModelRegistry:
    """Keeps loaded models; each model is loaded by one task however many requests ask at once.

    Expired models are dropped when the registry is next consulted; a request that already holds
    a model keeps it alive until it finishes.
    """

    def __init__(  # noqa: PLR0913 - the registry's collaborators, injected by the composition root
        self,
        store: ModelStore,
        engine: InferenceEngine | EngineSelector,
        load_tokenizer: TokenizerLoader,
        executor: Executor,
        *,
        default_keep_alive_s: float = 300.0,
        batching: BatchSettings = _DEFAULT_BATCHING,
        clock: Callable[[], float] = time.time,
        on_pass: Callable[[int], None] | None = None,
    ) -> None:
        self.store = store
        self.engines = engine if isinstance(engine, EngineSelector) else EngineSelector(engine)
        self._batching = batching
        self._load_tokenizer = load_tokenizer
        self._executor = executor
        self._default_keep_alive_s = default_keep_alive_s
        self._clock = clock
        self._on_pass = on_pass  # given to every Batcher: told the rows of each forward pass
        self._pinned: set[ModelSpec] = set()  # preloaded: kept whatever keep-alive asks
        self._loaded: dict[ModelSpec, LoadedModel] = {}
        self._loading: dict[ModelSpec, asyncio.Task[LoadedModel | LoadError]] = {}

    def loaded(self) -> list[LoadedModel]:
        self._forget_expired()
        return list(self._loaded.values())

    async def acquire(
        self, spec: ModelSpec, keep_alive_s: float | None = None
    ) -> tuple[LoadedModel, int] | LoadError:
        """The loaded model, and the nanoseconds this call spent waiting for it to load."""
        self._forget_expired()
        started = time.perf_counter_ns()
        waited = 0
        model = self._loaded.get(spec)
        if model is None:
            task = self._loading.get(spec)
            if task is None:
                task = asyncio.create_task(self._load(spec))
                self._loading[spec] = task
            result = await asyncio.shield(task)
            if not isinstance(result, LoadedModel):
                return result
            model = result
            waited = time.perf_counter_ns() - started
        model.expires_at = None if spec in self._pinned else self._expiry(keep_alive_s)
        return model, waited

    async def preload(self, spec: ModelSpec) -> LoadError | None:
        """Loads a model and keeps it loaded for good, whatever later requests' keep-alive says."""
        self._pinned.add(spec)
        result = await self.acquire(spec)
        return None if isinstance(result, tuple) else result

    def _expiry(self, keep_alive_s: float | None) -> float | None:
        seconds = self._default_keep_alive_s if keep_alive_s is None else keep_alive_s
        return None if seconds < 0 else self._clock() + seconds

    def _forget_expired(self) -> None:
        now = self._clock()
        for spec, model in list(self._loaded.items()):
            if model.expires_at is not None and model.expires_at <= now:
                del self._loaded[spec]
                log.info("model_unloaded", model=spec.qualified_name, reason="keep_alive")

    async def _load(self, spec: ModelSpec) -> LoadedModel | LoadError:
        try:
            result = await asyncio.to_thread(self._load_blocking, spec)
        finally:
            del self._loading[spec]
        if isinstance(result, LoadedModel):
            self._loaded[spec] = result
            log.info(
                "model_loaded",
                model=spec.qualified_name,
                engine=result.engine,
                precision=result.precision,
                max_abs_diff=result.parity.max_abs_diff if result.parity else None,
                min_cosine=result.parity.min_cosine if result.parity else None,
                load_ms=round(result.load_ns / 1e6, 1),
            )
        else:
            log.warning("model_load_failed", model=spec.qualified_name, error=result.message)
        return result

    def _load_blocking(self, spec: ModelSpec) -> LoadedModel | LoadError:
        started = time.perf_counter_ns()
        if spec.family not in self.engines.families:
            return FamilyNotSupported(spec.qualified_name, spec.family)
        folder = self.store.fetch(spec)
        if not isinstance(folder, Path):
            return folder
        tokenizer = self._load_tokenizer(spec, folder)
        if isinstance(tokenizer, ModelUnavailable):
            return tokenizer
        chosen = self.engines.choose(spec, folder, tokenizer)
        if isinstance(chosen, ModelUnavailable):
            return chosen
        return LoadedModel(
            spec=spec,
            folder=folder,
            tokenizer=tokenizer,
            encoder=chosen.encoder,
            batcher=Batcher(
                chosen.encoder,
                self._executor,
                self._batching,
                spec.qualified_name,
                on_pass=self._on_pass,
            ),
            engine=chosen.engine,
            precision=chosen.precision,
            parity=chosen.parity,
            size_bytes=folder_size(folder),
            load_ns=time.perf_counter_ns() - started,
            expires_at=None,
        )
