"""Rotary position embedding's angles, computed once here so every engine rotates alike.

transformers builds them in float32: inv_freq = 1 / base^(2i/dims), then position x inv_freq,
then cos and sin of that. Doing the same steps in float32 keeps long positions (8,192) as close
to the reference as the float32 product allows.
"""

from __future__ import annotations

import numpy as np

from domain.ops import Array

__all__ = ["rotary_tables"]


def rotary_tables(base: float, dims: int, length: int) -> tuple[Array, Array]:
    """cos and sin [length, dims/2] for positions 0..length-1 and the first dims of a head."""
    if dims % 2:
        msg = f"rotary dims must be even, got {dims}"
        raise ValueError(msg)
    exponents = np.arange(0, dims, 2, dtype=np.int64).astype(np.float32) / np.float32(dims)
    inv_freq = np.float32(1.0) / np.power(np.float32(base), exponents, dtype=np.float32)
    angles = np.arange(length, dtype=np.float32)[:, None] * inv_freq[None, :]  # [P, dims/2]
    return np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)
