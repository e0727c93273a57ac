"""The request and result that both dialects translate to and from."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from domain.ops import Array
from domain.prompts import PromptChoice

__all__ = ["EmbeddingRequest", "EmbeddingResult", "Normalization", "TokenIds", "Truncation"]


@dataclass(frozen=True, slots=True)
class TokenIds:
    """An input given as token ids (OpenAI's `input: [[...]]`), not as text."""

    ids: tuple[int, ...]


class Normalization(enum.Enum):
    MODEL = "model"  # what the model's own pipeline does (sentence-transformers' output)
    # unit length whatever the model does: /v1/embeddings and /api/embed unless a request says
    # `"normalize": false`, as OpenAI, TEI, infinity, vLLM and Ollama return
    ALWAYS = "always"


class Truncation(enum.Enum):
    """What happens to an input longer than the model's context."""

    CUT = "true"  # cut at the limit, special tokens kept (sentence-transformers, Ollama's default)
    REFUSE = "false"  # refused with InputTooLong (OpenAI's own API)
    CHUNK = "chunk"  # embedded whole, in overlapping windows pooled into one vector

    @classmethod
    def of(cls, value: bool | Literal["chunk"]) -> Truncation:  # noqa: FBT001 - Ollama's own flag
        """The wire's `truncate` as a mode: Ollama's flag (true cuts, false refuses) or "chunk"."""
        if value == "chunk":
            return cls.CHUNK
        return cls.CUT if value else cls.REFUSE


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    model: str
    inputs: Sequence[str | TokenIds]
    dimensions: int | None = None
    truncate: Truncation = Truncation.CUT
    normalization: Normalization = Normalization.MODEL
    keep_alive_s: float | None = None  # None: the server's default; negative: forever
    lenient_dimensions: bool = False  # Ollama ignores a `dimensions` out of range; OpenAI refuses
    prompt: PromptChoice | None = None  # None: the server's default prompt (domain/prompts.py)


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    model: str  # the catalogue name that served it, `name:tag`
    vectors: Array  # [N,D], in input order
    token_counts: tuple[int, ...]  # tokens the model saw per input, special tokens included
    load_ns: int
    total_ns: int
    batches: int

    @property
    def prompt_tokens(self) -> int:
        return sum(self.token_counts)
