"""The one embedding pipeline both dialects go through."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import numpy as np

from application.batching import BatchRun
from application.catalogue import Catalogue
from application.embedding_cache import EmbeddingCache
from application.lifecycle import LoadedModel, ModelRegistry
from domain.chunking import DEFAULT_OVERLAP, WINDOWLESS, pool_windows, window_spans
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
from domain.requests import (
    EmbeddingRequest,
    EmbeddingResult,
    Normalization,
    TokenIds,
    Truncation,
)
from domain.vectors import l2_normalize, truncate_dimensions

__all__ = ["EmbeddingService", "Limits"]


@dataclass(frozen=True, slots=True)
class Limits:
    max_inputs: int = 2048  # OpenAI's per-request cap, applied to both dialects
    max_total_tokens: int = 300_000  # likewise


class EmbeddingService:
    """Resolve, load, tokenize, batch, embed, post-process.

    Token-id inputs are decoded by `token_ids` (OpenAI's vocabulary) when given; without one
    they are read as ids of the model's own vocabulary. `chunk_overlap` is the tokens that
    consecutive windows share when a request asks for `Truncation.CHUNK` (domain/chunking.py).
    """

    def __init__(  # noqa: PLR0913 - collaborators and settings, given by the composition root
        self,
        catalogue: Catalogue,
        registry: ModelRegistry,
        token_ids: TokenIdDecoder | None,
        limits: Limits = Limits(),
        cache: EmbeddingCache | None = None,
        *,
        chunk_overlap: int = DEFAULT_OVERLAP,
    ) -> None:
        self.catalogue = catalogue
        self.registry = registry
        self._token_ids = token_ids
        self._limits = limits
        self._cache = cache
        self._chunk_overlap = chunk_overlap

    async def embed(self, req: EmbeddingRequest) -> EmbeddingResult | EmbedError:
        started = time.perf_counter_ns()
        acquired = await self._acquire(req)
        if not isinstance(acquired, tuple):
            return acquired
        model, load_ns = acquired
        try:
            return await self._embed_with(req, model, load_ns, started)
        finally:
            self.registry.release(model)  # its keep-alive starts when its last user is done

    async def _embed_with(
        self, req: EmbeddingRequest, model: LoadedModel, load_ns: int, started: int
    ) -> EmbeddingResult | EmbedError:
        spec = model.spec
        dimensions = self._dimensions(req, model.encoder.dimensions)
        if isinstance(dimensions, InvalidDimensions):
            return dimensions
        # tokenizing thousands of long texts, or decoding images, takes a while: off the loop
        prepared = await asyncio.to_thread(self._prepare, req, model)
        if not isinstance(prepared, _Prepared):
            return prepared
        run = await self._embed_rows(model, [e.ids for e in prepared.encoded])
        if isinstance(run, Overloaded):
            return run
        # windows pooled at full size: `dimensions` and normalisation then apply as to any row
        vectors, batches = _pool(run.vectors, prepared.encoded, prepared.windows), run.batches
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

    async def _embed_rows(
        self, model: LoadedModel, rows: list[tuple[int, ...]]
    ) -> BatchRun | Overloaded:
        """The model's vectors for these token ids; with a cache, only the rows it lacks run,
        each distinct one once, and order is kept."""
        cache = self._cache
        if cache is None:
            return await model.batcher.embed(rows)
        # the engine and precision too: a reload on another engine gives other last bits
        key = f"{model.spec.qualified_name}@{model.engine}/{model.precision}"
        out = np.empty((len(rows), model.encoder.dimensions), dtype=np.float32)
        missing: dict[tuple[int, ...], list[int]] = {}  # ids -> the rows that wait for them
        for index, ids in enumerate(rows):
            row = cache.get(key, ids)
            if row is None:
                missing.setdefault(tuple(ids), []).append(index)
            else:
                out[index] = row
        if not missing:
            return BatchRun(out, batches=0)
        run = await model.batcher.embed(list(missing))
        if isinstance(run, Overloaded):
            return run
        for (ids, slots), row in zip(missing.items(), run.vectors, strict=True):
            cache.put(key, ids, row)
            out[slots] = row
        return BatchRun(out, run.batches)

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
        truncation = Truncation.of(req.truncate)
        read = self._read(texts, model.tokenizer, refuse=truncation is Truncation.REFUSE)
        if not isinstance(read, tuple):
            return read
        sources, encoded = read
        windows = [1] * len(encoded)
        if truncation is Truncation.CHUNK:
            encoded, windows = self._chunk(sources, encoded, model)
        pixels = _pixels(images, model.encoder.images, model.spec.qualified_name)
        if isinstance(pixels, InvalidInput):
            return pixels
        counts = [0] * len(req.inputs)
        rows = iter(encoded)
        for (index, _), n in zip(texts, windows, strict=True):
            counts[index] = sum(len(next(rows).ids) for _ in range(n))
        image_tokens = 0 if model.encoder.images is None else model.encoder.images.tokens
        for index, _ in images:
            counts[index] = image_tokens
        total = sum(counts)
        if total > self._limits.max_total_tokens:
            return TooManyTokens(total, self._limits.max_total_tokens)
        return _Prepared(
            encoded=encoded,
            windows=windows,
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

    def _read(
        self, texts: list[tuple[int, str | TokenIds]], tokenizer: Tokenizer, *, refuse: bool
    ) -> tuple[list[str | TokenIds], list[Encoded]] | EmbedError:
        """Each text item's source (see _sources) and its tokens, cut to the model's limit."""
        sources = self._sources([item for _, item in texts], tokenizer)
        if not isinstance(sources, list):
            return sources
        encoded = self._tokenize([index for index, _ in texts], sources, tokenizer, refuse=refuse)
        if not isinstance(encoded, list):
            return encoded
        return sources, encoded

    def _sources(
        self, items: list[str | TokenIds], tokenizer: Tokenizer
    ) -> list[str | TokenIds] | EmbedError:
        """What each text item is read as: text (OpenAI token ids decoded), or ids of the
        model's own vocabulary, each checked to be in it."""
        sources: list[str | TokenIds] = []
        for item in items:
            if isinstance(item, str):
                sources.append(item)
            elif self._token_ids is not None:
                text = self._token_ids.decode(item.ids)
                if isinstance(text, TokenIdOutOfRange):
                    return text
                sources.append(text)
            else:
                bad = next((i for i in item.ids if not 0 <= i < tokenizer.vocab_size), None)
                if bad is not None:
                    return TokenIdOutOfRange(bad, "model's own")
                sources.append(item)
        return sources

    @staticmethod
    def _tokenize(
        indexes: list[int], sources: list[str | TokenIds], tokenizer: Tokenizer, *, refuse: bool
    ) -> list[Encoded] | EmbedError:
        texts = [s for s in sources if isinstance(s, str)]
        read = iter(tokenizer.encode(texts) if texts else [])
        encoded = [next(read) if isinstance(s, str) else tokenizer.wrap(s.ids) for s in sources]
        for index, e in zip(indexes, encoded, strict=True):
            if e.truncated and refuse:
                return InputTooLong(index, e.full_length, tokenizer.max_tokens)
        return encoded

    def _chunk(
        self, sources: list[str | TokenIds], encoded: list[Encoded], model: LoadedModel
    ) -> tuple[list[Encoded], list[int]]:
        """Each cut item replaced by its windows (see domain/chunking.py): the rows to embed,
        and how many rows each item became. Items that fit keep their one row untouched."""
        tokenizer = model.tokenizer
        long = [n for n, e in enumerate(encoded) if e.truncated]
        if not long:
            return encoded, [1] * len(encoded)
        whole = _text_ids([sources[n] for n in long], tokenizer)
        room = tokenizer.max_tokens - len(tokenizer.wrap(()).ids)
        replaced: dict[int, list[Encoded]] = {}
        for n, ids in zip(long, whole, strict=True):
            if model.spec.family in WINDOWLESS:  # no special tokens, no positions: one row
                replaced[n] = [Encoded(ids=ids, full_length=len(ids))]
            else:
                spans = window_spans(len(ids), room, self._chunk_overlap)
                replaced[n] = [tokenizer.wrap(ids[a:b]) for a, b in spans]
        rows = [row for n, e in enumerate(encoded) for row in replaced.get(n, [e])]
        return rows, [len(replaced.get(n, [e])) for n, e in enumerate(encoded)]


@dataclass(frozen=True, slots=True)
class _Prepared:
    encoded: list[Encoded]  # the text items' rows, in order: several for a chunked item
    windows: list[int]  # rows per text item, in order
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


def _text_ids(sources: list[str | TokenIds], tokenizer: Tokenizer) -> list[tuple[int, ...]]:
    """The items' whole token ids, no special tokens: texts tokenized uncut, own ids as given."""
    texts = [s for s in sources if isinstance(s, str)]
    read = iter(tokenizer.text_ids(texts) if texts else [])
    return [next(read) if isinstance(s, str) else s.ids for s in sources]


def _pool(vectors: Array, rows: list[Encoded], windows: list[int]) -> Array:
    """[rows,D] -> [items,D]: a chunked item's windows pooled into one vector; an item of one
    row keeps its vector bit for bit."""
    if len(rows) == len(windows):
        return vectors
    out = np.empty((len(windows), vectors.shape[1]), dtype=np.float32)
    start = 0
    for n, count in enumerate(windows):
        part = slice(start, start + count)
        weights = [len(r.ids) for r in rows[part]]
        out[n] = vectors[start] if count == 1 else pool_windows(vectors[part], weights)
        start += count
    return out


def _interleave(
    texts: Array, text_slots: list[int], images: Array, image_slots: list[int]
) -> Array:
    out = np.empty((len(text_slots) + len(image_slots), texts.shape[1]), dtype=np.float32)
    out[text_slots] = texts
    out[image_slots] = images
    return out
