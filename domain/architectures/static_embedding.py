"""Static token embeddings (Model2Vec, sentence-transformers StaticEmbedding) as a sentence encoder.

There is no network: a text's vector is the mean of its tokens' rows, normalised when the model
says so. Both families are this one forward pass; they differ only in their files and in how a
text becomes token ids (which the tokenizer adapter reads as data).

Model2Vec may scale each token's row by a per-token weight and point several tokens at one
shared row (`weights` and `mapping`, written by its vocabulary quantisation). model2vec looks
the row up, then multiplies by the weight, per token; sentence-transformers folds both into one
row per token id when it loads such a folder. The products are the same float32 numbers either
way, so they are folded here once at load time and the forward pass stays a plain lookup.

A text with no token (empty, or only unknown tokens in Model2Vec) has an all-zero mask row: the
mean pool gives it the zero vector, and normalisation keeps it at zero, as both references do
(model2vec returns its zero-initialised row; an empty EmbeddingBag is zero).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from domain.models import PoolingMode
from domain.ops import Array, Ops, T
from domain.sentence_head import NORMALIZE, SentenceHead, sentence_vector

__all__ = ["StaticEmbeddingModel", "fold_token_weights", "static_sentence_embedding"]


@dataclass(frozen=True, slots=True)
class StaticEmbeddingModel:
    embedding: Array  # [V,H], row t = token t's vector, weights and mapping already folded in
    normalize: bool

    def __post_init__(self) -> None:
        if self.embedding.ndim != 2 or not all(self.embedding.shape):  # noqa: PLR2004 - a matrix
            msg = f"the embedding table has shape {self.embedding.shape}, not [tokens, dimensions]"
            raise ValueError(msg)

    @property
    def dimensions(self) -> int:
        return int(self.embedding.shape[1])

    @property
    def head(self) -> SentenceHead:
        return SentenceHead((PoolingMode.MEAN,), (NORMALIZE,) if self.normalize else ())


def fold_token_weights(
    embeddings: np.ndarray, weights: np.ndarray | None, mapping: np.ndarray | None
) -> Array:
    """One float32 row per token id: embeddings[mapping[t]] * weights[t] (each part optional).

    float16 and int8 tables become float32 here; model2vec averages those in their own dtype
    (float16) or as plain integers (int8, without a scale), so int8 matches it exactly and
    float16 to float16 precision.
    """
    table = np.asarray(embeddings).astype(np.float32)  # [R,H]
    if table.ndim != 2:  # noqa: PLR2004 - a matrix
        msg = f"the embedding table has shape {table.shape}, not [rows, dimensions]"
        raise ValueError(msg)
    if mapping is not None:
        rows = np.asarray(mapping).astype(np.int64)  # [V]
        if rows.ndim != 1 or (rows.size and not 0 <= rows.min() <= rows.max() < len(table)):
            msg = f"the token mapping does not index the {len(table)} embedding rows"
            raise ValueError(msg)
        table = table[rows]  # [V,H]
    if weights is not None:
        scale = np.asarray(weights).astype(np.float32)  # [V]
        if scale.shape != (len(table),):
            msg = f"{scale.shape} token weights for {len(table)} tokens"
            raise ValueError(msg)
        table = table * scale[:, None]
    return np.ascontiguousarray(table)


def static_sentence_embedding(ops: Ops[T], ids: T, mask: T, model: StaticEmbeddingModel) -> T:
    x = ops.embedding(model.embedding, ids)  # [B,T] -> [B,T,H]
    return sentence_vector(ops, x, mask, model.head)  # mean over real tokens, [B,H]
