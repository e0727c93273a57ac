"""The one canonical log line per embedding request, whichever dialect served it."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar

import structlog

from domain.errors import EmbedError
from domain.requests import EmbeddingResult
from domain.reranking import RerankResult

__all__ = ["EmbedObserver", "embed_observer", "log_embed"]

log = structlog.get_logger("embedserve.access")

# dialect, endpoint, model, result, status, seconds: told every line, for the app's metrics
EmbedObserver = Callable[
    [str, str, str, EmbeddingResult | RerankResult | EmbedError, int, float], None
]
# set per request by the app that serves it, so several apps in one process stay apart
embed_observer: ContextVar[EmbedObserver | None] = ContextVar("embed_observer", default=None)


def log_embed(  # noqa: PLR0913 - the fields of the canonical line
    dialect: str,
    endpoint: str,
    model: str,
    *,
    result: EmbeddingResult | RerankResult | EmbedError,
    status: int,
    started: int,
) -> None:
    """Never the text, token ids or vectors: only their counts."""
    elapsed_ns = time.perf_counter_ns() - started
    duration_ms = round(elapsed_ns / 1e6, 2)
    fields: dict[str, object] = {"dialect": dialect, "endpoint": endpoint, "model": model}
    if isinstance(result, EmbeddingResult):
        fields |= {
            "n_inputs": len(result.vectors),
            "prompt_tokens": result.prompt_tokens,
            "batches": result.batches,
            "load_ms": round(result.load_ns / 1e6, 2),
        }
    elif isinstance(result, RerankResult):  # a pair counts as an input
        fields |= {
            "n_inputs": len(result.token_counts),
            "prompt_tokens": result.total_tokens,
            "batches": result.batches,
            "load_ms": round(result.load_ns / 1e6, 2),
        }
    else:
        fields["error"] = type(result).__name__
    log.info("embed", **fields, status=status, duration_ms=duration_ms)
    observe = embed_observer.get()
    if observe is not None:
        observe(dialect, endpoint, model, result, status, elapsed_ns / 1e9)
