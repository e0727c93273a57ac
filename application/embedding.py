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
from application.model_lookup import ModelLookup, as_lookup
from application.prepared_inputs import InputPreparer, Prepared
from domain.chunking import DEFAULT_OVERLAP, pool_windows
from domain.errors import (
    EmbedError,
    InvalidDimensions,
    Overloaded,
    TooManyInputs,
    WrongTask,
)
from domain.models import ModelSpec, Task
from domain.ops import Array
from domain.ports import Encoded, TokenIdDecoder
from domain.requests import EmbeddingRequest, EmbeddingResult, Normalization
from domain.vectors import l2_normalize, truncate_dimensions

__all__ = ["EmbeddingService", "Limits"]

# characters (or token ids) that a request may hold and still be tokenized on the event loop:
# ~1 ms of tokenizing at most, and every single text of the benchmark's corpus fits
_INLINE_SIZE = 4096
_CHARS_PER_ID = 4  # a token id read as text (OpenAI's ids are decoded first) is ~4 characters


@dataclass(frozen=True, slots=True)
class Limits:
    max_inputs: int = 2048  # OpenAI's per-request cap, applied to both dialects
    max_total_tokens: int = 300_000  # likewise


class EmbeddingService:
    """Resolve, load, tokenize, batch, embed, post-process.

    `token_ids` and `chunk_overlap`: how inputs are read (application/prepared_inputs.py).
    """

    def __init__(  # noqa: PLR0913 - collaborators and settings, given by the composition root
        self,
        catalogue: Catalogue | ModelLookup,
        registry: ModelRegistry,
        token_ids: TokenIdDecoder | None,
        limits: Limits = Limits(),
        cache: EmbeddingCache | None = None,
        *,
        chunk_overlap: int = DEFAULT_OVERLAP,
        default_prompt_name: str | None = None,
    ) -> None:
        self._names = as_lookup(catalogue)
        self._registry = registry
        self._limits = limits
        self._cache = cache
        self._inputs = InputPreparer(
            token_ids, limits.max_total_tokens, chunk_overlap, default_prompt_name
        )

    async def embed(self, req: EmbeddingRequest) -> EmbeddingResult | EmbedError:
        started = time.perf_counter_ns()
        acquired = await self._acquire(req)
        if not isinstance(acquired, tuple):
            return acquired
        model, load_ns = acquired
        try:
            return await self._embed_with(req, model, load_ns, started)
        finally:
            self._registry.release(model)  # its keep-alive starts when its last user is done

    async def _embed_with(
        self, req: EmbeddingRequest, model: LoadedModel, load_ns: int, started: int
    ) -> EmbeddingResult | EmbedError:
        spec = model.spec
        dimensions = self._dimensions(req, model.encoder.dimensions)
        if isinstance(dimensions, InvalidDimensions):
            return dimensions
        prepared = (
            self._inputs.prepare(req, model)
            if _small(req)
            else await asyncio.to_thread(self._inputs.prepare, req, model)
        )
        if not isinstance(prepared, Prepared):
            return prepared
        run = await self._embed_rows(model, [e.ids for e in prepared.encoded], prepared.skip)
        if isinstance(run, Overloaded):
            return run
        # windows pooled at full size: `dimensions` and normalisation then apply as to any row
        vectors, batches = _pool(run.vectors, prepared.encoded, prepared.windows), run.batches
        if prepared.image_slots:
            images = await model.batcher.embed_images(prepared.pixels)
            vectors = _interleave(
                vectors, prepared.text_slots, images.vectors, prepared.image_slots
            )
            batches += images.batches
        normalize = req.normalization is Normalization.ALWAYS
        if dimensions is not None:
            vectors = truncate_dimensions(vectors, dimensions, normalize=normalize)
        elif normalize:
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
        spec = await self._names.find(req.model)
        if not isinstance(spec, ModelSpec):
            return spec
        if spec.task is not Task.EMBEDDING:
            capable = tuple(s.name for s in self._names.listed() if s.task is Task.EMBEDDING)
            return WrongTask(req.model, Task.EMBEDDING, capable)
        return await self._registry.acquire(spec, req.keep_alive_s)

    async def _embed_rows(
        self, model: LoadedModel, rows: list[tuple[int, ...]], skip: int
    ) -> BatchRun | Overloaded:
        """The model's vectors for these token ids, the first `skip` of each left out of
        pooling (a prompt's, where the model pools without it); with a cache, only the rows it
        lacks run, each distinct one once, and order is kept."""
        cache = self._cache
        if cache is None:
            return await model.batcher.embed(rows, skip)
        # the engine and precision too: a reload on another engine gives other last bits; the
        # prompt is in the ids, but where pooling leaves it out, "query: " + text and the text
        # "query: ..." have the same ids and other vectors
        key = f"{model.spec.qualified_name}@{model.engine}/{model.precision}#{skip}"
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
        run = await model.batcher.embed(list(missing), skip)
        if isinstance(run, Overloaded):
            return run
        for (ids, slots), row in zip(missing.items(), run.vectors, strict=True):
            cache.put(key, ids, row)
            out[slots] = row
        return BatchRun(out, run.batches)

    @staticmethod
    def _dimensions(req: EmbeddingRequest, available: int) -> int | InvalidDimensions | None:
        d = req.dimensions
        if d is None:
            return None
        if 1 <= d <= available:
            return d  # the full size too: `dimensions` always answers unit vectors
        return None if req.lenient_dimensions else InvalidDimensions(d, available)


def _small(req: EmbeddingRequest) -> bool:
    """Whether the request is read on the event loop: tokenizing thousands of long texts, or
    decoding images, takes a while and goes to a thread; a few short texts take tens of
    microseconds, less than the hand-off to a thread and back, and a request that reaches the
    batcher without that detour joins the forward pass its neighbours are forming."""
    size = 0
    for item in req.inputs:
        if isinstance(item, str) and item.startswith("data:"):
            return False  # maybe an image: a small file can hold a large one
        size += len(item) if isinstance(item, str) else _CHARS_PER_ID * len(item.ids)
        if size > _INLINE_SIZE:
            return False
    return True


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
