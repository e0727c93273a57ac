"""A request's inputs made ready for the model: texts and token ids tokenized (cut, refused or
cut into windows, as the request's truncation says), images decoded into pixels, tokens counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from application.lifecycle import LoadedModel
from domain.chunking import WINDOWLESS, window_spans
from domain.data_url import ImageData, parse_image_data_url
from domain.errors import EmbedError, InputTooLong, InvalidInput, TokenIdOutOfRange, TooManyTokens
from domain.ops import Array
from domain.ports import Encoded, ImageEncoder, TokenIdDecoder, Tokenizer
from domain.requests import EmbeddingRequest, TokenIds, Truncation

__all__ = ["InputPreparer", "Prepared"]


@dataclass(frozen=True, slots=True)
class Prepared:
    encoded: list[Encoded]  # the text items' rows, in order: several for a chunked item
    windows: list[int]  # rows per text item, in order
    text_slots: list[int]  # where each text item sits in the request
    pixels: Array  # [N,C,S,S], the image items', in order
    image_slots: list[int]
    token_counts: tuple[int, ...]  # per request item


@dataclass(frozen=True, slots=True)
class InputPreparer:
    """Token-id inputs are decoded by `token_ids` (OpenAI's vocabulary) when given; without one
    they are read as ids of the model's own vocabulary. `chunk_overlap` is the tokens that
    consecutive windows share when a request asks for `Truncation.CHUNK` (domain/chunking.py)."""

    token_ids: TokenIdDecoder | None
    max_total_tokens: int
    chunk_overlap: int

    def prepare(self, req: EmbeddingRequest, model: LoadedModel) -> Prepared | EmbedError:
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
        read = self._read(texts, model.tokenizer, refuse=req.truncate is Truncation.REFUSE)
        if not isinstance(read, tuple):
            return read
        sources, encoded = read
        windows = [1] * len(encoded)
        if req.truncate is Truncation.CHUNK:
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
        if total > self.max_total_tokens:
            return TooManyTokens(total, self.max_total_tokens)
        return Prepared(
            encoded=encoded,
            windows=windows,
            text_slots=[index for index, _ in texts],
            pixels=pixels,
            image_slots=[index for index, _ in images],
            token_counts=tuple(counts),
        )

    def _read(
        self, texts: list[tuple[int, str | TokenIds]], tokenizer: Tokenizer, *, refuse: bool
    ) -> tuple[list[str | TokenIds], list[Encoded]] | EmbedError:
        """Each text item's source (see _sources) and its tokens, cut to the model's limit."""
        sources = self._sources([item for _, item in texts], tokenizer)
        if not isinstance(sources, list):
            return sources
        encoded = _tokenize([index for index, _ in texts], sources, tokenizer, refuse=refuse)
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
            elif self.token_ids is not None:
                text = self.token_ids.decode(item.ids)
                if isinstance(text, TokenIdOutOfRange):
                    return text
                sources.append(text)
            else:
                bad = next((i for i in item.ids if not 0 <= i < tokenizer.vocab_size), None)
                if bad is not None:
                    return TokenIdOutOfRange(bad, "model's own")
                sources.append(item)
        return sources

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
                spans = window_spans(len(ids), room, self.chunk_overlap)
                replaced[n] = [tokenizer.wrap(ids[a:b]) for a, b in spans]
        rows = [row for n, e in enumerate(encoded) for row in replaced.get(n, [e])]
        return rows, [len(replaced.get(n, [e])) for n, e in enumerate(encoded)]


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
