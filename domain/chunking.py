"""`truncate: "chunk"`: a text longer than the model's context, embedded whole.

The text's own tokens are cut into overlapping windows, each wrapped in the model's special
tokens as a model-native input of at most max_tokens; the windows' vectors are pooled into one
by a token-weighted mean, then brought to unit length.

Choices, and why:
- Windows are cut from token ids, never characters, so every window fills the context exactly
  and no token is split or lost. Window starts step by (room - overlap); the last window ends at
  the text's end and may be shorter, so every overlap is exactly the one set and every window
  adds at least one token of its own.
- A window's weight is the tokens it holds, special tokens included: the same count `usage`
  reports, and, for a mean-pooling model, what makes the mean of the windows the mean over
  every token position the model was shown.
- The overlap is capped at half a window: past that, each token would be embedded more than
  twice, for little gain in context.
- Families without a context window (word vectors: Word2Vec, Model2Vec, Static) have no
  positions and average token vectors: for them "chunk" embeds the whole text as one row,
  which is what no truncation means.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from domain.families import FAMILIES
from domain.ops import Array
from domain.vectors import l2_normalize

__all__ = ["DEFAULT_OVERLAP", "WINDOWLESS", "effective_overlap", "pool_windows", "window_spans"]

DEFAULT_OVERLAP = 32  # tokens; ~12% of all-MiniLM-L6-v2's 254-token room

# the families FAMILIES marks windowless: no positions, so nothing to overflow or to window
WINDOWLESS = frozenset(family for family, traits in FAMILIES.items() if traits.windowless)


def effective_overlap(room: int, overlap: int) -> int:
    """The overlap used for windows holding `room` text tokens: 0 to half a window."""
    return max(0, min(overlap, room // 2))


def window_spans(length: int, room: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) spans over `length` text tokens, each at most `room` long, consecutive ones
    sharing `effective_overlap(room, overlap)` tokens. One span when the text fits."""
    if room < 1:
        msg = f"a window must hold at least one token, not {room}"
        raise ValueError(msg)
    stride = room - effective_overlap(room, overlap)
    spans = [(0, min(length, room))]
    while spans[-1][1] < length:
        start = spans[-1][0] + stride
        spans.append((start, min(length, start + room)))
    return spans


def pool_windows(vectors: Array, weights: Sequence[int]) -> Array:
    """[W,D] window vectors -> [D]: their mean weighted by `weights`, at unit length."""
    w = np.asarray(weights, dtype=np.float64)
    mean = (vectors.astype(np.float64) * w[:, None]).sum(axis=0) / w.sum()
    pooled: Array = l2_normalize(mean[None, :].astype(np.float32))[0]
    return pooled
