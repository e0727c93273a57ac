"""The OpenAI dialect: POST /v1/embeddings, GET /v1/models[/{id}] (shared/WIRE.md §3, §4)."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Annotated, Any, Literal, assert_never, cast

from litestar import Request, Response, Router, get, post
from litestar.exceptions import HTTPException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody
from msgspec import UNSET, Meta, Struct, UnsetType

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
from adapters.http.prompt_fields import (
    InputTypeField,
    NormalizeField,
    PromptField,
    PromptNameField,
    prompt_choice,
)
from application.front_door import FrontDoor, ModelEntry
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
from domain.ops import Array
from domain.requests import (
    EmbeddingRequest,
    EmbeddingResult,
    Normalization,
    TokenIds,
    Truncation,
)

__all__ = [
    "EmbeddingsRequest",
    "EmbeddingsResponse",
    "ErrorBody",
    "build_router",
    "error_response",
    "from_domain",
    "openai_body",
    "openai_errors",
    "to_domain",
]

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
    normalize: NormalizeField = None
    prompt_name: PromptNameField = None
    prompt: PromptField = None
    input_type: InputTypeField = None


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


class Parity(Struct, kw_only=True):
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
    capabilities: list[str]  # ["embedding"], or ["rerank"] for a cross-encoder (/v1/rerank)
    engine: EngineInfo | None = None  # while the model is loaded
    damaged: str | UnsetType = UNSET  # why its weights on disk cannot be read; absent: they can
    object: Literal["model"] = "model"


class ModelList(Struct):
    data: list[Model]
    object: Literal["list"] = "list"


class ErrorDetail(Struct, kw_only=True):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(Struct):
    error: ErrorDetail


def openai_errors(*statuses: int) -> dict[int, ResponseSpec]:
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
    return ErrorBody(error=ErrorDetail(message=message, type=kind, param=param, code=code))


def openai_body(err: HttpError) -> ErrorBody:  # noqa: C901, PLR0911, PLR0912 - one case per error
    """The error in OpenAI's envelope; its status is `status_of`'s."""
    err = public(err)
    match err:
        case ModelNotFound(name=name, reason=reason):
            detail = f": {reason}" if reason else ""
            message = f"The model `{name}` does not exist{detail}"
            return _envelope(message, param="model", code="model_not_found")
        case ModelUnavailable():
            return _envelope(err.message, "api_error", param="model", code="model_unavailable")
        case FamilyNotSupported() | ArchitectureNotSupported():
            return _envelope(err.message, param="model", code="model_not_supported")
        case ModelTooLarge():
            return _envelope(err.message, param="model", code="model_too_large")
        case NotRemovable():
            return _envelope(err.message, param="model")
        case WrongTask():
            return _envelope(err.message, param="model", code="model_not_supported")
        case InputTooLong(tokens=tokens, limit=limit, index=index, exact=exact):
            has = f"{tokens}" if exact else f"more than {tokens - 1}"  # read only so far
            message = (
                f"This model's maximum context length is {limit} tokens, however input {index} "
                f"has {has} tokens. Please reduce the length of the input, or let the server "
                "truncate it."
            )
            return _envelope(message, param="input")
        case TooManyTokens():
            return _envelope(
                err.message, "max_tokens_per_request", param="input", code="max_tokens_per_request"
            )
        case InvalidDimensions():
            return _envelope(err.message, param="dimensions")
        case InvalidInput(param=param):
            return _envelope(err.message, param=param)
        case TooManyInputs() | TokenIdOutOfRange():
            return _envelope(err.message, param="input")
        case Overloaded():
            return _envelope(err.message, "server_error", code="server_overloaded")
        case Unauthorized():
            return _envelope(err.message, code="invalid_api_key")
        case MalformedBody(missing_body=True):
            return _envelope("We could not parse the JSON body of your request: the body is empty.")
        case MalformedBody(field=field):
            return _envelope(err.message, param=field)
        case (
            OriginRefused() | HostRefused() | BodyTooLarge() | RouteNotFound() | MethodNotAllowed()
        ):
            return _envelope(err.message)
        case ShuttingDown():
            return _envelope(err.message, "server_error", code="server_shutting_down")
        case Crashed() | NotReady():
            return _envelope(err.message, "api_error")
        case _:
            assert_never(err)


def error_response(err: HttpError) -> Response[Any]:
    return Response(
        openai_body(err),
        status_code=status_of(err),
        media_type="application/json",
        headers=headers_of(err),
    )


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    """Litestar's own refusals (bad JSON, wrong types, unknown route, body too large)."""
    return error_response(from_http_exception(request, exc))


def _to_inputs(raw: str | list[str | int | list[int]]) -> list[str | TokenIds] | InvalidInput:
    """Classify `input`: a string, strings, one token array, or token arrays, never a mix.

    The kinds are told apart at C speed (msgspec gives exact str, int and list objects): a
    flat array of millions of ids costs a set of its types and one tuple, no loop in Python."""
    if isinstance(raw, str):
        return [raw]
    if not raw:
        return InvalidInput("'$.input' is invalid: the array must not be empty")
    kinds = set(map(type, raw))
    if kinds == {str}:
        return cast("list[str | TokenIds]", list(raw))
    if kinds == {int}:
        return [TokenIds(cast("tuple[int, ...]", tuple(raw)))]
    if kinds == {list}:
        return [TokenIds(tuple(cast("list[int]", x))) for x in raw]
    return InvalidInput(
        "'$.input' is invalid: give a string, an array of strings, an array of token ids, "
        "or an array of arrays of token ids, not a mix"
    )


_LARGE_INPUT = 1 << 16  # items or ids whose classification runs on a worker thread


def _ids_in(raw: str | list[str | int | list[int]]) -> int:
    """About how many items `input` holds, counting each token array's ids; bounded work."""
    if isinstance(raw, str) or len(raw) >= _LARGE_INPUT:
        return 1 if isinstance(raw, str) else len(raw)
    return sum(len(x) if isinstance(x, list) else 1 for x in raw)


def _normalization(normalize: bool | None) -> Normalization:  # noqa: FBT001 - the wire's flag
    """Unit vectors unless the request says `"normalize": false`."""
    return Normalization.MODEL if normalize is False else Normalization.ALWAYS


def _encode(vector: Array, encoding_format: str | None) -> list[float] | str:
    if encoding_format == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()


def to_domain(data: EmbeddingsRequest, truncate: Truncation) -> EmbeddingRequest | InvalidInput:
    """The body as the use case's request; `truncate` where the body does not say. The batch
    command (adapters/corpus/) calls it too, so a Batch file's bodies mean what they mean here."""
    inputs = _to_inputs(data.input)
    if isinstance(inputs, InvalidInput):
        return inputs
    prompt = prompt_choice(data.prompt_name, data.prompt, data.input_type)
    if isinstance(prompt, InvalidInput):
        return prompt
    return EmbeddingRequest(
        model=data.model,
        inputs=inputs,
        dimensions=data.dimensions,
        truncate=truncate if data.truncate is None else Truncation.of(data.truncate),
        normalization=_normalization(data.normalize),
        prompt=prompt,
    )


def from_domain(
    result: EmbeddingResult, requested_model: str, fmt: str | None
) -> EmbeddingsResponse:
    data = [Embedding(index=i, embedding=_encode(v, fmt)) for i, v in enumerate(result.vectors)]
    usage = Usage(prompt_tokens=result.prompt_tokens, total_tokens=result.prompt_tokens)
    return EmbeddingsResponse(data=data, model=requested_model, usage=usage)


def _engine_info(entry: ModelEntry) -> EngineInfo | None:
    running = entry.running
    if running is None:
        return None
    parity = running.parity
    return EngineInfo(
        name=running.engine,
        precision=running.precision,
        parity=None
        if parity is None
        else Parity(
            max_abs_diff=parity.max_abs_diff, min_cosine=parity.min_cosine, passed=parity.passed
        ),
    )


def _model(entry: ModelEntry, alias: str | None = None) -> Model:
    """An alias gets an entry of its own: its name as the id, its model's facts."""
    spec = entry.spec
    model_id = spec.name if spec.tag == "latest" else spec.qualified_name
    return Model(
        id=alias or model_id,
        created=int(entry.disk.modified.timestamp()) if entry.disk else 0,
        owned_by=spec.repo_id.split("/", 1)[0],
        family=spec.family.value,
        dimensions=spec.dimensions,
        max_tokens=spec.max_tokens,
        inputs=list(spec.input_kinds),
        capabilities=[spec.task.value],
        engine=_engine_info(entry),
        damaged=UNSET if entry.disk is None or entry.disk.damaged is None else entry.disk.damaged,
    )


def build_router(door: FrontDoor, *, truncate: Truncation) -> Router:
    """`truncate`: what a request that does not say gets; `Truncation.REFUSE` refuses over-long
    inputs as OpenAI's own API does."""

    @post("/embeddings", status_code=200, responses=openai_errors(400, 404, 413, 503))
    async def create_embeddings(
        data: JSONBody[EmbeddingsRequest],
    ) -> Response[EmbeddingsResponse | ErrorBody]:
        started = time.perf_counter_ns()
        # millions of ids are copied into a tuple: off the event loop, as their decoding was
        large = _ids_in(data.input) >= _LARGE_INPUT
        request = (
            await asyncio.to_thread(to_domain, data, truncate)
            if large
            else to_domain(data, truncate)
        )
        result: EmbeddingResult | EmbedError = (
            request if isinstance(request, InvalidInput) else await door.embed(request)
        )
        if isinstance(result, EmbeddingResult):
            response = from_domain(result, data.model, data.encoding_format)
            log_embed(
                "openai", "/v1/embeddings", data.model, result=result, status=200, started=started
            )
            return Response(response)
        status = status_of(result)
        log_embed(
            "openai", "/v1/embeddings", data.model, result=result, status=status, started=started
        )
        return error_response(result)

    @get("/models")
    async def list_models() -> ModelList:
        """Every catalogue model, each followed by its configured aliases (`--alias`); Ollama's
        library names stay on /api/tags, where Ollama's clients look for them."""
        listed: list[Model] = []
        for entry in await door.models():
            names = [None, *(a.name for a in entry.aliases if a.configured)]
            listed += [_model(entry, alias=name) for name in names]
        return ModelList(data=listed)

    @get("/models/{model_id:path}", responses=openai_errors(400, 404, 503))
    async def retrieve_model(model_id: FromPath[str]) -> Response[Model | ErrorBody]:
        entry = await door.model(model_id.lstrip("/"))  # a repo id holds a '/'
        if not isinstance(entry, ModelEntry):
            return error_response(entry)
        named = entry.named
        return Response(_model(entry, alias=named.name if named and named.configured else None))

    return Router(
        "/v1",
        route_handlers=[create_embeddings, list_models, retrieve_model],
        exception_handlers={HTTPException: http_error},
        tags=["OpenAI"],
    )
