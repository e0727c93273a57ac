"""Reranking: a query against many documents, scored by a cross-encoder.

The same model lookup, registry (load once, keep-alive), batcher and token budget as embedding:
a request's pairs go to the model's Batcher as rows, so they share its length-sorted passes with
the pairs of concurrent requests.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from application.embedding import Limits
from application.lifecycle import LoadedModel, ModelRegistry
from application.model_lookup import ModelLookup
from domain.errors import (
    EmbedError,
    InputTooLong,
    InvalidInput,
    ModelUnavailable,
    Overloaded,
    TooManyInputs,
    TooManyTokens,
    WrongTask,
)
from domain.models import ModelSpec, Task
from domain.ports import EncodedPair, PairTokenizer
from domain.reranking import MAX_DOCUMENTS, RerankRequest, RerankResult, ranked

__all__ = ["RerankService", "capable_of"]

_DEFAULT_LIMITS = Limits()  # embedding's token budget: pairs count against the same
_INLINE_SIZE = 4096  # characters tokenized on the event loop, as for embedding
_LOGIT, _SCORE = 0, 1  # the cross-encoder's output columns (domain/architectures/cross_encoder.py)


def capable_of(names: ModelLookup, task: Task) -> tuple[str, ...]:
    """The listed models that do `task`, by name, for a WrongTask refusal."""
    return tuple(spec.name for spec in names.listed() if spec.task is task)


class RerankService:
    def __init__(
        self, names: ModelLookup, registry: ModelRegistry, limits: Limits = _DEFAULT_LIMITS
    ) -> None:
        self._names = names
        self._registry = registry
        self._limits = limits

    async def rerank(self, req: RerankRequest) -> RerankResult | EmbedError:
        started = time.perf_counter_ns()
        if not req.documents:
            return InvalidInput("'documents' must not be empty", param="documents")
        if len(req.documents) > MAX_DOCUMENTS:
            return TooManyInputs(len(req.documents), MAX_DOCUMENTS)
        spec = await self._names.find(req.model)
        if not isinstance(spec, ModelSpec):
            return spec
        if spec.task is not Task.RERANK:
            return WrongTask(req.model, Task.RERANK, capable_of(self._names, Task.RERANK))
        acquired = await self._registry.acquire(spec, req.keep_alive_s)
        if not isinstance(acquired, tuple):
            return acquired
        model, load_ns = acquired
        try:
            return await self._rerank_with(req, model, load_ns, started)
        finally:
            self._registry.release(model)

    async def _rerank_with(
        self, req: RerankRequest, model: LoadedModel, load_ns: int, started: int
    ) -> RerankResult | EmbedError:
        pairs = await self._pairs(req, model)
        if not isinstance(pairs, list):
            return pairs
        counts = tuple(len(p.ids) for p in pairs)
        if sum(counts) > self._limits.max_total_tokens:
            return TooManyTokens(sum(counts), self._limits.max_total_tokens)
        rows = [p.ids for p in pairs]
        run = await model.batcher.embed(rows, 0, [p.second for p in pairs])
        if isinstance(run, Overloaded):
            return run
        scores = run.vectors[:, _LOGIT if req.raw_scores else _SCORE]
        return RerankResult(
            model=model.spec.qualified_name,
            ranked=ranked(scores, req.top_n),
            token_counts=counts,
            load_ns=load_ns,
            total_ns=time.perf_counter_ns() - started,
            batches=run.batches,
        )

    async def _pairs(
        self, req: RerankRequest, model: LoadedModel
    ) -> list[EncodedPair] | EmbedError:
        tokenizer = model.tokenizer
        if not isinstance(tokenizer, PairTokenizer):
            return ModelUnavailable(model.spec.qualified_name, "its tokenizer reads no text pairs")
        size = len(req.query) + sum(map(len, req.documents))
        try:
            if size <= _INLINE_SIZE:
                pairs = _encode(tokenizer, req)
            else:
                pairs = await asyncio.to_thread(_encode, tokenizer, req)
        except ValueError as exc:  # a pair template we cannot read, met at its first pair
            return ModelUnavailable(model.spec.qualified_name, str(exc))
        if not req.truncate:
            limit = tokenizer_limit(model)
            for index, pair in enumerate(pairs):
                if pair.truncated:
                    return InputTooLong(index, limit + 1, limit, exact=False)
        return pairs


def tokenizer_limit(model: LoadedModel) -> int:
    return model.tokenizer.max_tokens


def _encode(tokenizer: PairTokenizer, req: RerankRequest) -> list[EncodedPair]:
    documents: Sequence[str] = req.documents
    return tokenizer.encode_pairs(req.query, documents, req.max_tokens_per_doc)
