"""What turns token states into one sentence vector: pooling, then optional normalisation.

The head is sentence-transformers' modules.json pipeline after the Transformer module.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.models import PoolingMode
from domain.ops import Ops, T

__all__ = ["SentenceHead", "sentence_vector"]


@dataclass(frozen=True, slots=True)
class SentenceHead:
    pooling: tuple[PoolingMode, ...]  # several modes concatenate, in this order
    normalize: bool


def sentence_vector(ops: Ops[T], hidden: T, mask: T, head: SentenceHead) -> T:
    pooled = [ops.pool(hidden, mask, mode) for mode in head.pooling]  # each [B,H]
    x = pooled[0] if len(pooled) == 1 else ops.concat(pooled)
    return ops.l2_normalize(x) if head.normalize else x
