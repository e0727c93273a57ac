"""OpenAI's token ids (cl100k_base, the vocabulary of its embedding models) back to text.

LangChain's OpenAIEmbeddings sends token arrays by default; bpe-openai carries the table, so
decoding needs no network (tiktoken would download its table at first use).
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np

from adapters.heap import note_large_request
from domain.errors import TokenIdOutOfRange

__all__ = ["Cl100kDecoder"]

_LARGE = 1 << 20  # ids in a list that makes the request a large one (adapters/heap.py)
_PART = 1 << 16  # ids checked per numpy call


class Cl100kDecoder:
    vocabulary = "cl100k_base"

    @cached_property
    def _encoding(self) -> Any:  # bpe_openai has no type stubs
        """Read at the first token-id input: the table costs ~0.7 s and ~90 MB at start-up."""
        import bpe_openai

        return bpe_openai.get_encoding("cl100k_base")

    @cached_property
    def _undefined(self) -> frozenset[int]:
        """Ids inside the range that name no token (100256, say): a handful."""
        return frozenset(i for i in range(self._encoding.n_vocab) if not self._defined(i))

    def _check(self, ids: Sequence[int]) -> TokenIdOutOfRange | None:
        """Every id named by a token, checked at C speed: a long list is checked whole, and
        never decoded whole (see decode_head). It is checked in parts of `_PART` ids: each
        numpy call holds the GIL for a few ms, so that the event loop runs between them (one
        call over 7.5M ids held it for ~0.5 s)."""
        for start in range(0, len(ids), _PART):
            bad = self._check_part(ids[start : start + _PART])
            if bad is not None:
                return bad
        if len(ids) >= _LARGE:
            note_large_request()
        return None

    def _check_part(self, ids: Sequence[int]) -> TokenIdOutOfRange | None:
        try:
            values = np.fromiter(ids, dtype=np.int64, count=len(ids))
        except OverflowError:  # an id past int64 is out of range, whatever else is there
            huge = next(i for i in ids if not -(2**63) <= i < 2**63)
            return TokenIdOutOfRange(huge, self.vocabulary)
        bad = (values < 0) | (values >= self._encoding.n_vocab)
        bad |= np.isin(values, self._undefined_array)
        if bad.any():
            return TokenIdOutOfRange(int(values[bad.argmax()]), self.vocabulary)
        return None

    @cached_property
    def _undefined_array(self) -> np.ndarray[Any, np.dtype[np.int64]]:
        return np.fromiter(self._undefined, dtype=np.int64)

    def decode(self, ids: Sequence[int]) -> str | TokenIdOutOfRange:
        """Bytes that are not UTF-8 (a split multi-byte character) become U+FFFD, as in tiktoken."""
        bad = self._check(ids)
        if bad is not None:
            return bad
        return self._encoding.decode_bytes(list(ids)).decode("utf-8", errors="replace")

    def decode_head(self, ids: Sequence[int], count: int) -> str | TokenIdOutOfRange:
        """The incremental decoder keeps a character split at the cut back, so the text is a
        prefix of decode(ids): what it gives so far never changes with the bytes that follow."""
        bad = self._check(ids)
        if bad is not None:
            return bad
        data = self._encoding.decode_bytes(list(ids[:count]))
        return codecs.getincrementaldecoder("utf-8")(errors="replace").decode(data, final=False)

    def _defined(self, token_id: int) -> bool:
        try:
            self._encoding.decode_bytes([token_id])
        except KeyError:
            return False
        return True
