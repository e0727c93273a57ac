"""Liveness (`GET /health`), readiness (`GET /ready`), and the models preloaded at start-up."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import msgspec
import structlog
from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from application.catalogue import Catalogue
from application.lifecycle import ModelRegistry
from domain.models import ModelSpec

__all__ = ["DEFAULT_MODEL", "Health", "HealthStatus"]

log = structlog.get_logger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"  # what /ready waits for when nothing is preloaded


class HealthStatus(msgspec.Struct):
    status: str


class Health:
    """Ready once the first preloaded model (or else the default model) has been loaded, and
    from then on: a default model that keep-alive unloads loads again at its next request, so
    the server stays able to serve. `preload` models are loaded for good at start-up."""

    def __init__(
        self, registry: ModelRegistry, catalogue: Catalogue, preload: Sequence[ModelSpec] = ()
    ) -> None:
        self._registry = registry
        self._ready_model = preload[0] if preload else catalogue.resolve(DEFAULT_MODEL)
        self._preload = tuple(preload)
        self._task: asyncio.Task[None] | None = None
        self._was_ready = False

    def handlers(self) -> list[HTTPRouteHandler]:
        @get("/health", include_in_schema=False, sync_to_thread=False)
        def health() -> HealthStatus:
            return HealthStatus("ok")

        @get("/ready", include_in_schema=False, sync_to_thread=False)
        def ready() -> Response[HealthStatus]:
            if self._was_ready or any(
                m.spec == self._ready_model for m in self._registry.resident()
            ):
                self._was_ready = True
                return Response(HealthStatus("ok"))
            return Response(HealthStatus("loading"), status_code=503)

        return [health, ready]

    def start_preloading(self) -> None:
        """on_startup: loads in the background, so the server answers /health meanwhile."""
        if self._preload:
            self._task = asyncio.create_task(self._load_all())

    async def stop_preloading(self) -> None:
        """on_shutdown: a load still running is abandoned."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _load_all(self) -> None:
        for spec in self._preload:
            error = await self._registry.preload(spec)
            if error is not None:
                log.error("model_preload_failed", model=spec.qualified_name, error=error.message)
