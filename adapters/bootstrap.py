"""The composition root: the one place that builds adapters and wires them to the application."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version

from litestar import Litestar

from adapters.engine_memory import JsonChoiceMemory
from adapters.engines.numpy_ref import NumpyEngine
from adapters.http.app import create_app
from adapters.http.inventory import Inventory
from adapters.http.metrics import Metrics
from adapters.observability import configure_logging
from adapters.probe_answers import NpyProbeAnswers
from adapters.settings import Settings
from adapters.stores.hf_hub import HubStore
from adapters.stores.installed_package import InstalledPackageStore
from adapters.tokenizers.by_family import load_tokenizer
from adapters.tokenizers.cl100k import Cl100kDecoder
from application.catalogue import CATALOGUE, AliasRefused, Catalogue
from application.embedding import EmbeddingService
from application.embedding_cache import EmbeddingCache
from application.engine_choice import Candidate, EngineSelector, Precision
from application.lifecycle import ModelRegistry
from application.model_admin import ModelAdmin
from application.stores import FirstFound
from domain.models import Family, ModelSpec
from domain.ports import InferenceEngine

__all__ = ["Settings", "build_app", "build_embedding_service", "build_model_admin"]

# the families one ONNX graph (or ML program) serves; word vectors stay on numpy, where a
# gather and a mean are as fast as they get
_GRAPH_FAMILIES = frozenset({Family.BERT, Family.ROBERTA, Family.XLM_ROBERTA, Family.CLIP})


def build_app(settings: Settings) -> Litestar:
    configure_logging(settings.log_format)
    catalogue = Catalogue(CATALOGUE).with_aliases(settings.aliases)
    if isinstance(catalogue, AliasRefused):
        raise ValueError(catalogue.message)  # noqa: TRY004 - a setting refused, not a bad type
    carried, downloads = InstalledPackageStore(), _hub_store(settings)
    store = FirstFound([carried, downloads])
    preload = [catalogue.resolve(name) for name in settings.preload]
    unknown = [n for n, spec in zip(settings.preload, preload, strict=True) if spec is None]
    if unknown:
        msg = f"cannot preload models not in the catalogue: {', '.join(unknown)}"
        raise ValueError(msg)
    metrics = Metrics()
    registry, service = _pipeline(settings, catalogue, store, metrics)
    return create_app(
        service,
        registry,
        Inventory(catalogue, store),
        version=version("embedserve"),
        truncate=settings.truncate,
        metrics=metrics,
        preload=[spec for spec in preload if spec is not None],
        api_keys=settings.api_keys,
        origins=settings.origins,
        max_body_bytes=settings.max_body_bytes,
        admin=ModelAdmin(catalogue, downloads, [carried], registry),
    )


def _hub_store(settings: Settings) -> HubStore:
    return HubStore(
        settings.home / "Embeddings", endpoint=settings.hf_endpoint, offline=settings.offline
    )


def build_model_admin(settings: Settings) -> ModelAdmin:
    """Pull, list and remove without a server (the CLI): nothing is loaded, so none unloads."""
    catalogue = Catalogue(CATALOGUE).with_aliases(settings.aliases)
    if isinstance(catalogue, AliasRefused):
        raise ValueError(catalogue.message)  # noqa: TRY004 - a setting refused, not a bad type
    return ModelAdmin(catalogue, _hub_store(settings), [InstalledPackageStore()])


def build_embedding_service(settings: Settings) -> EmbeddingService:
    """The embedding pipeline in process, for `embedserve embed`: the server's, without HTTP."""
    admin = build_model_admin(settings)
    store = FirstFound([InstalledPackageStore(), _hub_store(settings)])
    return _pipeline(settings, admin.catalogue, store, None)[1]


def _pipeline(
    settings: Settings, catalogue: Catalogue, store: FirstFound, metrics: Metrics | None
) -> tuple[ModelRegistry, EmbeddingService]:
    """The registry and the embedding service over it, as the settings say."""
    # One inference thread by default: BLAS and the runtimes already use every core, and two
    # forward passes at once would only fight over them.
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
    )
    decoder = Cl100kDecoder() if settings.token_ids == "openai" else None
    cache = EmbeddingCache(settings.cache_bytes) if settings.cache_bytes > 0 else None
    if cache is not None and metrics is not None:
        metrics.watch_cache(cache)
    service = EmbeddingService(
        catalogue, registry, decoder, cache=cache, chunk_overlap=settings.chunk_overlap
    )
    return registry, service


def _engines(settings: Settings) -> EngineSelector:
    """The numpy reference and the fast engines, each imported only when first used."""
    cache = settings.home / "Embeddings" / ".graphs"
    threads = settings.threads

    def onnxruntime() -> InferenceEngine:
        from adapters.engines.onnx_runtime import OnnxRuntimeEngine

        return OnnxRuntimeEngine(cache, providers=settings.onnx_providers, threads=threads)

    def openvino(precision: Precision) -> InferenceEngine:
        from adapters.engines.openvino_engine import OpenVinoEngine

        return OpenVinoEngine(
            cache, device=settings.openvino_device, threads=threads, precision=precision
        )

    def coreml() -> InferenceEngine:
        from adapters.engines.coreml_engine import CoreMLEngine

        return CoreMLEngine(cache, compute_units=settings.coreml_compute_units)  # type: ignore[arg-type]

    candidates = [
        Candidate("onnxruntime", "fp32", _GRAPH_FAMILIES, onnxruntime),
        Candidate("openvino", "fp32", _GRAPH_FAMILIES, lambda: openvino("fp32")),
        Candidate("openvino", "bf16", _GRAPH_FAMILIES, lambda: openvino("bf16")),
    ]
    if sys.platform == "darwin" or settings.engine == "coreml":
        candidates.append(Candidate("coreml", "fp32", _GRAPH_FAMILIES, coreml))

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
    )
