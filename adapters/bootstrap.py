"""The composition root: the one place that builds adapters and wires them to the application."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from typing import NamedTuple

from litestar import Litestar

from adapters.engines.engine_memory import JsonChoiceMemory
from adapters.engines.numpy_ref import NumpyEngine
from adapters.engines.partial_writes import sweep_stale
from adapters.engines.probe_answers import NpyProbeAnswers
from adapters.families import GRAPH_FAMILIES
from adapters.heap import give_back_freed_memory
from adapters.http.app import create_app
from adapters.http.metrics import Metrics
from adapters.machine_memory import available_memory
from adapters.observability import configure_logging
from adapters.settings import Settings
from adapters.stores.hf_hub import HubStore
from adapters.stores.installed_package import InstalledPackageStore
from adapters.stores.inventory import Inventory
from adapters.tokenizers.by_family import load_tokenizer
from adapters.tokenizers.cl100k import Cl100kDecoder
from application.catalogue import CATALOGUE, DEFAULT_MODEL, AliasRefused, Catalogue
from application.embedding import EmbeddingService
from application.embedding_cache import EmbeddingCache
from application.engine_choice import Candidate, EngineSelector, Precision
from application.front_door import FrontDoor
from application.lifecycle import ModelRegistry
from application.model_admin import ModelAdmin
from application.model_lookup import ModelLookup
from application.stores import FirstFound
from domain.errors import ModelNotFound
from domain.models import ModelSpec
from domain.ports import InferenceEngine

__all__ = ["Server", "Settings", "build_app", "build_front_door", "build_server"]


class Server(NamedTuple):
    """The app, and the front door it serves: a host that runs the app itself (a Ray Serve
    replica) asks the door how busy the server is."""

    app: Litestar
    door: FrontDoor


def build_app(settings: Settings) -> Litestar:
    return build_server(settings).app


def build_server(settings: Settings) -> Server:
    configure_logging(settings.log_format)
    metrics = Metrics()
    door = build_front_door(settings, metrics)
    app = create_app(
        door,
        version=version("embedserve"),
        truncate=settings.truncate,
        metrics=metrics,
        api_keys=settings.api_keys,
        origins=settings.origins,
        max_body_bytes=settings.max_body_bytes,
        host=settings.host,
        allowed_hosts=settings.allowed_hosts,
    )
    return Server(app, door)


def _catalogue(settings: Settings) -> Catalogue:
    catalogue = Catalogue(CATALOGUE).with_aliases(settings.aliases)
    if isinstance(catalogue, AliasRefused):
        raise ValueError(catalogue.message)  # noqa: TRY004 - a setting refused, not a bad type
    return catalogue


def _hub_store(settings: Settings) -> HubStore:
    return HubStore(
        settings.home / "Embeddings", endpoint=settings.hf_endpoint, offline=settings.offline
    )


def build_front_door(settings: Settings, metrics: Metrics | None = None) -> FrontDoor:
    """The application, wired as the settings say: for the server, and in process for the CLI
    (pull, list, rm, embed), so both act alike. `metrics` count its forward passes."""
    carried, downloads = InstalledPackageStore(), _hub_store(settings)
    store = FirstFound([carried, downloads])
    names = ModelLookup(_catalogue(settings), downloads, settings.allow_models)
    # a repo id is described here, before the server listens (from disk, else from the Hub)
    preload = [names.find_blocking(name) for name in settings.preload]
    refused = [
        f"{n} ({'unknown' if isinstance(s, ModelNotFound) else s.message})"
        for n, s in zip(settings.preload, preload, strict=True)
        if not isinstance(s, ModelSpec)
    ]
    if refused:
        msg = f"cannot preload {', '.join(refused)}"
        raise ValueError(msg)
    pinned = [spec for spec in preload if isinstance(spec, ModelSpec)]
    # One inference thread by default: BLAS and the runtimes already use every core, and two
    # forward passes at once would only fight over them; with more, each ONNX Runtime pass gets
    # its share of the cores (Settings.threads_per_pass).
    executor = ThreadPoolExecutor(
        max_workers=settings.max_concurrent_batches, thread_name_prefix="inference"
    )
    registry = ModelRegistry(
        store,
        _engines(settings),
        load_tokenizer,
        executor,
        default_keep_alive_s=settings.keep_alive_s,
        max_loaded_models=settings.max_loaded_models,
        max_memory_bytes=settings.max_memory_bytes,
        batching=settings.batching,
        on_pass=None if metrics is None else metrics.observe_pass,
        weights=store,
        available_memory=available_memory,
    )
    decoder = Cl100kDecoder() if settings.token_ids == "openai" else None
    cache = EmbeddingCache(settings.cache_bytes) if settings.cache_bytes > 0 else None
    embeddings = EmbeddingService(
        names,
        registry,
        decoder,
        cache=cache,
        chunk_overlap=settings.chunk_overlap,
        default_prompt_name=settings.default_prompt_name,
    )
    return FrontDoor(
        names,
        registry,
        embeddings,
        ModelAdmin(names, downloads, [carried], registry),
        Inventory(store),
        # with --allow-models refusing the default model, /ready waits for nothing
        ready_model=pinned[0] if pinned else names.known(DEFAULT_MODEL),
        preload=pinned,
        cache=cache,
    )


def _engines(settings: Settings) -> EngineSelector:
    """The numpy reference and the fast engines, each imported only when first used."""
    cache = settings.home / "Embeddings" / ".graphs"
    sweep_stale(cache)  # what writers killed mid-write left behind
    threads = settings.threads

    def onnxruntime() -> InferenceEngine:
        from adapters.engines.onnx_runtime import OnnxRuntimeEngine

        # the one engine whose passes of one model run side by side (domain.ports.OverlapsPasses)
        per_pass = settings.threads_per_pass
        return OnnxRuntimeEngine(cache, providers=settings.onnx_providers, threads=per_pass)

    def openvino(precision: Precision) -> InferenceEngine:
        from adapters.engines.openvino_engine import OpenVinoEngine

        return OpenVinoEngine(
            cache, device=settings.openvino_device, threads=threads, precision=precision
        )

    def coreml() -> InferenceEngine:
        from adapters.engines.coreml_engine import CoreMLEngine

        return CoreMLEngine(cache, compute_units=settings.coreml_compute_units)  # type: ignore[arg-type]

    candidates = [
        Candidate("onnxruntime", "fp32", GRAPH_FAMILIES, onnxruntime),
        Candidate("openvino", "fp32", GRAPH_FAMILIES, lambda: openvino("fp32")),
        Candidate("openvino", "bf16", GRAPH_FAMILIES, lambda: openvino("bf16")),
    ]
    if sys.platform == "darwin" or settings.engine == "coreml":
        candidates.append(Candidate("coreml", "fp32", GRAPH_FAMILIES, coreml))

    def precision_of(spec: ModelSpec) -> Precision:
        named = settings.model_precision
        return named.get(spec.qualified_name) or named.get(spec.name) or settings.precision

    return EngineSelector(
        NumpyEngine(),
        candidates,
        forced=settings.engine,
        memory=JsonChoiceMemory(settings.home / "engine-choices.json"),
        answers=NpyProbeAnswers(cache),
        precision_of=precision_of,
        give_back=give_back_freed_memory,
    )
