"""The Ollama dialect: /api/embed, /api/embeddings, /api/tags, /api/show, /api/ps, /api/version
and the liveness text at / (shared/WIRE.md §1, §5, §8)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, assert_never

from litestar import MediaType, Request, Response, Router, get, head, post
from litestar.exceptions import HTTPException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import ResponseSpec
from litestar.params import JSONBody
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
from adapters.http.go_duration import parse_go_duration
from adapters.http.prompt_fields import (
    InputTypeField,
    NormalizeField,
    PromptField,
    PromptNameField,
    prompt_choice,
)
from application.front_door import AwaitedModel, FrontDoor, ModelEntry
from domain.errors import (
    ArchitectureNotSupported,
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
from domain.models import ModelSpec
from domain.ports import FolderFacts
from domain.requests import EmbeddingRequest, EmbeddingResult, Normalization, Truncation

__all__ = [
    "OLLAMA_API_VERSION",
    "ErrorBody",
    "Operation",
    "build_router",
    "error_response",
    "ollama_body",
]

# The Ollama release whose API this server implements; clients compare it as dotted integers.
OLLAMA_API_VERSION = "0.12.0"
_FOREVER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
_NEVER = "0001-01-01T00:00:00Z"  # Go's zero time, which Ollama writes for a time never set
# Ollama words "not found" by what was asked: to run a model (embed), to look one up (show,
# delete), or to pull one (routes.go, server/images.go)
Operation = Literal["run", "look up", "pull"]
_MODEL_REQUIRED = InvalidInput("model is required", param="model")


class EmbedRequest(Struct):
    model: str = ""
    input: Annotated[
        str | list[str] | None,
        Meta(
            description="A string or an array of strings. For a model that embeds images "
            "(CLIP), a string that is an image data URL (`data:image/png;base64,...`; PNG, "
            "JPEG, WebP, GIF, BMP) is embedded as that image, in the texts' space; texts and "
            "images mix freely. Any other model refuses an image with a 400."
        ),
    ] = None
    truncate: Annotated[
        bool | Literal["chunk"] | None,
        Meta(
            description="What to do with an input longer than the model's context: true cuts "
            "it (Ollama's default), false refuses it with a 400, \"chunk\" (embedserve's own) "
            "embeds it whole, as overlapping windows of the model's context pooled into one "
            "unit vector by a token-weighted mean; prompt_eval_count then counts every "
            "window's tokens. Absent: the server's --truncate setting (default true)."
        ),
    ] = None
    dimensions: int | None = None
    keep_alive: float | str | None = None
    options: dict[str, Any] | None = None
    normalize: NormalizeField = None
    prompt_name: PromptNameField = None
    prompt: PromptField = None
    input_type: InputTypeField = None


class EmbedResponse(Struct, omit_defaults=True):
    model: str
    embeddings: list[list[float]]
    total_duration: int = 0
    load_duration: int = 0
    prompt_eval_count: int = 0


class LegacyEmbeddingsRequest(Struct):
    model: str = ""
    prompt: Annotated[
        str | None,
        Meta(
            description="The text to embed (Ollama's field). Here `prompt` is the input, so a "
            "literal prompt cannot be given: prompt_name and input_type choose one."
        ),
    ] = None
    keep_alive: float | str | None = None
    options: dict[str, Any] | None = None
    prompt_name: PromptNameField = None
    input_type: InputTypeField = None


class LegacyEmbeddingsResponse(Struct):
    embedding: list[float]


class ModelDetails(Struct):
    format: str
    family: str
    families: list[str]
    parameter_size: str
    quantization_level: str
    parent_model: str = ""
    # embedserve's own facts, named as /api/show's model_info names them
    embedding_length: int = 0
    context_length: int | None = None  # None: no limit (word vectors)
    inputs: list[str] = []
    damaged: str | UnsetType = UNSET  # why its weights on disk cannot be read; absent: they can
    capabilities: list[str] = []  # as /api/show's: ["embedding"], or ["rerank"] (cross-encoders)


class ListedModel(Struct):
    name: str
    model: str
    modified_at: str
    size: int
    digest: str
    details: ModelDetails


class TagsResponse(Struct):
    models: list[ListedModel]


class ShowRequest(Struct):
    model: str = ""
    name: str = ""
    verbose: bool | None = None


class ShowResponse(Struct):
    license: str
    modelfile: str
    parameters: str
    template: str
    details: ModelDetails
    model_info: dict[str, Any]
    capabilities: list[str]
    modified_at: str | None = None


class RunningModel(Struct):
    name: str
    model: str
    size: int
    digest: str
    details: ModelDetails
    expires_at: str
    size_vram: int
    context_length: int


class ProcessResponse(Struct):
    models: list[RunningModel]


class VersionResponse(Struct):
    version: str
    embedserve: str


class ErrorBody(Struct, kw_only=True):
    error: str


def ollama_body(err: HttpError, operation: Operation = "run") -> ErrorBody:  # noqa: PLR0911 - by case
    """The error as Ollama words it; its status is `status_of`'s."""
    err = public(err)
    match err:
        case ModelNotFound(name=name) if operation == "look up" or not name.strip():
            return ErrorBody(error=f"model '{name}' not found")
        case ModelNotFound() if operation == "pull":
            return ErrorBody(error=f"pull model manifest: {err.message}")
        case ModelNotFound(name=name, reason=reason):
            detail = f" ({reason})" if reason else ""
            return ErrorBody(error=f'model "{name}" not found, try pulling it first{detail}')
        case InputTooLong():
            return ErrorBody(error="the input length exceeds the context length")
        case MalformedBody(missing_body=True):
            return ErrorBody(error="missing request body")
        case MalformedBody(field="input" | "prompt"):
            return ErrorBody(error="invalid input type")
        case RouteNotFound():
            return ErrorBody(error="404 page not found")  # gin's texts
        case MethodNotAllowed():
            return ErrorBody(error="405 method not allowed")
        case (
            ModelUnavailable()
            | ModelTooLarge()
            | FamilyNotSupported()
            | ArchitectureNotSupported()
            | NotRemovable()
            | InvalidInput()
            | TooManyInputs()
            | TooManyTokens()
            | InvalidDimensions()
            | TokenIdOutOfRange()
            | Overloaded()
            | WrongTask()
            | MalformedBody()
            | Unauthorized()
            | OriginRefused()
            | HostRefused()
            | BodyTooLarge()
            | ShuttingDown()
            | NotReady()
            | Crashed()
        ):
            return ErrorBody(error=err.message)
        case _:
            assert_never(err)


def _errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The error responses an operation documents, all as {"error": "..."}."""
    return {
        s: ResponseSpec(data_container=ErrorBody, description="an error, in Ollama's envelope")
        for s in statuses
    }


def error_response(err: HttpError, operation: Operation = "run") -> Response[Any]:
    return Response(
        ollama_body(err, operation),
        status_code=status_of(err),
        media_type=MediaType.JSON,
        headers=headers_of(err),
    )


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorBody]:
    """Litestar's own refusals (bad JSON, wrong types, unknown route, body too large)."""
    return error_response(from_http_exception(request, exc))


def _keep_alive(raw: float | str | None) -> float | InvalidInput | None:
    if raw is None or isinstance(raw, float | int):
        return raw
    seconds = parse_go_duration(raw)
    return InvalidInput(f'time: invalid duration "{raw}"') if seconds is None else seconds


def _parameter_size(count: int) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= scale:
            return f"{count / scale:.2f}{unit}"
    return str(count)


def _engine_facts(entry: ModelEntry) -> dict[str, Any]:
    """What runs a loaded model, and its parity gate, under embedserve's own keys."""
    running = entry.running
    if running is None:
        return {}
    facts: dict[str, Any] = {"embedserve.engine": running.engine}
    facts["embedserve.precision"] = running.precision
    if running.parity is not None:
        facts["embedserve.parity.max_abs_diff"] = running.parity.max_abs_diff
        facts["embedserve.parity.min_cosine"] = running.parity.min_cosine
    return facts


def _details(spec: ModelSpec, facts: FolderFacts | None) -> ModelDetails:
    return ModelDetails(
        format="safetensors",
        family=spec.family.value,
        families=[spec.family.value],
        parameter_size=_parameter_size(facts.parameters) if facts else "",
        quantization_level="F32",
        embedding_length=spec.dimensions,
        context_length=spec.max_tokens,
        inputs=list(spec.input_kinds),
        damaged=UNSET if facts is None or facts.damaged is None else facts.damaged,
        capabilities=[spec.task.value],
    )


def _awaited(model: AwaitedModel) -> ListedModel:
    """A library name listed before its architecture runs here: any request for it is a 400
    naming the architecture, so it is listed as never downloaded."""
    return ListedModel(
        name=model.qualified_name,
        model=model.qualified_name,
        modified_at=_NEVER,
        size=0,
        digest="",
        details=ModelDetails(
            format="safetensors",
            family=model.architecture,
            families=[model.architecture],
            parameter_size="",
            quantization_level="F32",
            capabilities=["embedding"],
        ),
    )


def _expiry(expires_at: float | None) -> datetime:
    """A keep-alive too long for a calendar (keep_alive=1e16, say) reads as forever."""
    if expires_at is None or not expires_at < _FOREVER.timestamp():
        return _FOREVER
    return datetime.fromtimestamp(expires_at, UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _embedding_handlers(door: FrontDoor, truncate: Truncation) -> list[HTTPRouteHandler]:  # noqa: C901 - counts its closures
    async def run(
        request: EmbeddingRequest, started: int, path: str
    ) -> EmbeddingResult | Response[Any]:
        """The result, or the error response already made; either way, the access log line."""
        result = await door.embed(request)
        status = 200 if isinstance(result, EmbeddingResult) else status_of(result)
        log_embed("ollama", path, request.model, result=result, status=status, started=started)
        return result if isinstance(result, EmbeddingResult) else error_response(result)

    @post("/api/embed", status_code=200, responses=_errors(400, 404, 413, 503))
    async def embed(data: JSONBody[EmbedRequest]) -> Response[EmbedResponse | ErrorBody]:
        started = time.perf_counter_ns()
        if not data.model.strip():
            return error_response(ModelNotFound(data.model))
        keep_alive = _keep_alive(data.keep_alive)
        if isinstance(keep_alive, InvalidInput):
            return error_response(keep_alive)
        prompt = prompt_choice(data.prompt_name, data.prompt, data.input_type)
        if isinstance(prompt, InvalidInput):
            return error_response(prompt)
        if isinstance(data.input, str):
            inputs = [data.input] if data.input else []  # "" only loads the model, as in Ollama
        else:
            inputs = data.input or []
        request = EmbeddingRequest(
            model=data.model,
            inputs=inputs,
            dimensions=data.dimensions if data.dimensions and data.dimensions > 0 else None,
            truncate=truncate if data.truncate is None else Truncation.of(data.truncate),
            # unit vectors, as Ollama's; `"normalize": false` gives the model's own output
            normalization=Normalization.MODEL if data.normalize is False else Normalization.ALWAYS,
            keep_alive_s=keep_alive,
            lenient_dimensions=True,
            prompt=prompt,
        )
        result = await run(request, started, "/api/embed")
        if not isinstance(result, EmbeddingResult):
            return result
        return Response(
            EmbedResponse(
                model=data.model,
                embeddings=result.vectors.tolist(),
                total_duration=result.total_ns,
                load_duration=result.load_ns,
                prompt_eval_count=result.prompt_tokens,
            )
        )

    @post("/api/embeddings", status_code=200, responses=_errors(400, 404, 413, 503))
    async def embeddings(
        data: JSONBody[LegacyEmbeddingsRequest],
    ) -> Response[LegacyEmbeddingsResponse | ErrorBody]:
        started = time.perf_counter_ns()
        if not data.model.strip():
            return error_response(_MODEL_REQUIRED)
        keep_alive = _keep_alive(data.keep_alive)
        if isinstance(keep_alive, InvalidInput):
            return error_response(keep_alive)
        prompt = prompt_choice(data.prompt_name, None, data.input_type)
        if isinstance(prompt, InvalidInput):
            return error_response(prompt)
        request = EmbeddingRequest(
            model=data.model,
            inputs=[data.prompt] if data.prompt else [],  # empty: load the model, embed nothing
            normalization=Normalization.MODEL,  # Ollama leaves this legacy endpoint unnormalised
            keep_alive_s=keep_alive,
            prompt=prompt,
        )
        result = await run(request, started, "/api/embeddings")
        if not isinstance(result, EmbeddingResult):
            return result
        vector = result.vectors[0].tolist() if len(result.vectors) else []
        return Response(LegacyEmbeddingsResponse(embedding=vector))

    return [embed, embeddings]


def _model_handlers(door: FrontDoor) -> list[HTTPRouteHandler]:
    @get("/api/tags")
    async def tags() -> TagsResponse:
        """Every catalogue model under its own name and its aliases, Ollama's library names and
        configured ones (LangChain matches those). One not downloaded yet has size 0, no digest
        and Go's zero time: the first request for it downloads it."""
        listed: list[ListedModel] = []
        for entry in await door.models():
            spec, facts = entry.spec, entry.disk
            listed.extend(
                ListedModel(
                    name=tagged,
                    model=tagged,
                    modified_at=_iso(facts.modified) if facts else _NEVER,
                    size=facts.size if facts else 0,
                    digest=facts.digest if facts else "",
                    details=_details(spec, facts),
                )
                for tagged in (spec.qualified_name, *(a.qualified_name for a in entry.aliases))
            )
        listed.extend(_awaited(model) for model in door.awaited())
        return TagsResponse(models=listed)

    @head("/api/tags")
    async def tags_head() -> None:
        return None

    @post("/api/show", status_code=200, responses=_errors(400, 404, 413, 503))
    async def show(data: JSONBody[ShowRequest]) -> Response[ShowResponse | ErrorBody]:
        requested = data.model or data.name
        if not requested.strip():
            return error_response(_MODEL_REQUIRED)
        entry = await door.model(requested)  # hashes weights once
        if isinstance(entry, ModelNotFound):
            return error_response(entry, "look up")
        if not isinstance(entry, ModelEntry):
            return error_response(entry)
        spec, facts = entry.spec, entry.disk
        arch = spec.family.value
        info: dict[str, Any] = {
            "general.architecture": arch,
            "general.basename": spec.name,
            "general.source": spec.repo_id,
            f"{arch}.embedding_length": spec.dimensions,
            f"{arch}.context_length": spec.max_tokens,
            f"{arch}.pooling_type": spec.pooling.value,
        }
        if facts:
            info["general.parameter_count"] = facts.parameters
        info.update(_engine_facts(entry))
        return Response(
            ShowResponse(
                license="",
                modelfile=f"# embedserve: {spec.repo_id}\nFROM {spec.repo_id}\n",
                parameters="",
                template="",
                details=_details(spec, facts),
                model_info=info,
                capabilities=[spec.task.value],
                modified_at=_iso(facts.modified) if facts else None,
            )
        )

    @get("/api/ps")
    async def ps() -> ProcessResponse:
        """The models in memory, the longest left to live first, as Ollama lists them. A model
        in use expires its keep-alive after now; a preloaded one, or one kept with a negative
        keep-alive, in the year 9999."""
        running = [
            (entry, entry.running, _expiry(entry.running.expires_at))
            for entry in await door.running()
            if entry.running is not None
        ]
        running.sort(key=lambda item: item[2], reverse=True)
        return ProcessResponse(
            models=[
                RunningModel(
                    name=entry.spec.qualified_name,
                    model=entry.spec.qualified_name,
                    size=model.size_bytes,
                    digest=entry.disk.digest if entry.disk else "",
                    details=_details(entry.spec, entry.disk),
                    expires_at=_iso(expires),
                    size_vram=0,
                    context_length=model.context_length,
                )
                for entry, model, expires in running
            ]
        )

    return [tags, tags_head, show, ps]


def _probe_handlers(version: str) -> list[HTTPRouteHandler]:
    @get("/api/version")
    async def api_version() -> VersionResponse:
        return VersionResponse(version=OLLAMA_API_VERSION, embedserve=version)

    @head("/api/version")
    async def api_version_head() -> None:
        return None

    @get("/", media_type=MediaType.TEXT)
    async def root() -> str:
        return "Ollama is running"

    @head("/")
    async def root_head() -> None:
        return None

    return [api_version, api_version_head, root, root_head]


def build_router(door: FrontDoor, version: str, *, truncate: Truncation) -> Router:
    """`truncate`: what /api/embed does when a request does not say."""
    return Router(
        "/",
        route_handlers=[
            *_embedding_handlers(door, truncate),
            *_model_handlers(door),
            *_probe_handlers(version),
        ],
        exception_handlers={HTTPException: http_error},
        tags=["Ollama"],
    )
