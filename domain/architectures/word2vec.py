"""Word vectors (word2vec, GloVe) as a sentence encoder: the mean of the known words' vectors.

The vocabulary lives with the word-level tokenizer, which hands over the row of each known word
and drops the rest, so the forward pass is a lookup and a masked mean, one op (`embedding_bag`).
A text with no known word has an all-zero mask row, and the bag gives it the zero vector (its
sum over no rows is 0, divided by a floored count), which normalisation keeps at zero.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.ops import Array, Ops, T

__all__ = ["Word2VecModel", "word2vec_sentence_embedding"]


@dataclass(frozen=True, slots=True)
class Word2VecModel:
    vectors: Array  # [V,H], row i = the vector of word i

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or not all(self.vectors.shape):  # noqa: PLR2004 - a matrix
            msg = f"word vectors have shape {self.vectors.shape}, not [words, dimensions]"
            raise ValueError(msg)

    @property
    def dimensions(self) -> int:
        return int(self.vectors.shape[1])


def word2vec_sentence_embedding(ops: Ops[T], ids: T, mask: T, model: Word2VecModel) -> T:
    return ops.embedding_bag(model.vectors, ids, mask)  # [B,T] -> [B,H]; no known word -> zeros
