"""The Litestar application: both dialects, one error policy, the OpenAPI document."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import structlog
from litestar import Litestar, Request, Response
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, SerializationException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.types import ASGIApp, Empty, Message, Receive, Scope, Send

from adapters.http import health, model_admin, ollama, openai, rerank
from adapters.http.access import AccessPolicy, answered_hosts, cors_config
from adapters.http.errors import (
    Crashed,
    HttpError,
    ShuttingDown,
    from_http_exception,
    json_problem,
    malformed_body,
)
from adapters.http.large_bodies import LARGE_BODY_BYTES, decode_large_body, route_body_type
from adapters.http.metrics import Metrics
from application.front_door import FrontDoor
from domain.requests import Truncation

__all__ = ["OPENAPI_PATH", "create_app"]

log = structlog.get_logger(__name__)

OPENAPI_PATH = "/openapi/openapi.json"

_DESCRIPTION = """\
Embeddings over the OpenAI API (`POST /v1/embeddings`) and the Ollama API (`POST /api/embed`);
reranking with cross-encoders over TEI's (`POST /rerank`), Jina's and Cohere v1's
(`POST /v1/rerank`) and Cohere v2's (`POST /v2/rerank`) APIs.
OpenAI token-id inputs are cl100k_base ids, decoded to text and re-tokenized for the model,
unless the server runs with `--token-ids model`. Inputs longer than a model's context are
truncated, as sentence-transformers does, unless the request's `truncate` field says otherwise
(both dialects: true, false to refuse them with a 400, or "chunk" to embed them whole as
overlapping windows pooled into one vector) or the server's `--truncate` setting does for
requests that do not say.
"""


def _is_openai(path: str) -> bool:
    """OpenAI's paths, and Cohere v2's rerank, which answers errors in the same envelope."""
    return path in {"/v1", "/v2"} or path.startswith(("/v1/", "/v2/"))


def _answer(request: Request[Any, Any, Any], err: HttpError) -> Response[Any]:
    """An error met outside a route's own answer, in the envelope of the path's dialect."""
    if _is_openai(request.url.path):
        return openai.error_response(err)
    if request.url.path == "/rerank":
        return rerank.tei_response(err)
    return ollama.error_response(err)


def _route_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Refusals outside any route (404, 405), in the envelope of the dialect the path belongs to."""
    return _answer(request, from_http_exception(request, exc))


def _crash(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A bug: log it with its traceback and answer 500 in the caller's dialect."""
    log.error("request_crashed", path=request.url.path, error=type(exc).__name__, exc_info=exc)
    return _answer(request, Crashed())


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
    return _answer(request, malformed_body(request, reason))


class _Request(Request[Any, Any, Any]):
    """Litestar's request, whose JSON refusals say what is wrong in words a person can act on
    (msgspec calls a lone surrogate escape "Input data was truncated"), and whose large bodies
    are decoded off the event loop (adapters/http/large_bodies.py)."""

    _large: Any = Empty

    async def json(self) -> Any:
        try:
            body = await self.body()
            if len(body) < LARGE_BODY_BYTES:
                return await super().json()
            if self._large is Empty:
                target = route_body_type(self)
                self._large = await asyncio.to_thread(decode_large_body, body, target, self)
            return self._large  # noqa: TRY300 - the except is for both decodings
        except SerializationException as exc:
            raise SerializationException(json_problem(await self.body(), str(exc))) from exc


def _cut_off_at_shutdown(app: ASGIApp) -> ASGIApp:
    """Past --shutdown-timeout uvicorn cancels the requests still running, and would answer
    them a plain-text 500 (which clients retry as a crash): a 503 in the caller's dialect
    says what happened, and a client behind a load balancer retries it elsewhere."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await app(scope, receive, watched)
        except asyncio.CancelledError:
            if started or scope["type"] != ScopeType.HTTP:
                raise
            log.warning("request_cut_off", path=scope["path"])
            request: Request[Any, Any, Any] = Request(scope, receive, send)
            answer = _answer(request, ShuttingDown())
            await answer.to_asgi_response(None, request)(scope, receive, send)

    return middleware


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
    door: FrontDoor,
    *,
    version: str,
    truncate: Truncation,
    max_body_bytes: int,
    host: str,
    metrics: Metrics | None = None,
    api_keys: Sequence[str] = (),
    origins: Sequence[str] = (),
    allowed_hosts: Sequence[str] = (),
) -> Litestar:
    """`host`: the address the server listens on; on a loopback one it answers only to this
    machine's names and `allowed_hosts`. `api_keys`: none leaves the server open. `origins` are
    allowed besides Ollama's defaults (this machine's pages, desktop-app shells); `*` allows
    any. `truncate`: what both dialects do with an over-long input when the request does not
    say."""
    metrics = metrics or Metrics()
    cors = cors_config(origins)
    access = AccessPolicy(
        _answer,
        hosts=answered_hosts(host, allowed_hosts),
        api_keys=api_keys,
        cors=cors,
        max_body_bytes=max_body_bytes,
    )
    metrics.watch(door)
    app = Litestar(
        route_handlers=[
            openai.build_router(door, truncate=truncate),
            ollama.build_router(door, version, truncate=truncate),
            metrics.handler(),
            *health.handlers(door),
            *model_admin.handlers(door),
            *rerank.handlers(door),
        ],
        on_startup=[door.start],
        on_shutdown=[door.stop],
        exception_handlers={
            HTTPException: _route_error,
            RecursionError: _undecodable,
            UnicodeDecodeError: _undecodable,
            Exception: _crash,
        },
        middleware=[_request_ids, _cut_off_at_shutdown, metrics.middleware, access.middleware],
        cors_config=cors,
        openapi_config=OpenAPIConfig(
            title="embedserve",
            version=version,
            description=_DESCRIPTION,
            path="/openapi",
            render_plugins=[JsonRenderPlugin(path="/openapi.json")],
        ),
        request_max_body_size=max_body_bytes,
        request_class=_Request,
        logging_config=None,
    )
    # Litestar's middleware runs once a route is found, inside its CORS middleware: the Host
    # and preflight checks must come before both, around the whole handler.
    app.asgi_handler = access.edge(app.asgi_handler)
    return app
