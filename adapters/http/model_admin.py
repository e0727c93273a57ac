"""Ollama's model management: POST /api/pull and DELETE /api/delete (ollama/ollama docs/api.md).

A pull streams NDJSON in Ollama's shape, which Open WebUI and ollama-python's
`pull(stream=True)` read: "pulling manifest", a line per file update with digest, total and
completed, "verifying sha256 digest", "writing manifest", "success". A failure once the stream
has begun is an `{"error": ...}` line; before it, an Ollama error response.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import structlog
from litestar import MediaType, Response, delete, post
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Operation
from litestar.params import JSONBody
from litestar.response import Stream
from msgspec import Struct, json

from adapters.http.errors import Crashed
from adapters.http.ollama import ErrorBody, error_response, ollama_body
from application.front_door import FrontDoor, Pulled, Removed
from domain.errors import InvalidInput, ModelNotFound, ModelUnavailable
from domain.models import ModelSpec
from domain.ports import FileProgress

__all__ = ["NDJSON", "handlers"]

log = structlog.get_logger(__name__)

NDJSON = "application/x-ndjson"


class PullRequest(Struct):
    model: str = ""
    name: str = ""  # the field's older spelling, which clients still send
    insecure: bool | None = None  # for registries over plain HTTP; the Hub is always HTTPS
    stream: bool | None = None  # absent means true, as in Ollama


class DeleteRequest(Struct):
    model: str = ""
    name: str = ""


class ProgressLine(Struct, omit_defaults=True, kw_only=True):
    status: str
    digest: str = ""
    total: int = 0
    completed: int = 0


class _Crashed:
    """The pull's thread raised: a bug, already logged."""


_encode = json.Encoder().encode
_Outcome = Pulled | ModelNotFound | ModelUnavailable | _Crashed


def _errors(*statuses: int) -> dict[int, ResponseSpec]:
    return {
        s: ResponseSpec(data_container=ErrorBody, description="an error, in Ollama's envelope")
        for s in statuses
    }


@dataclass
class _PullOperation(Operation):
    """A 200 is NDJSON when streamed and one JSON object when not: the document says both."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        content = getattr(ok, "content", None)
        if content and NDJSON in content:
            content[MediaType.JSON] = content[NDJSON]


def _line(value: ProgressLine | ErrorBody) -> bytes:
    return _encode(value) + b"\n"


_MODEL_REQUIRED = InvalidInput("model is required", param="model")


async def _progress_lines(door: FrontDoor, spec: ModelSpec) -> AsyncIterator[bytes]:
    """The download runs in a thread; its reports cross to the event loop through a queue.
    A client that goes away stops the lines, not the download, which the next pull would need."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[FileProgress | _Outcome] = asyncio.Queue()

    def report(progress: FileProgress) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, progress)

    def pull() -> None:
        outcome: _Outcome = _Crashed()
        try:
            outcome = door.pull(spec, report)
        except Exception:
            log.exception("pull_crashed", model=spec.qualified_name)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, outcome)

    yield _line(ProgressLine(status="pulling manifest"))
    running = loop.run_in_executor(None, pull)
    while not isinstance(item := await queue.get(), Pulled | ModelNotFound | ModelUnavailable):
        if isinstance(item, _Crashed):
            yield _line(ollama_body(Crashed()))
            return
        yield _line(
            ProgressLine(
                status=f"pulling {item.file}",
                digest=item.digest,
                total=item.total,
                completed=item.completed,
            )
        )
    await running
    if not isinstance(item, Pulled):
        yield _line(ollama_body(item, "pull"))
        return
    if not item.carried:
        yield _line(ProgressLine(status="verifying sha256 digest"))
        yield _line(ProgressLine(status="writing manifest"))
    yield _line(ProgressLine(status="success"))


def _pull_handler(door: FrontDoor) -> HTTPRouteHandler:
    @post(
        "/api/pull",
        status_code=200,
        responses={
            200: ResponseSpec(
                data_container=ProgressLine,
                generate_examples=False,
                description="progress lines, then success; or one success when not streamed",
                media_type=NDJSON,
            ),
            **_errors(400, 404, 503),
        },
        operation_class=_PullOperation,
        tags=["Ollama"],
        description="Downloads a model: a catalogue name, one of Ollama's library names, or a "
        "Hugging Face repo id (`org/name`, `org/name@revision`) of an architecture the server "
        "runs (any other is a 400 naming it, decided before any weight is fetched). With "
        "`stream` true (the default) the answer is "
        'NDJSON (application/x-ndjson): progress lines, then `{"status":"success"}` or an '
        '`{"error": ...}` line. A model an installed package carries is already present.',
    )
    async def pull(data: JSONBody[PullRequest]) -> Response[Any]:
        requested = data.model or data.name
        if not requested.strip():
            return error_response(_MODEL_REQUIRED)
        spec = await door.find(requested)  # a repo id: its configs, read before any weight
        if not isinstance(spec, ModelSpec):
            return error_response(spec, "pull")
        if data.stream is not False:
            return Stream(_progress_lines(door, spec), media_type=NDJSON)
        pulled = await asyncio.to_thread(door.pull, spec)
        if not isinstance(pulled, Pulled):
            return error_response(pulled, "pull")
        return Response(ProgressLine(status="success"), media_type=MediaType.JSON)

    return pull


def _delete_handler(door: FrontDoor) -> HTTPRouteHandler:
    @delete(
        "/api/delete",
        status_code=200,
        responses=_errors(400, 404),
        tags=["Ollama"],
        description="Unloads a downloaded model and deletes its files; 200 with an empty body. "
        "A model an installed package carries cannot be deleted (400).",
    )
    async def delete_model(data: JSONBody[DeleteRequest]) -> Response[Any]:
        requested = data.model or data.name
        if not requested.strip():
            return error_response(_MODEL_REQUIRED)
        removed = await door.delete(requested)
        if isinstance(removed, ModelNotFound):
            return error_response(ModelNotFound(requested), "look up")
        if not isinstance(removed, Removed):
            return error_response(removed)
        log.info("model_deleted", model=removed.spec.qualified_name, unloaded=removed.unloaded)
        return Response(content=b"", status_code=200, media_type=MediaType.JSON)

    return delete_model


def handlers(door: FrontDoor) -> list[HTTPRouteHandler]:
    return [_pull_handler(door), _delete_handler(door)]
