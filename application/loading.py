"""Loading a model: its files, its tokenizer, the engine that runs it and its Batcher, once.

However many requests ask for a model that is not loaded, one task loads it and they all wait
for that task. Between fetching the files (when the model's size is known) and building it
(when the memory is taken), the loader asks its owner to make room for it; from then until it
is built, its size counts as a load in flight (`building`).

Before anything is fetched, a model whose weights cannot fit is refused (ModelTooLarge): their
float32 size is read from the safetensors headers (domain.ports.WeightsSize: the folder's, or
the Hub's by range requests), so a 16 GB model on a small machine costs a few kB, not a
download and a crash.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import structlog

from application.batching import Batcher, BatchSettings
from application.engine_choice import EngineSelector, ParityCheck, Precision
from domain.errors import FamilyNotSupported, ModelNotFound, ModelTooLarge, ModelUnavailable
from domain.models import ModelSpec
from domain.ports import Encoder, ModelStore, Tokenizer, TokenizerLoader, WeightsSize

__all__ = ["LoadError", "LoadedModel", "ModelLoader", "folder_size"]

log = structlog.get_logger(__name__)

LoadError = ModelNotFound | ModelUnavailable | ModelTooLarge | FamilyNotSupported


@dataclass(slots=True, weakref_slot=True)
class LoadedModel:
    spec: ModelSpec
    tokenizer: Tokenizer
    encoder: Encoder
    batcher: Batcher
    engine: str  # the engine that runs it
    precision: Precision
    parity: ParityCheck | None  # the gate it passed; None on the reference engine
    size_bytes: int
    load_ns: int


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class ModelLoader:
    """Loads each model by one task however many ask at once.

    `make_room(spec, size)` is called once the size is known and before the model is built: a
    refusal ends the load with it. `loaded(spec, result)` is called once per load, when it ends.
    `too_large(spec, held, peak)` is asked before any download, where `weights` can tell the
    weights' float32 size (`held`); `peak` is what the load holds at once (EngineSelector's
    copies_at_load of it).
    """

    def __init__(  # noqa: PLR0913 - the loader's collaborators, injected by the registry
        self,
        store: ModelStore,
        engines: EngineSelector,
        load_tokenizer: TokenizerLoader,
        executor: Executor,
        batching: BatchSettings,
        *,
        make_room: Callable[[ModelSpec, int], ModelUnavailable | None],
        loaded: Callable[[ModelSpec, LoadedModel | LoadError], None],
        on_pass: Callable[[int], None] | None = None,
        weights: WeightsSize | None = None,
        too_large: Callable[[ModelSpec, int, int], ModelTooLarge | None] | None = None,
    ) -> None:
        self._store = store
        self._engines = engines
        self._load_tokenizer = load_tokenizer
        self._executor = executor
        self._batching = batching
        self._make_room = make_room
        self._loaded = loaded
        self._on_pass = on_pass  # given to every Batcher: told the rows of each forward pass
        self._weights = weights
        self._too_large = too_large
        self._loading: dict[ModelSpec, asyncio.Task[LoadedModel | LoadError]] = {}
        self._building: dict[ModelSpec, int] = {}

    @property
    def building(self) -> Mapping[ModelSpec, int]:
        """The loads past their room check, not yet built, and their sizes in bytes."""
        return self._building

    def is_loading(self, spec: ModelSpec) -> bool:
        return spec in self._loading

    async def load(self, spec: ModelSpec) -> LoadedModel | LoadError:
        """The model, loaded by the load in flight or by a new one."""
        task = self._loading.get(spec)
        if task is None:
            task = self._loading[spec] = asyncio.create_task(self._load(spec))
        # a caller that gives up (a client gone) must not cancel the load the others wait for
        return await asyncio.shield(task)

    async def _load(self, spec: ModelSpec) -> LoadedModel | LoadError:
        try:
            result = await self._fetch_and_build(spec, time.perf_counter_ns())
        finally:
            del self._loading[spec]
        if isinstance(result, LoadedModel):
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
        else:
            log.warning("model_load_failed", model=spec.qualified_name, error=result.message)
        self._loaded(spec, result)
        return result

    async def _fetch_and_build(self, spec: ModelSpec, started: int) -> LoadedModel | LoadError:
        fetched = await asyncio.to_thread(self._fetch, spec)
        if not isinstance(fetched, tuple):
            return fetched
        folder, size = fetched
        refused = self._make_room(spec, size)
        if refused is not None:
            return refused
        self._building[spec] = size
        try:
            return await asyncio.to_thread(self._build, spec, folder, size, started)
        finally:
            del self._building[spec]

    def _fetch(self, spec: ModelSpec) -> tuple[Path, int] | LoadError:
        """The model's folder and its size in bytes, downloaded first if need be: the weights'
        float32 size where their headers tell it (a bfloat16 file doubles), else the folder's."""
        if spec.family not in self._engines.families:
            return FamilyNotSupported(spec.qualified_name, spec.family)
        held = self._weights.held_bytes(spec) if self._weights is not None else None
        if held is not None and self._too_large is not None:
            refused = self._too_large(spec, held, held * self._engines.copies_at_load(spec))
            if refused is not None:
                return refused
        folder = self._store.fetch(spec)
        if not isinstance(folder, Path):
            return folder
        return folder, folder_size(folder) if held is None else held

    def _build(
        self, spec: ModelSpec, folder: Path, size: int, started: int
    ) -> LoadedModel | LoadError:
        tokenizer = self._load_tokenizer(spec, folder)
        if isinstance(tokenizer, ModelUnavailable):
            return tokenizer
        chosen = self._engines.choose(spec, folder, tokenizer)
        if isinstance(chosen, ModelUnavailable):
            return chosen
        batcher = Batcher(
            chosen.encoder,
            self._executor,
            self._batching,
            spec.qualified_name,
            on_pass=self._on_pass,
            max_tokens=tokenizer.max_tokens,
        )
        return LoadedModel(
            spec=spec,
            tokenizer=tokenizer,
            encoder=chosen.encoder,
            batcher=batcher,
            engine=chosen.engine,
            precision=chosen.precision,
            parity=chosen.parity,
            size_bytes=size,
            load_ns=time.perf_counter_ns() - started,
        )
