"""Post-processing of sentence vectors, after the engine and before the wire."""

from __future__ import annotations

import numpy as np

from domain.ops import Array

__all__ = ["NORM_FLOOR", "l2_normalize", "truncate_dimensions"]

NORM_FLOOR = 1e-12  # torch.nn.functional.normalize and Ollama both floor the norm here


def l2_normalize(vectors: Array) -> Array:
    """Rows to unit length; an all-zero row stays zero instead of dividing by zero."""
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1, keepdims=True)
    unit: Array = (vectors / np.maximum(norms, NORM_FLOOR)).astype(np.float32)
    return unit


def truncate_dimensions(vectors: Array, dimensions: int, *, normalize: bool = True) -> Array:
    """Matryoshka: keep the first `dimensions` components, then re-normalise (unless asked
    not to: a request's `"normalize": false` gets the cut alone)."""
    cut = vectors[:, :dimensions]
    return l2_normalize(cut) if normalize else np.ascontiguousarray(cut)
