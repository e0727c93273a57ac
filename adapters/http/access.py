"""Who may call the server: API keys, browser origins (CORS), and how large a body may be.

One ASGI middleware checks every request that reached a route, before the route reads its
body. A refusal is an error value (adapters/http/errors.py), answered in the caller's dialect by
the `Refuse` the app hands in.
CORS preflights never get here: Litestar's CORS middleware answers them first, and a browser
sends no credentials on a preflight anyway.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import structlog
from litestar import Request, Response
from litestar.config.cors import CORSConfig
from litestar.datastructures import Headers
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from adapters.http.errors import BodyTooLarge, OriginRefused, Unauthorized, headers_of, status_of

__all__ = [
    "DEFAULT_ORIGINS",
    "OPEN_PATHS",
    "AccessPolicy",
    "Refusal",
    "Refuse",
    "cors_config",
]

log = structlog.get_logger(__name__)

# Ollama's own defaults (envconfig.AllowedOrigins): pages served from this machine on any port,
# and desktop-app shells. OLLAMA_ORIGINS, like --origins, adds to them.
DEFAULT_ORIGINS = (
    *(
        f"{scheme}://{host}{port}"
        for host in ("localhost", "127.0.0.1", "0.0.0.0")  # noqa: S104 - origins, not a bind
        for scheme in ("http", "https")
        for port in ("", ":*")
    ),
    "app://*",
    "file://*",
    "tauri://*",
    "vscode-webview://*",
    "vscode-file://*",
)

# Open without a key: what probes and monitors call (liveness, readiness, Ollama's "is it
# running" and version checks, Prometheus), and the OpenAPI document, which is the same for
# every deployment and holds nothing a caller could not read from the project itself.
OPEN_PATHS = frozenset({"/", "/health", "/ready", "/api/version", "/metrics"})
_OPEN_PREFIXES = ("/openapi",)


def cors_config(origins: Iterable[str] = ()) -> CORSConfig:
    """Ollama's default origins plus `origins`; `*` anywhere in one is a wildcard, and a lone
    `*` allows every origin. Any method and header, so the SDKs' own headers pass a preflight."""
    extra = [o.strip() for o in origins if o.strip()]
    return CORSConfig(allow_origins=[*extra, *DEFAULT_ORIGINS])


Refusal = Unauthorized | OriginRefused | BodyTooLarge
Refuse = Callable[[Request[Any, Any, Any], Refusal], Response[Any]]


def _digest(key: str) -> bytes:
    # equal-length digests: compare_digest then leaks neither the key nor its length
    return hashlib.sha256(key.encode()).digest()


class AccessPolicy:
    """API keys (none: the server is open), allowed browser origins, and the body limit."""

    def __init__(
        self,
        refuse: Refuse,
        *,
        api_keys: Sequence[str] = (),
        cors: CORSConfig | None = None,
        max_body_bytes: int,
    ) -> None:
        if any(not k for k in api_keys):
            msg = "an API key must not be empty"
            raise ValueError(msg)
        self._refuse = refuse
        self._keys = [_digest(k) for k in api_keys]
        self._cors = cors or cors_config()
        self._max_body_bytes = max_body_bytes

    def middleware(self, app: ASGIApp) -> ASGIApp:
        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            refusal = self.check(scope) if scope["type"] == ScopeType.HTTP else None
            if refusal is None:
                await app(scope, receive, send)
                return
            request: Request[Any, Any, Any] = Request(scope, receive, send)
            status = status_of(refusal)
            log.warning(
                "request_refused", path=scope["path"], status=status, error=type(refusal).__name__
            )
            response: Response[Any]
            if request.method == "HEAD":  # a HEAD answer carries no body, so no envelope
                response = Response(None, status_code=status, headers=headers_of(refusal))
            else:
                response = self._refuse(request, refusal)
            await response.to_asgi_response(None, request)(scope, receive, send)

        return guarded

    def check(self, scope: Scope) -> Refusal | None:
        """In the order a caller fixes them: who they are, where they call from, what they send."""
        headers = Headers.from_scope(scope)
        return (
            self._check_key(scope["path"], headers)
            or self._check_origin(headers)
            or self._check_size(headers)
        )

    def _check_key(self, path: str, headers: Headers) -> Refusal | None:
        if not self._keys or path in OPEN_PATHS or path.startswith(_OPEN_PREFIXES):
            return None
        scheme, _, given = headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return Unauthorized(key_given=False)
        digest = _digest(given.strip())
        # every key compared, matched or not: the time taken says nothing about which matched
        matched = [hmac.compare_digest(digest, key) for key in self._keys]
        if any(matched):
            return None
        return Unauthorized(key_given=True)

    def _check_origin(self, headers: Headers) -> Refusal | None:
        """A page from an origin not allowed gets a 403, as Ollama answers: its browser would
        hide the answer anyway, but a simple request (a text/plain POST needs no preflight)
        would still have made the server do the work."""
        origin = headers.get("origin")
        if origin is None or self._cors.is_origin_allowed(origin):
            return None
        if urlsplit(origin).netloc == headers.get("host"):  # the server's own pages
            return None
        return OriginRefused(origin)

    def _check_size(self, headers: Headers) -> Refusal | None:
        """Read from Content-Length up front, so a huge upload is refused before it is read;
        a chunked body past the limit is cut off by Litestar's own limit, also with a 413."""
        declared = headers.get("content-length", "")
        if not declared.isdigit() or int(declared) <= self._max_body_bytes:
            return None
        return BodyTooLarge(int(declared), self._max_body_bytes)
