"""The one canonical log line per embedding request, whichever dialect served it."""

from __future__ import annotations

import time

import structlog

from domain.errors import EmbedError
from domain.requests import EmbeddingResult

__all__ = ["log_embed"]

log = structlog.get_logger("embedserve.access")


def log_embed(
    dialect: str, model: str, result: EmbeddingResult | EmbedError, status: int, started: int
) -> None:
    """Never the text, token ids or vectors: only their counts."""
    duration_ms = round((time.perf_counter_ns() - started) / 1e6, 2)
    if isinstance(result, EmbeddingResult):
        log.info(
            "embed",
            dialect=dialect,
            model=model,
            n_inputs=len(result.vectors),
            prompt_tokens=result.prompt_tokens,
            batches=result.batches,
            load_ms=round(result.load_ns / 1e6, 2),
            duration_ms=duration_ms,
            status=status,
        )
    else:
        log.info(
            "embed",
            dialect=dialect,
            model=model,
            status=status,
            error=type(result).__name__,
            duration_ms=duration_ms,
        )
