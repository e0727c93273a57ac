"""A request's inputs made ready for the model: texts and token ids tokenized (cut, refused or
cut into windows, as the request's truncation says), images decoded into pixels, tokens counted.

A prompt (domain/prompts.py) goes before each text item, as sentence-transformers embeds
`prompt + text`: the two are tokenized as one text and cut as one, so the prompt counts in the
item's tokens and a cut takes the text's end. Token-id items get it too: OpenAI's ids are
decoded to text first, ids of the model's own vocabulary follow the prompt's ids. A chunked
item keeps the prompt at the head of every window. Images get no prompt.
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
from domain.prompts import choose_prompt
from domain.requests import EmbeddingRequest, TokenIds, Truncation

__all__ = ["InputPreparer", "Prepared"]

# a refusal counts an input's tokens up to this many times the model's limit, so that its message
# says how long the input is where that costs little, and "more than" past it
_REFUSAL_COUNT = 4


@dataclass(frozen=True, slots=True)
class Prepared:
    encoded: list[Encoded]  # the text items' rows, in order: several for a chunked item
    windows: list[int]  # rows per text item, in order
    text_slots: list[int]  # where each text item sits in the request
    pixels: Array  # [N,C,S,S], the image items', in order
    image_slots: list[int]
    token_counts: tuple[int, ...]  # per request item
    skip: int = 0  # each row's first tokens pooling leaves out: the prompt's, where it does


@dataclass(frozen=True, slots=True)
class InputPreparer:
    """Token-id inputs are decoded by `token_ids` (OpenAI's vocabulary) when given; without one
    they are read as ids of the model's own vocabulary. `chunk_overlap` is the tokens that
    consecutive windows share when a request asks for `Truncation.CHUNK` (domain/chunking.py)."""

    token_ids: TokenIdDecoder | None
    max_total_tokens: int
    chunk_overlap: int
    default_prompt_name: str | None = None  # applied where the model names such a prompt

    def prepare(self, req: EmbeddingRequest, model: LoadedModel) -> Prepared | EmbedError:
        """Texts and token ids tokenized, images decoded into the model's pixel input."""
        tokenizer = model.tokenizer
        prompt = choose_prompt(req.prompt, tokenizer.prompts, self.default_prompt_name)
        if isinstance(prompt, InvalidInput):
            return prompt
        return _Prompted(self, prompt).prepare(req, model)


@dataclass(frozen=True, slots=True)
class _Prompted:
    """One request's preparation, with the prompt chosen for it ("" for none)."""

    settings: InputPreparer
    prompt: str

    @property
    def token_ids(self) -> TokenIdDecoder | None:
        return self.settings.token_ids

    @property
    def max_total_tokens(self) -> int:
        return self.settings.max_total_tokens

    def prepare(self, req: EmbeddingRequest, model: LoadedModel) -> Prepared | EmbedError:
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
        encoded = self._ids_past_budget(texts, model.tokenizer, req.truncate) or self._read(
            texts, model.tokenizer, req.truncate
        )
        if not isinstance(encoded, list):
            return encoded
        windows = [1] * len(encoded)
        if req.truncate is Truncation.CHUNK:
            chunked = self._chunk([item for _, item in texts], encoded, model)
            if isinstance(chunked, EmbedError):
                return chunked
            encoded, windows = chunked
        pixels = _pixels(images, model.encoder.images, model.spec.qualified_name)
        if isinstance(pixels, InvalidInput):
            return pixels
        counts = _counts(
            len(req.inputs),
            texts=texts,
            encoded=encoded,
            windows=windows,
            images=images,
            model=model,
        )
        total = sum(counts)
        if total > self.max_total_tokens:
            return TooManyTokens(total, self.max_total_tokens)
        return Prepared(
            encoded=encoded,
            windows=windows,
            text_slots=[index for index, _ in texts],
            pixels=pixels,
            image_slots=[index for index, _ in images],
            token_counts=counts,
            skip=model.tokenizer.excluded_prompt_tokens(self.prompt),
        )

    def _read(
        self, texts: list[tuple[int, str | TokenIds]], tokenizer: Tokenizer, truncate: Truncation
    ) -> list[Encoded] | EmbedError:
        """Each text item's tokens, cut to the model's limit, each read only as far as needed:
        the cut (a refusal counts on to `_REFUSAL_COUNT` x the limit, so that its message says
        how long the input is when that is cheap), and never past the request's token budget.
        Items go in groups that together read at most about twice the budget, and reading stops
        at the first group past it.

        The budget counts each input's tokens before any cut, as OpenAI counts them: an input
        the cut shortens is read on to count it, but only as far as what is left of the budget
        (`_count`), so the reading stays bounded by the budget. ("chunk" counts in `_chunk`.)"""
        budget = self.max_total_tokens
        room = tokenizer.max_tokens - len(tokenizer.wrap(()).ids)
        refuse = truncate is Truncation.REFUSE
        read = min(room * _REFUSAL_COUNT if refuse else room, budget)
        group = max(1, 2 * budget // (read + 1))
        encoded: list[Encoded] = []
        counted, exact = 0, True
        for start in range(0, len(texts), group):
            part = texts[start : start + group]
            rows = self._encode([item for _, item in part], tokenizer, read)
            if not isinstance(rows, list):
                return rows
            for (index, item), row in zip(part, rows, strict=True):
                if refuse and row.truncated:
                    return InputTooLong(index, row.full_length, tokenizer.max_tokens, row.exact)
                if truncate is not Truncation.CUT:
                    counted += len(row.ids)  # refused past the cut, or counted by `_chunk`
                    continue
                whole = self._count(item, row, tokenizer, budget - counted)
                if not isinstance(whole, tuple):
                    return whole
                counted, exact = counted + whole[0], exact and whole[1]
                if counted > budget:
                    return TooManyTokens(counted, budget, exact=exact)
            encoded += rows
            # reading stopped short of the model's own cut: that input alone is past the budget
            stopped = read < room and any(not row.exact for row in rows)
            if stopped or (counted > budget and start + group < len(texts)):
                return TooManyTokens(counted, budget, exact=False)
        return encoded

    def _ids_past_budget(
        self, texts: list[tuple[int, str | TokenIds]], tokenizer: Tokenizer, truncate: Truncation
    ) -> TooManyTokens | None:
        """OpenAI's ids count as many as they are (`_count`): past the budget on their own, the
        request is refused before any of them is checked or decoded."""
        if truncate is not Truncation.CUT or self.token_ids is None:
            return None
        specials = len(tokenizer.wrap(()).ids)
        ids = sum(len(item.ids) + specials for _, item in texts if isinstance(item, TokenIds))
        return TooManyTokens(ids, self.max_total_tokens) if ids > self.max_total_tokens else None

    def _count(
        self, item: str | TokenIds, row: Encoded, tokenizer: Tokenizer, left: int
    ) -> tuple[int, bool] | EmbedError:
        """An input's tokens before the cut, special tokens included, and whether that is its
        whole count: read no further than one token past `left`. OpenAI's token ids count as
        many as they are, as OpenAI counts them, with no decoding past the cut."""
        specials = len(tokenizer.wrap(()).ids)
        if isinstance(item, TokenIds) and self.token_ids is not None:
            return len(item.ids) + specials, True
        if row.exact:
            return row.full_length, True
        limit = max(left - specials, 0)
        ids = self._whole_ids(item, tokenizer, limit)
        if not isinstance(ids, tuple):
            return ids
        return len(ids) + specials, len(ids) <= limit

    def _encode(
        self, items: list[str | TokenIds], tokenizer: Tokenizer, read: int
    ) -> list[Encoded] | EmbedError:
        """Texts (OpenAI token ids decoded as far as `read` needs) tokenized together; ids of
        the model's own vocabulary checked to be in it, and wrapped."""
        texts: list[str] = []
        for item in items:
            if isinstance(item, str):
                texts.append(self.prompt + item)
            elif self.token_ids is not None:
                text = self._decoded(item, tokenizer, read)
                if isinstance(text, TokenIdOutOfRange):
                    return text
                texts.append(self.prompt + text)
            else:
                bad = _outside(item.ids, tokenizer.vocab_size)
                if bad is not None:
                    return bad
        tokenized = iter(tokenizer.encode(texts, read) if texts else [])
        own = self.token_ids is None
        head = self._prompt_ids(tokenizer)
        return [
            tokenizer.wrap(head + item.ids)
            if own and isinstance(item, TokenIds)
            else next(tokenized)
            for item in items
        ]

    def _prompt_ids(self, tokenizer: Tokenizer) -> tuple[int, ...]:
        return tokenizer.text_ids([self.prompt])[0] if self.prompt else ()

    def _decoded(self, item: TokenIds, tokenizer: Tokenizer, limit: int) -> str | TokenIdOutOfRange:
        """OpenAI token ids as text, decoded only as far as the model's first `limit` + 1
        tokens need (every id is checked): a longer head each time while the tokenizer says the
        text past it could still change them, the whole when that is all there is."""
        assert self.token_ids is not None  # noqa: S101 - only called with a decoder
        count = 2 * (limit + 1)
        while count < len(item.ids):
            head = self.token_ids.decode_head(item.ids, count)
            if not isinstance(head, str) or tokenizer.settled_ids(head, limit) is not None:
                return head
            count *= 2
        return self.token_ids.decode(item.ids)

    def _chunk(
        self, items: list[str | TokenIds], encoded: list[Encoded], model: LoadedModel
    ) -> tuple[list[Encoded], list[int]] | EmbedError:
        """Each cut item replaced by its windows (see domain/chunking.py): the rows to embed,
        and how many rows each item became. Items that fit keep their one row untouched.

        A cut item is read whole, so the request's token budget bounds it: it counts each
        item's tokens before any cut or window, as OpenAI counts them, and reading stops once
        they pass it."""
        tokenizer = model.tokenizer
        long = [n for n, e in enumerate(encoded) if e.truncated]
        if not long:
            return encoded, [1] * len(encoded)
        specials = len(tokenizer.wrap(()).ids)
        budget = self.max_total_tokens
        used = sum(e.full_length for n, e in enumerate(encoded) if not e.truncated)
        head = len(self._prompt_ids(tokenizer))  # every window starts with the prompt's ids
        room = tokenizer.max_tokens - specials - head
        if room < 1 and model.spec.family not in WINDOWLESS:
            return InvalidInput(
                f"the prompt takes {head} of the model's {tokenizer.max_tokens} tokens: "
                "no room is left for a window of text",
                param="prompt",
            )
        replaced: dict[int, list[Encoded]] = {}
        for n in long:
            left = max(budget - used - specials, 0)
            ids = self._whole_ids(items[n], tokenizer, left)
            if not isinstance(ids, tuple):
                return ids
            used += len(ids) + specials
            if len(ids) > left:
                return TooManyTokens(used, budget, exact=False)
            if model.spec.family in WINDOWLESS:  # no special tokens, no positions: one row
                replaced[n] = [Encoded(ids=ids, full_length=len(ids))]
            else:
                prompt, body = ids[:head], ids[head:]
                spans = window_spans(len(body), room, self.settings.chunk_overlap)
                replaced[n] = [tokenizer.wrap(prompt + body[a:b]) for a, b in spans]
        rows = [row for n, e in enumerate(encoded) for row in replaced.get(n, [e])]
        return rows, [len(replaced.get(n, [e])) for n, e in enumerate(encoded)]

    def _whole_ids(
        self, item: str | TokenIds, tokenizer: Tokenizer, limit: int
    ) -> tuple[int, ...] | EmbedError:
        """An item's own token ids, no special tokens, nothing cut; only `limit` + 1 of them
        are read (OpenAI's ids decoded no further), so more than `limit` says it goes on."""
        if isinstance(item, TokenIds) and self.token_ids is None:
            return (self._prompt_ids(tokenizer) + item.ids)[: limit + 1]
        text = item if isinstance(item, str) else self._decoded(item, tokenizer, limit)
        if not isinstance(text, str):
            return text
        return tokenizer.text_ids([self.prompt + text], limit)[0]


def _counts(  # noqa: PLR0913 - the request's items, as prepare splits them
    size: int,
    *,
    texts: list[tuple[int, str | TokenIds]],
    encoded: list[Encoded],
    windows: list[int],
    images: list[tuple[int, ImageData]],
    model: LoadedModel,
) -> tuple[int, ...]:
    """Tokens per request item: every row of a text item (its windows), an image's positions."""
    counts = [0] * size
    rows = iter(encoded)
    for (index, _), n in zip(texts, windows, strict=True):
        counts[index] = sum(len(next(rows).ids) for _ in range(n))
    image_tokens = 0 if model.encoder.images is None else model.encoder.images.tokens
    for index, _ in images:
        counts[index] = image_tokens
    return tuple(counts)


def _outside(ids: tuple[int, ...], size: int) -> TokenIdOutOfRange | None:
    """The first id outside the model's vocabulary; min and max run at C speed, so a long list
    that is all in it is checked without a loop in Python."""
    if not ids or (min(ids) >= 0 and max(ids) < size):
        return None
    return TokenIdOutOfRange(next(i for i in ids if not 0 <= i < size), "model's own")


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
