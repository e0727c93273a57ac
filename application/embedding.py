"""The one embedding pipeline both dialects go through."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from application.catalogue import Catalogue
from application.lifecycle import ModelRegistry
from domain.errors import (
    EmbedError,
    InputTooLong,
    InvalidDimensions,
    ModelNotFound,
    TokenIdOutOfRange,
    TooManyInputs,
    TooManyTokens,
)
from domain.ports import Encoded, TokenIdDecoder, Tokenizer
from domain.requests import EmbeddingRequest, EmbeddingResult, Normalization
from domain.vectors import l2_normalize, truncate_dimensions

__all__ = ["EmbeddingService", "Limits"]


@dataclass(frozen=True, slots=True)
class Limits:
    max_inputs: int = 2048  # OpenAI's per-request cap, applied to both dialects
    max_total_tokens: int = 300_000  # likewise


class EmbeddingService:
    """Resolve, load, tokenize, batch, embed, post-process.

    Token-id inputs are decoded by `token_ids` (OpenAI's vocabulary) when given; without one
    they are read as ids of the model's own vocabulary.
    """

    def __init__(
        self,
        catalogue: Catalogue,
        registry: ModelRegistry,
        token_ids: TokenIdDecoder | None,
        limits: Limits = Limits(),
    ) -> None:
        self.catalogue = catalogue
        self.registry = registry
        self._token_ids = token_ids
        self._limits = limits

    async def embed(self, req: EmbeddingRequest) -> EmbeddingResult | EmbedError:
        started = time.perf_counter_ns()
        if len(req.inputs) > self._limits.max_inputs:
            return TooManyInputs(len(req.inputs), self._limits.max_inputs)
        spec = self.catalogue.resolve(req.model)
        if spec is None:
            return ModelNotFound(req.model)
        acquired = await self.registry.acquire(spec, req.keep_alive_s)
        if not isinstance(acquired, tuple):
            return acquired
        model, load_ns = acquired
        dimensions = self._dimensions(req, model.encoder.dimensions)
        if isinstance(dimensions, InvalidDimensions):
            return dimensions
        # tokenizing thousands of long texts takes a while: keep it off the event loop
        encoded = await asyncio.to_thread(self._tokenize, req, model.tokenizer)
        if not isinstance(encoded, list):
            return encoded
        run = await model.batcher.embed([e.ids for e in encoded])
        vectors = run.vectors
        if dimensions is not None:
            vectors = truncate_dimensions(vectors, dimensions)
        elif req.normalization is Normalization.ALWAYS:
            vectors = l2_normalize(vectors)
        return EmbeddingResult(
            model=spec.qualified_name,
            vectors=vectors,
            token_counts=tuple(len(e.ids) for e in encoded),
            load_ns=load_ns,
            total_ns=time.perf_counter_ns() - started,
            batches=run.batches,
        )

    @staticmethod
    def _dimensions(req: EmbeddingRequest, available: int) -> int | InvalidDimensions | None:
        d = req.dimensions
        if d is None:
            return None
        if 1 <= d <= available:
            return d  # the full size too: `dimensions` always answers unit vectors
        return None if req.lenient_dimensions else InvalidDimensions(d, available)

    def _tokenize(self, req: EmbeddingRequest, tokenizer: Tokenizer) -> list[Encoded] | EmbedError:
        texts: list[str] = []
        slots: list[int | Encoded] = []  # an index into texts, or ids already encoded
        for item in req.inputs:
            if isinstance(item, str):
                text: str | TokenIdOutOfRange = item
            elif self._token_ids is not None:
                text = self._token_ids.decode(item.ids)
            else:
                bad = next((i for i in item.ids if not 0 <= i < tokenizer.vocab_size), None)
                if bad is not None:
                    return TokenIdOutOfRange(bad, "model's own")
                slots.append(tokenizer.wrap(item.ids))
                continue
            if isinstance(text, TokenIdOutOfRange):
                return text
            slots.append(len(texts))
            texts.append(text)
        batch = tokenizer.encode(texts) if texts else []
        encoded = [batch[s] if isinstance(s, int) else s for s in slots]
        for index, e in enumerate(encoded):
            if e.truncated and not req.truncate:
                return InputTooLong(index, e.full_length, tokenizer.max_tokens)
        total = sum(len(e.ids) for e in encoded)
        if total > self._limits.max_total_tokens:
            return TooManyTokens(total, self._limits.max_total_tokens)
        return encoded
