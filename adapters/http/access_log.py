"""The one canonical log line per embedding request, whichever dialect served it."""

from __future__ import annotations

import time

import structlog

from domain.errors import EmbedError
from domain.requests import EmbeddingResult

__all__ = ["log_embed"]

log = structlog.get_logger("embedserve.access")


def log_embed(  # noqa: PLR0913 - the fields of the canonical line
    dialect: str,
    endpoint: str,
    model: str,
    *,
    result: EmbeddingResult | EmbedError,
    status: int,
    started: int,
) -> None:
    """Never the text, token ids or vectors: only their counts."""
    duration_ms = round((time.perf_counter_ns() - started) / 1e6, 2)
    fields: dict[str, object] = {"dialect": dialect, "endpoint": endpoint, "model": model}
    if isinstance(result, EmbeddingResult):
        fields |= {
            "n_inputs": len(result.vectors),
            "prompt_tokens": result.prompt_tokens,
            "batches": result.batches,
            "load_ms": round(result.load_ns / 1e6, 2),
        }
    else:
        fields["error"] = type(result).__name__
    log.info("embed", **fields, status=status, duration_ms=duration_ms)
