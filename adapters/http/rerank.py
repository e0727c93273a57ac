"""The rerank dialects: TEI's POST /rerank, Jina's and Cohere v1's POST /v1/rerank, Cohere v2's
POST /v2/rerank. One use case behind them (application/reranking.py); each route has its wire
types and its error envelope: TEI's `{error, error_type}` on /rerank, OpenAI's on /v1 and /v2
(adapters/http/openai.py), statuses from the one table (adapters/http/errors.py).
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, assert_never

from litestar import Request, Response, post
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody
from msgspec import UNSET, Meta, Struct, UnsetType

from adapters.http import openai
from adapters.http.access_log import log_embed
from adapters.http.errors import (
    BodyTooLarge,
    Crashed,
    HostRefused,
    HttpError,
    MalformedBody,
    MethodNotAllowed,
    NotReady,
    OriginRefused,
    RouteNotFound,
    ShuttingDown,
    Unauthorized,
    from_http_exception,
    headers_of,
    public,
    status_of,
)
from application.front_door import FrontDoor
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
from domain.reranking import RerankRequest, RerankResult

__all__ = ["DEFAULT_RERANKER", "TeiError", "handlers", "tei_response"]

# the model a TEI-shape request reranks with when it names none (TEI serves one model)
DEFAULT_RERANKER = "ms-marco-MiniLM-L6-v2"

TopN = Annotated[int, Meta(ge=1)]

# --- TEI: POST /rerank ---------------------------------------------------------------------------


class TeiRerankRequest(Struct):
    query: str
    texts: list[str]
    raw_scores: bool = False
    return_text: bool = False
    truncate: bool | None = None  # TEI's: false refuses a pair past the context; absent cuts
    model: Annotated[
        str | None,
        Meta(description=f"embedserve's own field: the reranker; absent, {DEFAULT_RERANKER}"),
    ] = None


class TeiRank(Struct, omit_defaults=True):
    index: int
    score: float
    text: str | UnsetType = UNSET


class TeiError(Struct, kw_only=True):
    error: str
    error_type: str


def tei_body(err: HttpError) -> TeiError:
    """TEI's ErrorType names: Validation for what the caller can fix, Overloaded, Unhealthy."""
    err = public(err)
    match err:
        case Overloaded() | ShuttingDown():
            return TeiError(error=err.message, error_type="Overloaded")
        case ModelUnavailable() | NotReady():
            return TeiError(error=err.message, error_type="Unhealthy")
        case Crashed():
            return TeiError(error=err.message, error_type="Backend")
        case InputTooLong() | TooManyTokens():
            return TeiError(error=err.message, error_type="Validation")
        case Unauthorized() | OriginRefused() | HostRefused():
            return TeiError(error=err.message, error_type="Unauthorized")
        case (
            ModelNotFound()
            | FamilyNotSupported()
            | ArchitectureNotSupported()
            | ModelTooLarge()
            | NotRemovable()
            | InvalidInput()
            | TooManyInputs()
            | InvalidDimensions()
            | TokenIdOutOfRange()
            | WrongTask()
            | MalformedBody()
            | BodyTooLarge()
            | RouteNotFound()
            | MethodNotAllowed()
        ):
            return TeiError(error=err.message, error_type="Validation")
        case _:
            assert_never(err)


def tei_response(err: HttpError) -> Response[Any]:
    return Response(
        tei_body(err),
        status_code=status_of(err),
        media_type="application/json",
        headers=headers_of(err),
    )


def _tei_http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[TeiError]:
    return tei_response(from_http_exception(request, exc))


def _tei_errors(*statuses: int) -> dict[int, ResponseSpec]:
    return {
        s: ResponseSpec(data_container=TeiError, description="an error, in TEI's envelope")
        for s in statuses
    }


# --- Jina / Cohere v1: POST /v1/rerank -----------------------------------------------------------


class DocumentText(Struct):
    text: str


class V1RerankRequest(Struct):
    model: str
    query: str
    documents: list[str | DocumentText]
    top_n: TopN | None = None
    return_documents: bool = False


class V1Result(Struct, omit_defaults=True):
    index: int
    relevance_score: float
    document: DocumentText | UnsetType = UNSET


class V1Usage(Struct):
    total_tokens: int


class V1RerankResponse(Struct):
    id: str
    model: str
    results: list[V1Result]
    usage: V1Usage


# --- Cohere v2: POST /v2/rerank ------------------------------------------------------------------


class V2RerankRequest(Struct):
    model: str
    query: str
    documents: list[str]
    top_n: TopN | None = None
    max_tokens_per_doc: Annotated[int, Meta(ge=1)] | None = None


class V2Result(Struct):
    index: int
    relevance_score: float


class ApiVersion(Struct):
    version: str


class BilledUnits(Struct):
    search_units: int


class V2Meta(Struct):
    api_version: ApiVersion
    billed_units: BilledUnits


class V2RerankResponse(Struct):
    id: str
    results: list[V2Result]
    meta: V2Meta


# --- routes --------------------------------------------------------------------------------------


def handlers(door: FrontDoor) -> list[HTTPRouteHandler]:
    async def answer(
        dialect: str, endpoint: str, request: RerankRequest
    ) -> tuple[RerankResult | EmbedError, int]:
        started = time.perf_counter_ns()
        result = await door.rerank(request)
        status = 200 if isinstance(result, RerankResult) else status_of(result)
        log_embed(dialect, endpoint, request.model, result=result, status=status, started=started)
        return result, status

    @post(
        "/rerank",
        status_code=200,
        responses=_tei_errors(400, 404, 413, 503),
        exception_handlers={HTTPException: _tei_http_error},
        tags=["TEI"],
    )
    async def tei_rerank(data: JSONBody[TeiRerankRequest]) -> Response[list[TeiRank] | TeiError]:
        """Text Embeddings Inference's rerank: every text scored against the query, highest
        first."""
        request = RerankRequest(
            model=data.model or DEFAULT_RERANKER,
            query=data.query,
            documents=data.texts,
            raw_scores=data.raw_scores,
            truncate=data.truncate is not False,
        )
        result, _ = await answer("tei", "/rerank", request)
        if not isinstance(result, RerankResult):
            return tei_response(result)
        text = data.texts if data.return_text else None
        return Response(
            [
                TeiRank(r.index, r.score, UNSET if text is None else text[r.index])
                for r in result.ranked
            ]
        )

    @post(
        "/v1/rerank",
        status_code=200,
        responses=openai.openai_errors(400, 404, 413, 503),
        exception_handlers={HTTPException: openai.http_error},
        tags=["Jina / Cohere v1"],
    )
    async def v1_rerank(
        data: JSONBody[V1RerankRequest],
    ) -> Response[V1RerankResponse | openai.ErrorBody]:
        """Jina's and Cohere v1's rerank: the top_n documents by relevance to the query."""
        texts = [d if isinstance(d, str) else d.text for d in data.documents]
        request = RerankRequest(data.model, data.query, texts, top_n=data.top_n)
        result, _ = await answer("jina", "/v1/rerank", request)
        if not isinstance(result, RerankResult):
            return openai.error_response(result)
        keep = data.return_documents
        results = [
            V1Result(r.index, r.score, DocumentText(texts[r.index]) if keep else UNSET)
            for r in result.ranked
        ]
        usage = V1Usage(total_tokens=result.total_tokens)
        return Response(V1RerankResponse(_id(), data.model, results, usage))

    @post(
        "/v2/rerank",
        status_code=200,
        responses=openai.openai_errors(400, 404, 413, 503),
        exception_handlers={HTTPException: openai.http_error},
        tags=["Cohere v2"],
    )
    async def v2_rerank(
        data: JSONBody[V2RerankRequest],
    ) -> Response[V2RerankResponse | openai.ErrorBody]:
        """Cohere v2's rerank: the top_n documents by relevance to the query."""
        request = RerankRequest(
            data.model,
            data.query,
            data.documents,
            top_n=data.top_n,
            max_tokens_per_doc=data.max_tokens_per_doc,
        )
        result, _ = await answer("cohere", "/v2/rerank", request)
        if not isinstance(result, RerankResult):
            return openai.error_response(result)
        meta = V2Meta(ApiVersion("2"), BilledUnits(search_units=1))
        results = [V2Result(r.index, r.score) for r in result.ranked]
        return Response(V2RerankResponse(_id(), results, meta))

    return [tei_rerank, v1_rerank, v2_rerank]


def _id() -> str:
    return str(uuid.uuid4())
