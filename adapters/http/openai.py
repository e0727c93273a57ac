"""The OpenAI dialect: POST /v1/embeddings, GET /v1/models[/{id}] (shared/WIRE.md §3, §4)."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Annotated, Any, Literal, assert_never

from litestar import Request, Response, Router, get, post
from litestar.exceptions import HTTPException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody
from msgspec import Meta, Struct

from adapters.http.access_log import log_embed
from adapters.http.errors import body_problem, retry_headers
from adapters.http.inventory import Inventory
from application.embedding import EmbeddingService
from domain.errors import (
    EmbedError,
    FamilyNotSupported,
    InputTooLong,
    InvalidDimensions,
    InvalidInput,
    ModelNotFound,
    ModelUnavailable,
    Overloaded,
    TokenIdOutOfRange,
    TooManyInputs,
    TooManyTokens,
)
from domain.models import ModelSpec
from domain.ops import Array
from domain.requests import (
    EmbeddingRequest,
    EmbeddingResult,
    Normalization,
    TokenIds,
    Truncation,
)

__all__ = ["ErrorBody", "build_router", "error_response", "openai_error"]

TokenArray = Annotated[list[int], Meta(min_length=1)]


class EmbeddingsRequest(Struct):
    model: str
    input: Annotated[
        str | list[str | int | TokenArray],
        Meta(
            description="A string, an array of strings, an array of token ids, or an array of "
            "arrays of token ids. Token ids are OpenAI's cl100k_base ids unless the server runs "
            'with --token-ids model. For a model whose `inputs` include "image" (CLIP), a '
            "string that is an image data URL (`data:image/png;base64,...`; PNG, JPEG, WebP, "
            "GIF, BMP) is embedded as that image, in the same space as the texts; texts and "
            "images mix freely in one array. Any other model refuses an image with a 400."
        ),
    ]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Annotated[int, Meta(ge=1)] | None = None
    user: str | None = None
    truncate: Annotated[
        bool | Literal["chunk"] | None,
        Meta(
            description="embedserve's own field, as Ollama's /api/embed spells it (the openai "
            'SDK sends it with `extra_body={"truncate": "chunk"}`): what to do with an input '
            "longer than the model's context. true cuts it, false refuses it with a 400 as "
            'OpenAI does, "chunk" embeds it whole, as overlapping windows of the model\'s '
            "context pooled into one unit vector by a token-weighted mean; usage then counts "
            "every window's tokens. Absent: the server's --truncate setting (default true)."
        ),
    ] = None


class Embedding(Struct):
    index: int
    embedding: list[float] | str
    object: Literal["embedding"] = "embedding"


class Usage(Struct):
    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(Struct):
    data: list[Embedding]
    model: str
    usage: Usage
    object: Literal["list"] = "list"


class Parity(Struct):
    max_abs_diff: float  # per component, scaled by max(1, max |reference|)
    min_cosine: float
    passed: bool


class EngineInfo(Struct):
    """What runs a loaded model, and how its vectors compared with the reference engine's."""

    name: str
    precision: str
    parity: Parity | None  # None: the numpy reference itself runs it


class Model(Struct):
    id: str
    created: int
    owned_by: str
    # embedserve's own facts beside OpenAI's fields, which clients ignore
    family: str
    dimensions: int
    max_tokens: int | None  # None: no limit (word vectors)
    inputs: list[str]  # "text", and "image" where a data URL item is embedded as an image
    engine: EngineInfo | None = None  # while the model is loaded
    object: Literal["model"] = "model"


class ModelList(Struct):
    data: list[Model]
    object: Literal["list"] = "list"


class ErrorDetail(Struct):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(Struct):
    error: ErrorDetail


def _errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The error responses an operation documents, all in OpenAI's envelope."""
    return {
        s: ResponseSpec(data_container=ErrorBody, description="an error, in OpenAI's envelope")
        for s in statuses
    }


def _envelope(
    message: str,
    kind: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> ErrorBody:
    return ErrorBody(ErrorDetail(message=message, type=kind, param=param, code=code))


def openai_error(err: EmbedError) -> tuple[int, ErrorBody]:  # noqa: PLR0911 - one per error
    match err:
        case ModelNotFound(name=name, reason=reason):
            detail = f": {reason}" if reason else ""
            message = f"The model `{name}` does not exist{detail}"
            return 404, _envelope(message, param="model", code="model_not_found")
        case ModelUnavailable():
            return 503, _envelope(err.message, "api_error", param="model", code="model_unavailable")
        case FamilyNotSupported():
            return 400, _envelope(err.message, param="model", code="model_not_supported")
        case InputTooLong(tokens=tokens, limit=limit, index=index):
            message = (
                f"This model's maximum context length is {limit} tokens, however input {index} "
                f"has {tokens} tokens. Please reduce the length of the input, or let the server "
                "truncate it."
            )
            return 400, _envelope(message, param="input")
        case TooManyTokens():
            return 400, _envelope(
                err.message, "max_tokens_per_request", param="input", code="max_tokens_per_request"
            )
        case InvalidDimensions():
            return 400, _envelope(err.message, param="dimensions")
        case InvalidInput(param=param):
            return 400, _envelope(err.message, param=param)
        case TooManyInputs() | TokenIdOutOfRange():
            return 400, _envelope(err.message, param="input")
        case Overloaded():
            return 503, _envelope(err.message, "server_error", code="server_overloaded")
        case _:
            assert_never(err)


def error_response(
    status: int, body: ErrorBody, headers: dict[str, str] | None = None
) -> Response[Any]:
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    """Litestar's own refusals (bad JSON, wrong types, unknown route, body too large)."""
    if exc.status_code != 400:  # noqa: PLR2004 - only a 400 is about the body's content
        return error_response(exc.status_code, _envelope(exc.detail))
    problem = body_problem(request, exc)
    message = (
        "We could not parse the JSON body of your request: the body is empty."
        if (problem.missing_body)
        else problem.message
    )
    return error_response(400, _envelope(message, param=problem.field))


def _to_inputs(raw: str | list[str | int | list[int]]) -> list[str | TokenIds] | InvalidInput:
    """Classify `input`: a string, strings, one token array, or token arrays, never a mix."""
    if isinstance(raw, str):
        return [raw]
    if not raw:
        return InvalidInput("'$.input' is invalid: the array must not be empty")
    if all(isinstance(x, str) for x in raw):
        return [x for x in raw if isinstance(x, str)]
    if all(isinstance(x, int) for x in raw):
        return [TokenIds(tuple(x for x in raw if isinstance(x, int)))]
    if all(isinstance(x, list) for x in raw):
        return [TokenIds(tuple(x)) for x in raw if isinstance(x, list)]
    return InvalidInput(
        "'$.input' is invalid: give a string, an array of strings, an array of token ids, "
        "or an array of arrays of token ids, not a mix"
    )


def _encode(vector: Array, encoding_format: str | None) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()


def from_domain(
    result: EmbeddingResult, requested_model: str, fmt: str | None
) -> EmbeddingsResponse:
    data = [Embedding(index=i, embedding=_encode(v, fmt)) for i, v in enumerate(result.vectors)]
    usage = Usage(prompt_tokens=result.prompt_tokens, total_tokens=result.prompt_tokens)
    return EmbeddingsResponse(data=data, model=requested_model, usage=usage)


def _engine_info(service: EmbeddingService, spec: ModelSpec) -> EngineInfo | None:
    loaded = next((m for m in service.registry.resident() if m.spec == spec), None)
    if loaded is None:
        return None
    parity = loaded.parity
    return EngineInfo(
        name=loaded.engine,
        precision=loaded.precision,
        parity=None
        if parity is None
        else Parity(parity.max_abs_diff, parity.min_cosine, passed=parity.passed),
    )


def _model_entry(
    spec: ModelSpec, created: int, engine: EngineInfo | None = None, alias: str | None = None
) -> Model:
    """An alias gets an entry of its own: its name as the id, its model's facts."""
    model_id = spec.name if spec.tag == "latest" else spec.qualified_name
    return Model(
        id=alias or model_id,
        created=created,
        owned_by=spec.repo_id.split("/", 1)[0],
        family=spec.family.value,
        dimensions=spec.dimensions,
        max_tokens=spec.max_tokens,
        inputs=list(spec.input_kinds),
        engine=engine,
    )


def _truncation(value: bool | Literal["chunk"] | None, default: Truncation) -> Truncation:  # noqa: FBT001 - the wire's flag
    if value is None:
        return default
    return Truncation.of(value) if isinstance(value, bool) else Truncation.CHUNK


def build_router(
    service: EmbeddingService, inventory: Inventory, *, truncate: Truncation | bool
) -> Router:
    """`truncate`: what a request that does not say gets; `Truncation.REFUSE` (or False)
    refuses over-long inputs as OpenAI's own API does."""
    default = Truncation.of(truncate)

    @post("/embeddings", status_code=200, responses=_errors(400, 404, 413, 503))
    async def create_embeddings(
        data: JSONBody[EmbeddingsRequest],
    ) -> Response[EmbeddingsResponse | ErrorBody]:
        started = time.perf_counter_ns()
        inputs = _to_inputs(data.input)
        if isinstance(inputs, InvalidInput):
            result: EmbeddingResult | EmbedError = inputs
        else:
            request = EmbeddingRequest(
                model=data.model,
                inputs=inputs,
                dimensions=data.dimensions,
                truncate=_truncation(data.truncate, default),
                normalization=Normalization.MODEL,
            )
            result = await service.embed(request)
        if isinstance(result, EmbeddingResult):
            response = from_domain(result, data.model, data.encoding_format)
            log_embed(
                "openai", "/v1/embeddings", data.model, result=result, status=200, started=started
            )
            return Response(response)
        status, body = openai_error(result)
        log_embed(
            "openai", "/v1/embeddings", data.model, result=result, status=status, started=started
        )
        return error_response(status, body, retry_headers(result))

    @get("/models")
    async def list_models() -> ModelList:
        """Every catalogue model, each followed by its configured aliases (`--alias`); Ollama's
        library names stay on /api/tags, where Ollama's clients look for them."""
        catalogue = service.catalogue
        specs = catalogue.specs
        created = await asyncio.to_thread(lambda: [inventory.created(s) for s in specs])
        listed: list[Model] = []
        for spec, when in zip(specs, created, strict=True):
            engine = _engine_info(service, spec)
            names = [None, *(a.name for a in catalogue.aliases(spec) if a.configured)]
            listed += [_model_entry(spec, when, engine, alias=name) for name in names]
        return ModelList(data=listed)

    @get("/models/{model_id:path}", responses=_errors(404))
    async def retrieve_model(model_id: FromPath[str]) -> Response[Model | ErrorBody]:
        spec = service.catalogue.resolve(model_id.lstrip("/"))
        if spec is None:
            status, body = openai_error(ModelNotFound(model_id.lstrip("/")))
            return error_response(status, body)
        created = await asyncio.to_thread(inventory.created, spec)
        alias = service.catalogue.alias(model_id.lstrip("/"))
        name = alias.name if alias is not None and alias.configured else None
        return Response(_model_entry(spec, created, _engine_info(service, spec), alias=name))

    return Router(
        "/v1",
        route_handlers=[create_embeddings, list_models, retrieve_model],
        exception_handlers={HTTPException: http_error},
        tags=["OpenAI"],
    )
