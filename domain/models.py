"""What a model is, as the catalogue and the pipeline see it."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Family", "ModelSpec", "PoolingMode", "Task"]


class Family(enum.StrEnum):
    BERT = "bert"
    ROBERTA = "roberta"
    XLM_ROBERTA = "xlm-roberta"
    DISTILBERT = "distilbert"
    MPNET = "mpnet"
    GEMMA3 = "gemma3"
    QWEN3 = "qwen3"
    MODERNBERT = "modernbert"
    NOMIC_BERT = "nomic_bert"
    CLIP = "clip"
    WORD2VEC = "word2vec"
    MODEL2VEC = "model2vec"
    STATIC = "static"
    # cross-encoders: a (query, document) pair in, one relevance score out (rerank)
    BERT_CROSS_ENCODER = "bert-cross-encoder"
    XLM_ROBERTA_CROSS_ENCODER = "xlm-roberta-cross-encoder"
    MODERNBERT_CROSS_ENCODER = "modernbert-cross-encoder"


class Task(enum.StrEnum):
    """What a model answers, as the listings name it (Ollama's `capabilities`)."""

    EMBEDDING = "embedding"
    RERANK = "rerank"


class PoolingMode(enum.StrEnum):
    """Spelled as sentence-transformers' `pooling_mode` values."""

    CLS = "cls"
    MAX = "max"
    MEAN = "mean"
    MEAN_SQRT_LEN = "mean_sqrt_len_tokens"
    WEIGHTED_MEAN = "weightedmean"
    LAST_TOKEN = "lasttoken"
    EOS = "eos"  # CLIP: the hidden state at the end-of-text token


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One catalogue entry. `name:tag` is how both dialects address it."""

    name: str
    repo_id: str
    family: Family
    dimensions: int
    max_tokens: int | None
    pooling: PoolingMode
    tag: str = "latest"
    revision: str = "main"

    @property
    def qualified_name(self) -> str:
        return f"{self.name}:{self.tag}"

    @property
    def input_kinds(self) -> tuple[str, ...]:
        """What an input item may be: text, and images (as data URLs) where the family's row
        has an image tower."""
        # imported here: the family table imports the architectures, which import this module
        from domain.families import FAMILIES

        return FAMILIES[self.family].input_kinds

    @property
    def task(self) -> Task:
        """Embedding, or rerank for a cross-encoder: what its family's row says."""
        from domain.families import FAMILIES

        return FAMILIES[self.family].task
