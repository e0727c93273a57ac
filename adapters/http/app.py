"""The Litestar application: both dialects, one error policy, the OpenAPI document."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from litestar import Litestar, Request, Response
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.types import ASGIApp, Receive, Scope, Send

from adapters.http import ollama, openai
from adapters.http.health import Health
from adapters.http.inventory import Inventory
from adapters.http.metrics import Metrics
from application.embedding import EmbeddingService
from application.lifecycle import ModelRegistry
from domain.models import ModelSpec

__all__ = ["OPENAPI_PATH", "create_app"]

log = structlog.get_logger(__name__)

OPENAPI_PATH = "/openapi/openapi.json"

_DESCRIPTION = """\
Embeddings over the OpenAI API (`POST /v1/embeddings`) and the Ollama API (`POST /api/embed`).
OpenAI token-id inputs are cl100k_base ids, decoded to text and re-tokenized for the model,
unless the server runs with `--token-ids model`. Inputs longer than a model's context are
truncated, as sentence-transformers does, unless the server runs with `--no-truncate`
(/v1) or the request says `"truncate": false` (/api/embed).
"""


def _is_openai(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def _route_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Refusals outside any route (404, 405), in the envelope of the dialect the path belongs to."""
    if _is_openai(request.url.path):
        return openai.http_error(request, exc)
    return ollama.http_error(request, exc)


def _crash(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A bug: log it with its traceback and answer 500 in the caller's dialect."""
    log.error("request_crashed", path=request.url.path, error=type(exc).__name__, exc_info=exc)
    message = "internal error; the server log has the details"
    if _is_openai(request.url.path):
        body = openai.ErrorBody(openai.ErrorDetail(message, "api_error", None, None))
        return openai.error_response(500, body)
    return ollama.error_response(500, ollama.ErrorBody(message))


def _undecodable(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Bodies the JSON decoder fails on by raising rather than by reporting: a bad body, a 400.

    msgspec raises RecursionError for JSON nested past the recursion limit, and Litestar lets a
    UnicodeDecodeError out for a string that is not UTF-8.
    """
    reason = (
        "the JSON body is nested too deeply"
        if isinstance(exc, RecursionError)
        else "the JSON body is not valid UTF-8"
    )
    log.warning("request_undecodable", path=request.url.path, error=type(exc).__name__)
    return _route_error(request, HTTPException(status_code=400, detail=reason))


def _request_ids(app: ASGIApp) -> ASGIApp:
    """Binds a request id to every log line written while the request is served."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        with structlog.contextvars.bound_contextvars(request_id=uuid.uuid4().hex[:16]):
            await app(scope, receive, send)

    return middleware


def create_app(  # noqa: PLR0913 - what the composition root hands the HTTP layer
    service: EmbeddingService,
    registry: ModelRegistry,
    inventory: Inventory,
    *,
    version: str,
    truncate: bool = True,
    max_body_bytes: int = 16 * 1024 * 1024,
    metrics: Metrics | None = None,
    preload: Sequence[ModelSpec] = (),
) -> Litestar:
    metrics = metrics or Metrics()
    metrics.watch(registry, service.catalogue)
    health = Health(registry, service.catalogue, preload)
    return Litestar(
        route_handlers=[
            openai.build_router(service, inventory, truncate=truncate),
            ollama.build_router(service, registry, inventory, version),
            metrics.handler(),
            *health.handlers(),
        ],
        on_startup=[health.start_preloading],
        on_shutdown=[health.stop_preloading],
        exception_handlers={
            HTTPException: _route_error,
            RecursionError: _undecodable,
            UnicodeDecodeError: _undecodable,
            Exception: _crash,
        },
        middleware=[_request_ids, metrics.middleware],
        openapi_config=OpenAPIConfig(
            title="embedserve",
            version=version,
            description=_DESCRIPTION,
            path="/openapi",
            render_plugins=[JsonRenderPlugin(path="/openapi.json")],
        ),
        request_max_body_size=max_body_bytes,
        logging_config=None,
    )
