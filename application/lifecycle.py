"""Which models are loaded: loading each once, keeping it per keep-alive, and letting it go.

A model stays loaded while requests use it, then for its keep-alive (Ollama's `keep_alive`, the
latest request's, else the server's default), counted from the moment its last user finished,
as Ollama counts it. A background task (`start_unloading_idle`) wakes at the next expiry, so an
idle model's memory goes without any request arriving. Limits on how many models, or how many
bytes of them, may be loaded at once make room for one more by unloading the least recently used
first. Models preloaded at start-up are pinned: no keep-alive and no limit unloads them.

A model is never unloaded under a request: one that expires, is evicted, or is asked to go
while in use goes when its last user releases it.
"""

from __future__ import annotations

import asyncio
import contextlib
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

__all__ = ["LoadError", "LoadedModel", "ModelRegistry", "folder_size"]

log = structlog.get_logger(__name__)

LoadError = ModelNotFound | ModelUnavailable | FamilyNotSupported
_DEFAULT_BATCHING = BatchSettings()


@dataclass(slots=True, weakref_slot=True)
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
    # wall-clock seconds at which it unloads if nothing uses it meanwhile, as of the last
    # `ModelRegistry.loaded()`; while in use, now + its keep-alive. None: kept for good
    expires_at: float | None


@dataclass(slots=True)
class _Resident:
    """The registry's bookkeeping for one loaded model."""

    model: LoadedModel
    keep_alive_s: float  # the latest request's; negative keeps it for good
    idle_since: float  # when its last user released it (or it loaded)
    users: int = 0
    leaving: str | None = None  # why it unloads as soon as its last user releases it


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class ModelRegistry:
    """Keeps loaded models; each model is loaded by one task however many requests ask at once.

    Every `acquire` that returns a model must be paired with one `release` of it.

    Limits (`max_loaded_models`, `max_memory_bytes`, counted over `size_bytes`) count every model
    that stays, pinned ones included, and the loads in flight. Room for one more model is made
    by unloading unpinned models, least recently used first, idle ones before ones in use (those
    go when their requests finish, so the limit can be passed until they do). A model that
    would pass a limit even with every unpinned model gone is refused (ModelUnavailable).
    """

    def __init__(  # noqa: PLR0913 - the registry's collaborators, injected by the composition root
        self,
        store: ModelStore,
        engine: InferenceEngine | EngineSelector,
        load_tokenizer: TokenizerLoader,
        executor: Executor,
        *,
        default_keep_alive_s: float = 300.0,
        max_loaded_models: int | None = None,
        max_memory_bytes: int | None = None,
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
        self._max_models = max_loaded_models
        self._max_bytes = max_memory_bytes
        self._clock = clock
        self._on_pass = on_pass  # given to every Batcher: told the rows of each forward pass
        self._pinned: set[ModelSpec] = set()  # preloaded: kept whatever keep-alive asks
        self._resident: dict[ModelSpec, _Resident] = {}  # least recently used first
        self._loading: dict[ModelSpec, asyncio.Task[LoadedModel | LoadError]] = {}
        self._unwanted: dict[ModelSpec, str] = {}  # loads in flight asked to unload: why
        self._reserved: dict[ModelSpec, int] = {}  # loads in flight past their room check: bytes
        self._schedule_changed: asyncio.Event | None = None  # made per start, on its event loop
        self._unloader: asyncio.Task[None] | None = None

    def loaded(self) -> list[LoadedModel]:
        """Every model in memory now, those about to go included, each with its expiry."""
        self.unload_expired()
        now = self._clock()
        for spec, resident in self._resident.items():
            resident.model.expires_at = self._shown_expiry(spec, resident, now)
        return [r.model for r in self._resident.values()]

    async def acquire(
        self, spec: ModelSpec, keep_alive_s: float | None = None
    ) -> tuple[LoadedModel, int] | LoadError:
        """The loaded model, and the nanoseconds this call spent waiting for it to load.

        `keep_alive_s` (None: the server's default; negative: for good) becomes the model's.
        """
        self.unload_expired()
        started = time.perf_counter_ns()
        waited = 0
        resident = self._resident.get(spec)
        if resident is None:
            task = self._loading.get(spec)
            if task is None:
                task = asyncio.create_task(self._load(spec))
                self._loading[spec] = task
            result = await asyncio.shield(task)
            if not isinstance(result, LoadedModel):
                return result
            waited = time.perf_counter_ns() - started
            resident = self._resident.get(spec)
            if resident is None or resident.model is not result:
                # unloaded before this request got to run: it still holds the model, which is
                # freed when the request ends, and `release` ignores it
                return result, waited
        resident.users += 1
        resident.keep_alive_s = self._default_keep_alive_s if keep_alive_s is None else keep_alive_s
        self._touch(spec)
        return resident.model, waited

    def release(self, model: LoadedModel) -> None:
        """One user of `model` is done; with the last, its keep-alive starts (or it goes)."""
        spec = model.spec
        resident = self._resident.get(spec)
        if resident is None or resident.model is not model or resident.users == 0:
            return
        resident.users -= 1
        self._touch(spec)
        if resident.users:
            return
        resident.idle_since = self._clock()
        if resident.leaving is not None:
            self._drop(spec, resident.leaving)
        elif resident.keep_alive_s == 0 and spec not in self._pinned:
            self._drop(spec, "keep_alive")
        else:
            self._reschedule()

    async def preload(self, spec: ModelSpec) -> LoadError | None:
        """Loads a model and keeps it loaded for good, whatever later requests' keep-alive says."""
        self._pinned.add(spec)
        result = await self.acquire(spec)
        if not isinstance(result, tuple):
            self._pinned.discard(spec)
            return result
        self.release(result[0])
        return None

    def unload(
        self, spec: ModelSpec, *, reason: str = "requested", keep_pinned: bool = False
    ) -> bool:
        """Unloads a model now, or when its last user releases it (a model still loading, once
        loaded). A pinned model is unpinned and unloaded too, unless `keep_pinned`. False where
        the model was neither loaded nor loading (or is pinned and kept)."""
        if keep_pinned and spec in self._pinned:
            return False
        self._pinned.discard(spec)
        resident = self._resident.get(spec)
        if resident is not None:
            self._let_go(spec, resident, reason)
            return True
        if spec in self._loading:
            self._unwanted[spec] = reason
            return True
        return False

    def unload_expired(self) -> float | None:
        """Unloads every idle model whose keep-alive has run out: the seconds until the next
        one's does, or None where no idle model expires."""
        now = self._clock()
        soonest: float | None = None
        for spec, resident in list(self._resident.items()):
            expires = self._idle_expiry(spec, resident)
            if expires is None:
                continue
            if expires <= now:
                self._drop(spec, "keep_alive")
            elif soonest is None or expires < soonest:
                soonest = expires
        return None if soonest is None else soonest - now

    def start_unloading_idle(self) -> None:
        """on_startup: from now on, idle models are unloaded when their keep-alive runs out."""
        if self._unloader is None or self._unloader.done():
            changed = self._schedule_changed = asyncio.Event()
            self._unloader = asyncio.create_task(self._unload_on_schedule(changed))

    async def stop_unloading_idle(self) -> None:
        """on_shutdown."""
        if self._unloader is not None:
            self._unloader.cancel()
            await asyncio.gather(self._unloader, return_exceptions=True)
            self._unloader = self._schedule_changed = None

    async def _unload_on_schedule(self, changed: asyncio.Event) -> None:
        while True:
            changed.clear()
            delay = self.unload_expired()
            # woken by the next expiry, or sooner by a release or a load that moves it
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), delay)

    def _reschedule(self) -> None:
        if self._schedule_changed is not None:
            self._schedule_changed.set()

    def _idle_expiry(self, spec: ModelSpec, resident: _Resident) -> float | None:
        if resident.users or resident.keep_alive_s < 0 or spec in self._pinned:
            return None
        return resident.idle_since + resident.keep_alive_s

    def _shown_expiry(self, spec: ModelSpec, resident: _Resident, now: float) -> float | None:
        if spec in self._pinned or resident.keep_alive_s < 0:
            return None
        if resident.leaving is not None:
            return now  # in use, and gone as soon as its requests finish
        if resident.users:
            return now + resident.keep_alive_s  # its keep-alive starts when they finish
        return resident.idle_since + resident.keep_alive_s

    def _touch(self, spec: ModelSpec) -> None:
        """Marks the model most recently used."""
        self._resident[spec] = self._resident.pop(spec)

    def _let_go(self, spec: ModelSpec, resident: _Resident, reason: str) -> None:
        if resident.users == 0:
            self._drop(spec, reason)
        elif resident.leaving is None:
            resident.leaving = reason
            log.info(
                "model_unload_deferred",
                model=spec.qualified_name,
                reason=reason,
                users=resident.users,
            )

    def _drop(self, spec: ModelSpec, reason: str) -> None:
        """Forgets the model: with the registry's references gone, its memory can be freed."""
        resident = self._resident.pop(spec)
        resident.model.expires_at = self._clock()
        log.info(
            "model_unloaded",
            model=spec.qualified_name,
            reason=reason,
            size_bytes=resident.model.size_bytes,
        )

    def _over_limit(self, spec: ModelSpec, size: int, *, pinned_only: bool = False) -> str | None:
        """The limit that `spec`, of `size` bytes, would pass beside the models that stay (or
        only the pinned ones), counting loads in flight; None where it fits."""
        sizes = [
            r.model.size_bytes
            for s, r in self._resident.items()
            if s != spec and r.leaving is None and (s in self._pinned or not pinned_only)
        ]
        sizes += [
            b
            for s, b in self._reserved.items()
            if s != spec and (s in self._pinned or not pinned_only)
        ]
        if self._max_models is not None and len(sizes) + 1 > self._max_models:
            return "max_loaded_models"
        if self._max_bytes is not None and sum(sizes) + size > self._max_bytes:
            return "max_memory"
        return None

    def _make_room(self, spec: ModelSpec, size: int) -> ModelUnavailable | None:
        """Unloads least recently used unpinned models until `spec` fits the limits."""
        while (limit := self._over_limit(spec, size)) is not None:
            evictable = [
                (s, r)
                for s, r in self._resident.items()
                if s != spec and s not in self._pinned and r.leaving is None
            ]
            if not evictable:
                break
            victim, resident = min(evictable, key=lambda item: item[1].users > 0)  # idle first
            self._let_go(victim, resident, limit)
        limit = self._over_limit(spec, size, pinned_only=True)
        if limit is None:
            return None  # fits, or will once the loads in flight finish and make room
        return ModelUnavailable(spec.qualified_name, self._refusal(limit, size))

    def _refusal(self, limit: str, size: int) -> str:
        if limit == "max_loaded_models":
            return (
                f"the preloaded models already fill the limit of {self._max_models} loaded "
                "models (max_loaded_models)"
            )
        return (
            f"its {size / 2**20:.1f} MiB would pass the memory limit of "
            f"{(self._max_bytes or 0) / 2**20:.1f} MiB (max_memory) even with only the "
            "preloaded models loaded"
        )

    async def _load(self, spec: ModelSpec) -> LoadedModel | LoadError:
        try:
            result = await self._fetch_and_build(spec, time.perf_counter_ns())
        finally:
            del self._loading[spec]
        unwanted = self._unwanted.pop(spec, None)
        if isinstance(result, LoadedModel):
            self._make_room(spec, result.size_bytes)  # a load finished meanwhile may have taken it
            self._resident[spec] = _Resident(
                result, self._default_keep_alive_s, idle_since=self._clock()
            )
            self._reschedule()
            log.info(
                "model_loaded",
                model=spec.qualified_name,
                engine=result.engine,
                precision=result.precision,
                max_abs_diff=result.parity.max_abs_diff if result.parity else None,
                min_cosine=result.parity.min_cosine if result.parity else None,
                load_ms=round(result.load_ns / 1e6, 1),
                size_bytes=result.size_bytes,
            )
            if unwanted is not None:
                self._drop(spec, unwanted)  # whoever waited for it still holds it meanwhile
        else:
            log.warning("model_load_failed", model=spec.qualified_name, error=result.message)
        return result

    async def _fetch_and_build(self, spec: ModelSpec, started: int) -> LoadedModel | LoadError:
        fetched = await asyncio.to_thread(self._fetch, spec)
        if not isinstance(fetched, tuple):
            return fetched
        folder, size = fetched
        refused = self._make_room(spec, size)
        if refused is not None:
            return refused
        self._reserved[spec] = size  # counted against the limits until it is loaded
        try:
            return await asyncio.to_thread(self._build, spec, folder, size, started)
        finally:
            del self._reserved[spec]

    def _fetch(self, spec: ModelSpec) -> tuple[Path, int] | LoadError:
        """The model's folder and its size in bytes, downloaded first if need be."""
        if spec.family not in self.engines.families:
            return FamilyNotSupported(spec.qualified_name, spec.family)
        folder = self.store.fetch(spec)
        if not isinstance(folder, Path):
            return folder
        return folder, folder_size(folder)

    def _build(
        self, spec: ModelSpec, folder: Path, size: int, started: int
    ) -> LoadedModel | LoadError:
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
            size_bytes=size,
            load_ns=time.perf_counter_ns() - started,
            expires_at=None,
        )
