"""Liveness (`GET /health`) and readiness (`GET /ready`)."""

from __future__ import annotations

import msgspec
from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from adapters.http.errors import NotReady, status_of
from application.front_door import FrontDoor

__all__ = ["HealthStatus", "handlers"]


class HealthStatus(msgspec.Struct):
    status: str


def handlers(door: FrontDoor) -> list[HTTPRouteHandler]:
    @get("/health", include_in_schema=False, sync_to_thread=False)
    def health() -> HealthStatus:
        return HealthStatus(status="ok")

    @get("/ready", include_in_schema=False, sync_to_thread=False)
    def ready() -> Response[HealthStatus]:
        if door.ready():
            return Response(HealthStatus(status="ok"))
        loading = NotReady()
        return Response(HealthStatus(status=loading.message), status_code=status_of(loading))

    return [health, ready]
