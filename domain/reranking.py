"""The rerank request and result that the three rerank dialects translate to and from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from domain.ops import Array

__all__ = ["MAX_DOCUMENTS", "Ranked", "RerankRequest", "RerankResult", "ranked"]

MAX_DOCUMENTS = 1000  # per request, as Cohere's API allows


@dataclass(frozen=True, slots=True)
class RerankRequest:
    model: str
    query: str
    documents: Sequence[str]
    top_n: int | None = None  # None, or more than the documents: all of them
    raw_scores: bool = False  # the classifier's logits instead of CrossEncoder.predict's scores
    truncate: bool = True  # False: a pair past the model's context is refused, not cut
    max_tokens_per_doc: int | None = None  # Cohere v2's cut of each document, before the pair's
    keep_alive_s: float | None = None  # None: the server's default; negative: forever


@dataclass(frozen=True, slots=True)
class Ranked:
    index: int  # the document's position in the request
    score: float


@dataclass(frozen=True, slots=True)
class RerankResult:
    model: str  # the catalogue name that served it, `name:tag`
    ranked: tuple[Ranked, ...]  # highest score first, cut to top_n
    token_counts: tuple[int, ...]  # tokens the model read per pair, special tokens included
    load_ns: int
    total_ns: int
    batches: int

    @property
    def total_tokens(self) -> int:
        return sum(self.token_counts)


def ranked(scores: Array, top_n: int | None) -> tuple[Ranked, ...]:
    """[N] -> the documents by score, highest first; equal scores keep the request's order."""
    order = np.argsort(-scores, kind="stable")
    if top_n is not None:
        order = order[:top_n]
    return tuple(Ranked(int(i), float(scores[i])) for i in order)
