"""Prometheus metrics, in a registry each app owns, served at `GET /metrics`.

Counters and histograms are fed as work happens: every embed request through the access log's
observer, every forward pass through the Batcher's. Gauges (queue depth, models loaded) and the
embeddings cache's counters are read from the front door when scraped.
"""

from __future__ import annotations

from collections.abc import Iterator

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from adapters.http.access_log import embed_observer
from application.front_door import FrontDoor
from domain.errors import EmbedError
from domain.requests import EmbeddingResult
from domain.reranking import RerankResult

__all__ = ["METRICS_PATH", "Metrics"]

METRICS_PATH = "/metrics"
# a name no catalogue model has: requests for unknown models share it, so the label set stays
# bounded however many made-up names clients send
_UNKNOWN_MODEL = "unknown"
_ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """The app's metrics. Build one per app; `watch` it over the app's models."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._door: FrontDoor | None = None
        self._requests = Counter(
            "embedserve_requests",
            "Embedding requests answered, by dialect, endpoint, model and HTTP status.",
            ["dialect", "endpoint", "model", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "embedserve_request_duration_seconds",
            "Time to answer an embedding request, by dialect and endpoint.",
            ["dialect", "endpoint"],
            registry=self.registry,
        )
        self._tokens = Counter(
            "embedserve_prompt_tokens",
            "Prompt tokens embedded, by model.",
            ["model"],
            registry=self.registry,
        )
        self._batch_rows = Histogram(
            "embedserve_batch_size_rows",
            "Rows in each forward pass, across models.",
            buckets=_ROW_BUCKETS,
            registry=self.registry,
        )

    def watch(self, door: FrontDoor) -> None:
        """Reports the loaded models when scraped; names models as the catalogue does."""
        self._door = door
        self.registry.register(_ModelCollector(door))
        self.registry.register(_CacheCollector(door))

    def observe_pass(self, rows: int) -> None:
        self._batch_rows.observe(rows)

    def observe_embed(  # noqa: PLR0913, PLR0917 - the access log's EmbedObserver
        self,
        dialect: str,
        endpoint: str,
        model: str,
        result: EmbeddingResult | RerankResult | EmbedError,
        status: int,
        seconds: float,
    ) -> None:
        name = self._model_label(model)
        self._requests.labels(dialect, endpoint, name, str(status)).inc()
        self._latency.labels(dialect, endpoint).observe(seconds)
        if isinstance(result, EmbeddingResult):
            self._tokens.labels(name).inc(result.prompt_tokens)
        elif isinstance(result, RerankResult):
            self._tokens.labels(name).inc(result.total_tokens)

    def _model_label(self, requested: str) -> str:
        name = self._door.canonical_name(requested) if self._door is not None else None
        return name or _UNKNOWN_MODEL

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """Points the access log's observer at this app's metrics while it serves a request."""

        async def observed(scope: Scope, receive: Receive, send: Send) -> None:
            token = embed_observer.set(self.observe_embed)
            try:
                await app(scope, receive, send)
            finally:
                embed_observer.reset(token)

        return observed

    def handler(self) -> HTTPRouteHandler:
        @get(METRICS_PATH, include_in_schema=False, sync_to_thread=False)
        def metrics() -> Response[bytes]:
            # on the event loop, where the loaded models are safe to read
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

        return metrics


class _ModelCollector(Collector):
    def __init__(self, door: FrontDoor) -> None:
        self._door = door

    def collect(self) -> Iterator[Metric]:
        loaded = self._door.resident()
        depth = GaugeMetricFamily(
            "embedserve_queue_depth",
            "Inputs queued or being embedded, by loaded model.",
            labels=["model"],
        )
        for model in loaded:
            depth.add_metric([model.spec.qualified_name], model.queue_depth)
        yield depth
        yield GaugeMetricFamily("embedserve_models_loaded", "Models loaded now.", len(loaded))


class _CacheCollector(Collector):
    """The cache counts for itself; a scrape reads them, so serving a hit touches no metric.
    Without a cache (--cache-size 0) there is nothing to report."""

    def __init__(self, door: FrontDoor) -> None:
        self._door = door

    def collect(self) -> Iterator[Metric]:
        stats = self._door.cache_stats()
        if stats is None:
            return
        for name, documentation, value in (
            ("hits", "Inputs whose vector came from the embeddings cache.", stats.hits),
            ("misses", "Inputs the embeddings cache did not hold.", stats.misses),
            (
                "evictions",
                "Vectors evicted from the embeddings cache to make room.",
                stats.evictions,
            ),
        ):
            yield CounterMetricFamily(f"embedserve_cache_{name}", documentation, value)
        yield GaugeMetricFamily(
            "embedserve_cache_bytes",
            "Bytes the embeddings cache holds: vectors, their keys and a per-entry overhead.",
            stats.bytes,
        )
        yield GaugeMetricFamily(
            "embedserve_cache_max_bytes",
            "The embeddings cache's budget (--cache-size).",
            stats.max_bytes,
        )
        yield GaugeMetricFamily(
            "embedserve_cache_entries", "Vectors the embeddings cache holds.", stats.entries
        )
