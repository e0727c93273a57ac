"""Which models are loaded: loading each once, keeping it per keep-alive, and unloading it.

The registry ties the loader (application/loading.py: one load per model however many ask) to
the residency policy (application/residency.py: keep-alive, LRU, limits, pins, as decisions),
and carries out the policy's decisions. Only its commands (acquire, release, preload, unload,
and the background task started by `start_unloading_idle`, which wakes at the next expiry so an
idle model unloads without any request arriving) change what is loaded; `resident()` is a
query, and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass

import structlog

from application.batching import BatchSettings
from application.engine_choice import EngineSelector, ParityCheck, Precision
from application.loading import LoadedModel, LoadError, ModelLoader
from application.residency import DEFAULT_KEEP_ALIVE_S, ResidencyPolicy, Unload
from domain.errors import ModelTooLarge, ModelUnavailable
from domain.models import ModelSpec
from domain.ports import InferenceEngine, ModelStore, TokenizerLoader, WeightsSize

__all__ = ["LoadError", "LoadedModel", "ModelRegistry", "ResidentModel"]

log = structlog.get_logger(__name__)

_DEFAULT_BATCHING = BatchSettings()


@dataclass(frozen=True, slots=True)
class ResidentModel:
    """A snapshot of one loaded model, for queries."""

    spec: ModelSpec
    engine: str
    precision: Precision
    parity: ParityCheck | None
    size_bytes: int
    load_ns: int
    expires_at: float | None  # wall-clock seconds; None: kept for good (pinned / negative)
    context_length: int  # the tokenizer's max_tokens
    queue_depth: int  # inputs queued or being embedded

    @classmethod
    def of(cls, model: LoadedModel, expires_at: float | None) -> ResidentModel:
        return cls(
            spec=model.spec,
            engine=model.engine,
            precision=model.precision,
            parity=model.parity,
            size_bytes=model.size_bytes,
            load_ns=model.load_ns,
            expires_at=expires_at,
            context_length=model.tokenizer.max_tokens,
            queue_depth=model.batcher.waiting,
        )


class ModelRegistry:
    """Keeps loaded models, as the residency policy decides.

    Every `acquire` that returns a model must be paired with one `release` of it.
    """

    def __init__(  # noqa: PLR0913 - the registry's collaborators, injected by the composition root
        self,
        store: ModelStore,
        engine: InferenceEngine | EngineSelector,
        load_tokenizer: TokenizerLoader,
        executor: Executor,
        *,
        default_keep_alive_s: float = DEFAULT_KEEP_ALIVE_S,
        max_loaded_models: int | None = None,
        max_memory_bytes: int | None = None,
        batching: BatchSettings = _DEFAULT_BATCHING,
        clock: Callable[[], float] = time.time,
        on_pass: Callable[[int], None] | None = None,
        weights: WeightsSize | None = None,
        available_memory: Callable[[], int | None] = lambda: None,
    ) -> None:
        """`weights` tells a model's size before it is fetched (None: only once fetched);
        `available_memory` is the machine's free memory now (None: unknown)."""
        engines = engine if isinstance(engine, EngineSelector) else EngineSelector(engine)
        self._loader = ModelLoader(
            store,
            engines,
            load_tokenizer,
            executor,
            batching,
            make_room=self._make_room,
            loaded=self._admit,
            on_pass=on_pass,
            weights=weights,
            too_large=self._too_large,
        )
        self._max_memory_bytes = max_memory_bytes
        self._available_memory = available_memory
        self._policy = ResidencyPolicy(
            default_keep_alive_s=default_keep_alive_s,
            max_loaded_models=max_loaded_models,
            max_memory_bytes=max_memory_bytes,
        )
        self._clock = clock
        self._models: dict[ModelSpec, LoadedModel] = {}
        self._unload_once_loaded: dict[ModelSpec, str] = {}  # loads in flight asked to unload: why
        self._idle = _IdleUnloader(self.unload_expired)

    def resident(self) -> tuple[ResidentModel, ...]:
        """The models loaded now, least recently used first; one whose keep-alive has run out
        is not listed, whether or not it is unloaded yet."""
        listed = self._policy.resident(self._clock())
        return tuple(ResidentModel.of(self._models[spec], expires) for spec, expires in listed)

    async def acquire(
        self, spec: ModelSpec, keep_alive_s: float | None = None
    ) -> tuple[LoadedModel, int] | LoadError:
        """The loaded model, and the nanoseconds this call spent waiting for it to load.

        `keep_alive_s` (None: the server's default; negative: for good) becomes the model's.
        """
        self.unload_expired()
        started = time.perf_counter_ns()
        waited = 0
        model = self._models.get(spec)
        if model is None:
            loaded = await self._loader.load(spec)
            if not isinstance(loaded, LoadedModel):
                return loaded
            waited = time.perf_counter_ns() - started
            if self._models.get(spec) is not loaded:
                # unloaded before this request got to run: it still holds the model, which is
                # freed when the request ends, and `release` ignores it
                return loaded, waited
            model = loaded
        self._policy.use(spec, keep_alive_s)
        return model, waited

    def release(self, model: LoadedModel) -> None:
        """One user of `model` is done; with the last, its keep-alive starts (or it unloads)."""
        if self._models.get(model.spec) is model:
            self._carry_out(self._policy.release(model.spec, self._clock()))
            self._idle.reschedule()

    async def preload(self, spec: ModelSpec) -> LoadError | None:
        """Loads a model and keeps it loaded for good, whatever later requests' keep-alive says."""
        self._policy.pin(spec)
        result = await self.acquire(spec)
        if not isinstance(result, tuple):
            self._policy.unpin(spec)
            return result
        self.release(result[0])
        return None

    def unload(
        self, spec: ModelSpec, *, reason: str = "requested", keep_pinned: bool = False
    ) -> bool:
        """Unloads a model now, or when its last user releases it (a model still loading, once
        loaded). A pinned model is unpinned and unloaded too, unless `keep_pinned`. False where
        the model was neither loaded nor loading (or is pinned and kept)."""
        if keep_pinned and self._policy.is_pinned(spec):
            return False
        self._policy.unpin(spec)
        if spec in self._models:
            self._carry_out(self._policy.unload(spec, reason))
            return True
        if self._loader.is_loading(spec):
            self._unload_once_loaded[spec] = reason
            return True
        return False

    def unload_expired(self) -> float | None:
        """Unloads every idle model whose keep-alive has run out: the seconds until the next
        one's does, or None where no idle model expires."""
        now = self._clock()
        self._carry_out(self._policy.expire(now))
        soonest = self._policy.next_expiry()
        return None if soonest is None else soonest - now

    def start_unloading_idle(self) -> None:
        """on_startup: from now on, idle models are unloaded when their keep-alive runs out."""
        self._idle.start()

    async def stop_unloading_idle(self) -> None:
        """on_shutdown."""
        await self._idle.stop()

    def _too_large(self, spec: ModelSpec, held: int, peak: int) -> ModelTooLarge | None:
        """Before a model is fetched: whether its weights (`held` bytes once loaded, `peak`
        while it loads) can never fit, under --max-memory or in the machine's memory. What the
        unpinned loaded models hold counts as available: they are unloaded to make room."""
        name, limit = spec.qualified_name, self._max_memory_bytes
        if limit is not None and held > limit:
            return ModelTooLarge(name, held, limit, "the memory limit (--max-memory)")
        available = self._available_memory()
        if available is None:
            return None
        room = available + self._policy.unpinned_bytes(excluding=spec)
        if peak > room:
            return ModelTooLarge(name, peak, room, "the memory this machine has available")
        return None

    def _make_room(self, spec: ModelSpec, size: int) -> ModelUnavailable | None:
        """Before a model is built: its refusal, or room made for it."""
        refused = self._policy.refusal(spec, size, self._loader.building)
        if refused is None:
            self._carry_out(self._policy.make_room(spec, size, self._loader.building))
        return refused

    def _admit(self, spec: ModelSpec, result: LoadedModel | LoadError) -> None:
        """A load has ended: the model, if loaded, joins the others."""
        pending = self._unload_once_loaded.pop(spec, None)
        if not isinstance(result, LoadedModel):
            return
        # a load that finished meanwhile may have taken the room made before the build
        self._carry_out(self._policy.make_room(spec, result.size_bytes, self._loader.building))
        self._policy.admit(spec, result.size_bytes, self._clock())
        self._models[spec] = result
        self._idle.reschedule()
        if pending is not None:  # whoever waited for it still holds it meanwhile
            self._carry_out(self._policy.unload(spec, pending))

    def _carry_out(self, decisions: Iterable[Unload]) -> None:
        for unload in decisions:
            model = unload.spec.qualified_name
            if unload.users:
                log.info(
                    "model_unload_deferred", model=model, reason=unload.reason, users=unload.users
                )
                continue
            # with the registry's reference gone, the model's memory can be freed
            size_bytes = self._models.pop(unload.spec).size_bytes
            log.info("model_unloaded", model=model, reason=unload.reason, size_bytes=size_bytes)


class _IdleUnloader:
    """The background task that unloads idle models as their keep-alive runs out."""

    def __init__(self, unload_expired: Callable[[], float | None]) -> None:
        self._unload_expired = unload_expired  # unloads, and says how long until the next
        self._changed: asyncio.Event | None = None  # made per start, on its event loop
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            changed = self._changed = asyncio.Event()
            self._task = asyncio.create_task(self._run(changed))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = self._changed = None

    def reschedule(self) -> None:
        """The next expiry may have moved: wake the task to look again."""
        if self._changed is not None:
            self._changed.set()

    async def _run(self, changed: asyncio.Event) -> None:
        while True:
            changed.clear()
            delay = self._unload_expired()
            # woken by the next expiry, or sooner by a release or a load that moves it
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), delay)
