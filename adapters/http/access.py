"""Who may call the server: the Host it is called by, API keys, browser origins (CORS), and
how large a body may be.

Two ASGI middlewares check requests; a refusal is an error value (adapters/http/errors.py),
answered in the caller's dialect by the `Refuse` the app hands in. The edge sees every request
first, before Litestar's CORS middleware and its router: a Host the server does not answer to
(DNS rebinding), and CORS preflights from origins not allowed. The other checks every request
that reached a route, before the route reads its body: a key, the origin, the body's size. A
browser sends no credentials on a preflight, so a preflight needs no key.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import structlog
from litestar import Request, Response
from litestar.config.cors import CORSConfig
from litestar.datastructures import Headers
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from adapters.http.errors import (
    BodyTooLarge,
    HostRefused,
    OriginRefused,
    Unauthorized,
    headers_of,
    status_of,
)

__all__ = [
    "DEFAULT_ORIGINS",
    "LOCAL_HOSTS",
    "OPEN_PATHS",
    "AccessPolicy",
    "Refusal",
    "Refuse",
    "answered_hosts",
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

# The names this machine is called by, as Ollama answers to them on a loopback address: a page
# on a domain an attacker rebinds to 127.0.0.1 still sends its own name as the Host.
LOCAL_HOSTS = ("localhost", "*.localhost", "127.0.0.1", "[::1]")

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


def answered_hosts(bound: str, extra: Iterable[str] = ()) -> tuple[str, ...] | None:
    """The Host names a server listening on `bound` answers to; None: any.

    As Ollama decides (server/routes.go, allowedHostsMiddleware): on a loopback address, only
    this machine's names and the address itself, and `extra` (`*` in one is a wildcard, `*`
    alone allows any); on any other address (0.0.0.0, a LAN address) any Host, since whoever
    can reach the server there can call it by its address anyway.
    """
    given = tuple(h.strip().lower() for h in extra if h.strip())
    if "*" in given or not _is_loopback(bound):
        return None
    return (*LOCAL_HOSTS, _bracketed(bound.strip().lower()), *given)


def _is_loopback(bound: str) -> bool:
    """A loopback address, or a name that only resolves to loopback addresses (localhost)."""
    name = bound.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    try:
        found = socket.getaddrinfo(name, None)
    except OSError:  # the server cannot listen on it either
        return False
    return bool(found) and all(
        ipaddress.ip_address(str(address[4][0]).split("%", 1)[0]).is_loopback for address in found
    )


def _bracketed(host: str) -> str:
    """An IPv6 address as a Host header writes it: `[::1]`."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _host_pattern(patterns: Iterable[str]) -> re.Pattern[str]:
    """One expression for all the patterns: `*` matches any run of characters, and nothing
    else is special (`[::1]` is an address, not a character class)."""
    each = (".*".join(re.escape(part) for part in p.split("*")) for p in patterns)
    return re.compile("|".join(f"(?:{e})" for e in each))


def _host_name(header: str) -> str:
    """`Host: Example.COM:8080` names `example.com`; `[::1]:8080` names `[::1]`."""
    host = header.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    name, _, port = host.rpartition(":")
    return (name if name and port.isdigit() else host).rstrip(".")


def _is_loopback_address(name: str) -> bool:
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


Refusal = Unauthorized | OriginRefused | HostRefused | BodyTooLarge
Refuse = Callable[[Request[Any, Any, Any], Refusal], Response[Any]]


def _digest(key: str) -> bytes:
    # equal-length digests: compare_digest then leaks neither the key nor its length
    return hashlib.sha256(key.encode()).digest()


class AccessPolicy:
    """Host names answered, API keys (none: the server is open), allowed browser origins, and
    the body limit."""

    def __init__(
        self,
        refuse: Refuse,
        *,
        hosts: Sequence[str] | None,
        api_keys: Sequence[str] = (),
        cors: CORSConfig | None = None,
        max_body_bytes: int,
    ) -> None:
        """`hosts`: the Host names answered, from `answered_hosts`; None answers any."""
        if any(not k for k in api_keys):
            msg = "an API key must not be empty"
            raise ValueError(msg)
        self._refuse = refuse
        self._hosts = None if hosts is None else _host_pattern(hosts)
        self._keys = [_digest(k) for k in api_keys]
        self._cors = cors or cors_config()
        self._max_body_bytes = max_body_bytes

    def edge(self, app: ASGIApp) -> ASGIApp:
        """Wraps the whole application: Litestar's CORS middleware and router included."""

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            refusal = self.check_edge(scope) if scope["type"] == ScopeType.HTTP else None
            if refusal is None:
                await app(scope, receive, send)
            else:
                await self._answer(refusal, scope, receive, send)

        return guarded

    def middleware(self, app: ASGIApp) -> ASGIApp:
        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            refusal = self.check(scope) if scope["type"] == ScopeType.HTTP else None
            if refusal is None:
                await app(scope, receive, send)
            else:
                await self._answer(refusal, scope, receive, send)

        return guarded

    async def _answer(self, refusal: Refusal, scope: Scope, receive: Receive, send: Send) -> None:
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

    def check_edge(self, scope: Scope) -> Refusal | None:
        """Before anything else answers: the Host, then a preflight's origin (Litestar's CORS
        middleware would refuse it with a plain-text 400, in no dialect)."""
        headers = Headers.from_scope(scope)
        refused = self._check_host(headers)
        if refused is not None or scope.get("method") != "OPTIONS":
            return refused
        return self._check_origin(headers)

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
        # Never allowed for naming the Host it was sent to: a page on a rebound domain sends
        # an Origin equal to its Host, and this server serves no pages of its own.
        return OriginRefused(origin)

    def _check_host(self, headers: Headers) -> Refusal | None:
        """No browser leaves the Host out, so a request without one is no page's."""
        given = headers.get("host", "")
        if self._hosts is None or not given.strip():
            return None
        name = _host_name(given)
        if self._hosts.fullmatch(name) or _is_loopback_address(name):
            return None
        if self._hosts.fullmatch(given.strip().lower()):  # a pattern with its port
            return None
        return HostRefused(given)

    def _check_size(self, headers: Headers) -> Refusal | None:
        """Read from Content-Length up front, so a huge upload is refused before it is read;
        a chunked body past the limit is cut off by Litestar's own limit, also with a 413."""
        declared = headers.get("content-length", "")
        if not declared.isdigit() or int(declared) <= self._max_body_bytes:
            return None
        return BodyTooLarge(int(declared), self._max_body_bytes)
