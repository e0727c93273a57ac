"""One chunk of a corpus embedded: the work both runs share, in this process and in each Ray
actor. A chunk is an Arrow table of input rows; the answer is the table written for them."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa

from adapters.bootstrap import build_front_door
from adapters.corpus.bodies import Answer, batch_line, decode_body
from adapters.corpus.job import EMBEDDING, ERROR, LINE, ROW, BatchJob, InputKind, OutputKind
from adapters.http.openai import EmbeddingsRequest, to_domain
from adapters.settings import Settings
from application.front_door import FrontDoor
from domain.errors import InvalidInput
from domain.requests import EmbeddingResult, Truncation

__all__ = ["ChunkEmbedder"]

# Batch lines are requests of their own: this many wait on the batcher at once, which merges
# them into forward passes, and stays well under its queue limit.
_LINES_IN_FLIGHT = 64
_DECODER = msgspec.json.Decoder()


class ChunkEmbedder:
    """The application built once, as `embedserve serve` builds it, and an event loop of its
    own that lives as long as it: the batcher's queues belong to one loop."""

    def __init__(self, settings: Settings) -> None:
        self._door: FrontDoor = build_front_door(settings)
        self._truncate: Truncation = settings.truncate
        self._loop = asyncio.new_event_loop()

    def close(self) -> None:
        """Ends the batcher's waiting tasks, as asyncio.run would."""
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        if pending:
            self._loop.run_until_complete(asyncio.wait(pending))
        self._loop.close()

    def embed(self, chunk: pa.Table, job: BatchJob) -> pa.Table:
        """The output rows for `chunk`'s rows, one each, in order."""
        return self._loop.run_until_complete(self._embed(chunk, job))

    def check_model(self, model: str) -> str | None:
        """Why `model` cannot run, before any row is read; None when it can."""
        found = self._loop.run_until_complete(self._door.find(model))
        return getattr(found, "message", None)

    async def _embed(self, chunk: pa.Table, job: BatchJob) -> pa.Table:
        if job.source is InputKind.OPENAI_BATCH:
            limit = asyncio.Semaphore(_LINES_IN_FLIGHT)
            lines = chunk.column(LINE).to_pylist()
            return pa.table({LINE: await asyncio.gather(*(self._line(x, limit) for x in lines))})
        answers = await self._rows(chunk.column(job.text_field).to_pylist(), job)
        if job.output is OutputKind.OPENAI_BATCH:
            ids = _custom_ids(chunk, job)
            lines = [batch_line(i, a, None) for i, a in zip(ids, answers, strict=True)]
            return pa.table({LINE: lines})
        kept = chunk.drop_columns([c for c in (ROW, EMBEDDING, ERROR) if c in chunk.column_names])
        vectors = [a.vector for a in answers]
        embedding = pa.array(
            [None if v is None else v.astype(np.float32) for v in vectors],
            type=pa.list_(pa.float32()),
        )
        errors = pa.array([a.message for a in answers], type=pa.string())
        return kept.append_column(EMBEDDING, embedding).append_column(ERROR, errors)

    async def _rows(self, texts: Sequence[object], job: BatchJob) -> list[Answer]:
        """Each row as the body {model, input: text, dimensions, prompt_name} would be answered:
        the texts in one request, and where it is refused, one request each, so that one bad
        row costs only itself."""
        answers: list[Answer | None] = [None] * len(texts)
        ready = [i for i, text in enumerate(texts) if isinstance(text, str)]
        for i in set(range(len(texts))) - set(ready):  # the server's refusal of such a body
            answers[i] = await self._body(_row_body(job, texts[i]))
        together = await self._body(_row_body(job, [texts[i] for i in ready])) if ready else None
        if together is not None and isinstance(together.outcome, EmbeddingResult):
            for n, i in enumerate(ready):
                answers[i] = dataclasses.replace(together, outcome=_row_of(together.outcome, n))
        else:
            for i in ready:
                answers[i] = await self._body(_row_body(job, texts[i]))
        return [a for a in answers if a is not None]

    async def _body(self, body: object) -> Answer:
        """What POST /v1/embeddings answers `body`."""
        data = decode_body(body)
        if not isinstance(data, EmbeddingsRequest):
            return Answer(data)
        request = to_domain(data, self._truncate)
        if isinstance(request, InvalidInput):
            return Answer(request, data.model, data.encoding_format)
        return Answer(await self._door.embed(request), data.model, data.encoding_format)

    async def _line(self, line: str, limit: asyncio.Semaphore) -> str:
        """One Batch request line answered: its response, or why it made no request."""
        try:
            request = _DECODER.decode(line)
        except msgspec.DecodeError as exc:
            return batch_line(None, None, _refused("invalid_json_line", f"not JSON: {exc}"))
        if not isinstance(request, dict):
            return batch_line(None, None, _refused("invalid_request", "a line holds an object"))
        custom_id = request.get("custom_id")
        refusal = _line_refusal(request)
        if refusal is not None:
            return batch_line(custom_id if isinstance(custom_id, str) else None, None, refusal)
        async with limit:
            return batch_line(custom_id, await self._body(request["body"]), None)


def _line_refusal(request: dict[str, Any]) -> dict[str, str] | None:
    """The Batch API's own checks of a line, before its body is read."""
    if not isinstance(request.get("custom_id"), str):
        return _refused("missing_custom_id", "each line needs a string `custom_id`")
    if request.get("method") != "POST":
        return _refused("invalid_method", "`method` must be POST")
    if request.get("url") != "/v1/embeddings":
        url = request.get("url")
        return _refused("invalid_url", f"`url` {url!r} is not /v1/embeddings, the one this runs")
    if "body" not in request:
        return _refused("missing_body", "each line needs a `body`")
    return None


def _refused(code: str, message: str) -> dict[str, str]:
    return {"code": code, "message": message}


def _row_body(job: BatchJob, text: object) -> dict[str, Any]:
    body: dict[str, Any] = {"model": job.model, "input": text}
    if job.dimensions is not None:
        body["dimensions"] = job.dimensions
    if job.prompt_name is not None:
        body["prompt_name"] = job.prompt_name
    return body


def _row_of(result: EmbeddingResult, n: int) -> EmbeddingResult:
    """Row `n` of a chunk's result, as the result of a request that held that row alone."""
    return dataclasses.replace(
        result, vectors=result.vectors[n : n + 1], token_counts=result.token_counts[n : n + 1]
    )


def _custom_ids(chunk: pa.Table, job: BatchJob) -> list[str]:
    """The id column's values as text, else the row numbers the reader added."""
    column = job.id_field if job.id_field in chunk.column_names else ROW
    return [str(value) for value in chunk.column(column).to_pylist()]
