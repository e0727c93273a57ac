"""Request bodies of POST /v1/embeddings read as the server reads them, and answered as it
answers them: a Batch file's lines, and the body each plain row stands for."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import msgspec

from adapters.http.errors import HttpError, MalformedBody, refused_at, status_of
from adapters.http.openai import (
    EmbeddingsRequest,
    EmbeddingsResponse,
    ErrorBody,
    from_domain,
    openai_body,
)
from domain.ops import Array
from domain.requests import EmbeddingResult

__all__ = ["Answer", "batch_line", "decode_body", "request_id"]

# where Litestar finds the field a msgspec error is about (litestar/_signature/model.py)
_AT = re.compile(r"`\$\.(.+)`$")
_ENCODER = msgspec.json.Encoder()


def decode_body(body: object) -> EmbeddingsRequest | MalformedBody:
    """`body` (decoded JSON) as the route's Litestar signature reads it: converted leniently
    (`"8"` is 8), a refusal worded as the route's (adapters/http/errors.py)."""
    try:
        return msgspec.convert(body, EmbeddingsRequest, strict=False)
    except msgspec.ValidationError as exc:
        text = str(exc)
        message = text.split(" - ", maxsplit=1)[0]
        at = _AT.search(text)
        return refused_at(message, "" if at is None else at.group(1))


@dataclass(frozen=True, slots=True)
class Answer:
    """What the server answers one body: a result (of one request, or of one row cut out of a
    chunk's request) or an error."""

    outcome: EmbeddingResult | HttpError
    model: str = ""  # as the body named it: the response echoes it
    encoding_format: str | None = None

    @property
    def vector(self) -> Array | None:
        """The row's vector, where the body held one input and it was embedded."""
        return self.outcome.vectors[0] if isinstance(self.outcome, EmbeddingResult) else None

    @property
    def message(self) -> str | None:
        if isinstance(self.outcome, EmbeddingResult):
            return None
        return openai_body(self.outcome).error.message

    def response(self) -> dict[str, Any]:
        """The Batch output's `response`: the status and body POST /v1/embeddings answers."""
        body: EmbeddingsResponse | ErrorBody
        if isinstance(self.outcome, EmbeddingResult):
            status, body = 200, from_domain(self.outcome, self.model, self.encoding_format)
        else:
            status, body = status_of(self.outcome), openai_body(self.outcome)
        return {"status_code": status, "request_id": request_id(), "body": body}


def request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def batch_line(custom_id: str | None, answer: Answer | None, error: dict[str, str] | None) -> str:
    """One line of the OpenAI Batch output file: a response, or (a line that made no request)
    an error with its code."""
    line = {
        "id": f"batch_req_{uuid.uuid4().hex}",
        "custom_id": custom_id,
        "response": None if answer is None else answer.response(),
        "error": error,
    }
    return _ENCODER.encode(line).decode()
