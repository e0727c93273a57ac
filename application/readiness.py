"""Readiness, and the models preloaded at start-up."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from application.lifecycle import ModelRegistry
from domain.models import ModelSpec

__all__ = ["Readiness"]

log = structlog.get_logger(__name__)


class Readiness:
    """Ready once `model` (the first preloaded one, else the default model) has loaded, and from
    then on: a model that keep-alive unloads loads again at its next request, so the server stays
    able to serve. `preload` models are loaded for good, in the background, from `start`."""

    def __init__(
        self, registry: ModelRegistry, model: ModelSpec | None, preload: Sequence[ModelSpec] = ()
    ) -> None:
        self._registry = registry
        self._model = model
        self._preload = tuple(preload)
        self._task: asyncio.Task[None] | None = None
        self._loaded_once = False

    def ready(self) -> bool:
        """A query: it reads what the commands recorded and what is loaded, and changes nothing."""
        return self._loaded_once or any(m.spec == self._model for m in self._registry.resident())

    def loaded(self, spec: ModelSpec) -> None:
        """Told by the commands that load models (embed, preload) when one has loaded."""
        if spec == self._model:
            self._loaded_once = True

    def start(self) -> None:
        """on_startup: loads in the background, so the server answers /health meanwhile."""
        if self._preload:
            self._task = asyncio.create_task(self._load_all())

    async def stop(self) -> None:
        """on_shutdown: a load still running is abandoned."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _load_all(self) -> None:
        for spec in self._preload:
            error = await self._registry.preload(spec)
            if error is None:
                self.loaded(spec)
            else:
                log.error("model_preload_failed", model=spec.qualified_name, error=error.message)
