"""The one embedding pipeline both dialects go through."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import numpy as np

from application.catalogue import Catalogue
from application.lifecycle import LoadedModel, ModelRegistry
from domain.data_url import ImageData, parse_image_data_url
from domain.errors import (
    EmbedError,
    InputTooLong,
    InvalidDimensions,
    InvalidInput,
    ModelNotFound,
    Overloaded,
    TokenIdOutOfRange,
    TooManyInputs,
    TooManyTokens,
)
from domain.ops import Array
from domain.ports import Encoded, ImageEncoder, TokenIdDecoder, Tokenizer
from domain.requests import EmbeddingRequest, EmbeddingResult, Normalization, TokenIds
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
        acquired = await self._acquire(req)
        if not isinstance(acquired, tuple):
            return acquired
        model, load_ns = acquired
        spec = model.spec
        dimensions = self._dimensions(req, model.encoder.dimensions)
        if isinstance(dimensions, InvalidDimensions):
            return dimensions
        # tokenizing thousands of long texts, or decoding images, takes a while: off the loop
        prepared = await asyncio.to_thread(self._prepare, req, model)
        if not isinstance(prepared, _Prepared):
            return prepared
        run = await model.batcher.embed([e.ids for e in prepared.encoded])
        if isinstance(run, Overloaded):
            return run
        vectors, batches = run.vectors, run.batches
        if prepared.image_slots:
            images = await model.batcher.embed_images(prepared.pixels)
            vectors = _interleave(vectors, prepared.text_slots, images, prepared.image_slots)
            batches += 1
        if dimensions is not None:
            vectors = truncate_dimensions(vectors, dimensions)
        elif req.normalization is Normalization.ALWAYS:
            vectors = l2_normalize(vectors)
        return EmbeddingResult(
            model=spec.qualified_name,
            vectors=vectors,
            token_counts=prepared.token_counts,
            load_ns=load_ns,
            total_ns=time.perf_counter_ns() - started,
            batches=batches,
        )

    async def _acquire(self, req: EmbeddingRequest) -> tuple[LoadedModel, int] | EmbedError:
        if len(req.inputs) > self._limits.max_inputs:
            return TooManyInputs(len(req.inputs), self._limits.max_inputs)
        spec = self.catalogue.resolve(req.model)
        if spec is None:
            return ModelNotFound(req.model)
        return await self.registry.acquire(spec, req.keep_alive_s)

    def _prepare(self, req: EmbeddingRequest, model: LoadedModel) -> _Prepared | EmbedError:
        """Texts and token ids tokenized, images decoded into the model's pixel input."""
        texts: list[tuple[int, str | TokenIds]] = []
        images: list[tuple[int, ImageData]] = []
        for index, item in enumerate(req.inputs):
            image = parse_image_data_url(item, index) if isinstance(item, str) else None
            if isinstance(image, InvalidInput):
                return image
            if image is None:
                texts.append((index, item))
            else:
                images.append((index, image))
        encoded = self._tokenize(texts, model.tokenizer, truncate=req.truncate)
        if not isinstance(encoded, list):
            return encoded
        pixels = _pixels(images, model.encoder.images, model.spec.qualified_name)
        if isinstance(pixels, InvalidInput):
            return pixels
        counts = [0] * len(req.inputs)
        for (index, _), e in zip(texts, encoded, strict=True):
            counts[index] = len(e.ids)
        image_tokens = 0 if model.encoder.images is None else model.encoder.images.tokens
        for index, _ in images:
            counts[index] = image_tokens
        total = sum(counts)
        if total > self._limits.max_total_tokens:
            return TooManyTokens(total, self._limits.max_total_tokens)
        return _Prepared(
            encoded=encoded,
            text_slots=[index for index, _ in texts],
            pixels=pixels,
            image_slots=[index for index, _ in images],
            token_counts=tuple(counts),
        )

    @staticmethod
    def _dimensions(req: EmbeddingRequest, available: int) -> int | InvalidDimensions | None:
        d = req.dimensions
        if d is None:
            return None
        if 1 <= d <= available:
            return d  # the full size too: `dimensions` always answers unit vectors
        return None if req.lenient_dimensions else InvalidDimensions(d, available)

    def _tokenize(
        self, items: list[tuple[int, str | TokenIds]], tokenizer: Tokenizer, *, truncate: bool
    ) -> list[Encoded] | EmbedError:
        texts: list[str] = []
        slots: list[int | Encoded] = []  # an index into texts, or ids already encoded
        for _, item in items:
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
        for (index, _), e in zip(items, encoded, strict=True):
            if e.truncated and not truncate:
                return InputTooLong(index, e.full_length, tokenizer.max_tokens)
        return encoded


@dataclass(frozen=True, slots=True)
class _Prepared:
    encoded: list[Encoded]  # the text items', in order
    text_slots: list[int]  # where each text item sits in the request
    pixels: Array  # [N,C,S,S], the image items', in order
    image_slots: list[int]
    token_counts: tuple[int, ...]  # per request item


def _pixels(
    images: list[tuple[int, ImageData]], tower: ImageEncoder | None, model: str
) -> Array | InvalidInput:
    if not images:
        return np.zeros((0,), dtype=np.float32)
    if tower is None:
        return InvalidInput(
            f"input {images[0][0]} is an image, and model {model!r} embeds text only"
        )
    prepared = []
    for index, image in images:
        pixels = tower.prepare(image.data)
        if isinstance(pixels, InvalidInput):
            return InvalidInput(f"input {index}: {pixels.message}")
        prepared.append(pixels)
    return np.stack(prepared)


def _interleave(
    texts: Array, text_slots: list[int], images: Array, image_slots: list[int]
) -> Array:
    out = np.empty((len(text_slots) + len(image_slots), texts.shape[1]), dtype=np.float32)
    out[text_slots] = texts
    out[image_slots] = images
    return out
