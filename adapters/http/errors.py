"""How a failed request reads on the wire: shared by both dialect modules and the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.exceptions import HTTPException, ValidationException

from domain.errors import EmbedError, Overloaded

__all__ = ["BodyProblem", "body_problem", "retry_headers"]


@dataclass(frozen=True, slots=True)
class BodyProblem:
    """A request body that did not decode into the dialect's request type."""

    message: str
    field: str | None  # the top-level field at fault, when one is
    missing_body: bool


def body_problem(request: Request[Any, Any, Any], exc: HTTPException) -> BodyProblem:
    missing = request.headers.get("content-length", "0") == "0" and not request.headers.get(
        "transfer-encoding"
    )
    if not isinstance(exc, ValidationException) or not isinstance(exc.extra, list):
        return BodyProblem(exc.detail, None, missing)
    first = exc.extra[0] if exc.extra else {}
    key = str(first.get("key", "")) if isinstance(first, dict) else ""
    message = str(first.get("message", exc.detail)) if isinstance(first, dict) else exc.detail
    path = "" if key == "data" else key
    field = path.split("[", 1)[0].split(".", 1)[0] or None
    where = f" - at `$.{path}`" if path else ""
    return BodyProblem(f"{message}{where}", field, missing)


def retry_headers(err: EmbedError) -> dict[str, str] | None:
    """Retry-After on a refusal for load: clients (openai-python among them) wait that long
    before their retry instead of hammering a busy server."""
    return {"Retry-After": str(err.retry_after_s)} if isinstance(err, Overloaded) else None
