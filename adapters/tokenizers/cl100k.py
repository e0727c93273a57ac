"""OpenAI's token ids (cl100k_base, the vocabulary of its embedding models) back to text.

LangChain's OpenAIEmbeddings sends token arrays by default; bpe-openai carries the table, so
decoding needs no network (tiktoken would download its table at first use).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from domain.errors import TokenIdOutOfRange

__all__ = ["Cl100kDecoder"]


class Cl100kDecoder:
    vocabulary = "cl100k_base"

    @cached_property
    def _encoding(self) -> Any:  # bpe_openai has no type stubs
        """Read at the first token-id input: the table costs ~0.7 s and ~90 MB at start-up."""
        import bpe_openai

        return bpe_openai.get_encoding("cl100k_base")

    def decode(self, ids: Sequence[int]) -> str | TokenIdOutOfRange:
        """Bytes that are not UTF-8 (a split multi-byte character) become U+FFFD, as in tiktoken."""
        for token_id in ids:
            if not 0 <= token_id < self._encoding.n_vocab:
                return TokenIdOutOfRange(token_id, self.vocabulary)
        try:
            data = self._encoding.decode_bytes(list(ids))
        except KeyError:  # an id inside the range that names no token (100256, say)
            bad = next(i for i in ids if not self._defined(i))
            return TokenIdOutOfRange(bad, self.vocabulary)
        return data.decode("utf-8", errors="replace")

    def _defined(self, token_id: int) -> bool:
        try:
            self._encoding.decode_bytes([token_id])
        except KeyError:
            return False
        return True
