"""Small vector helpers the suites share, in plain Python and numpy (no server code)."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["as_matrix", "decode_base64", "max_abs_diff", "min_cosine", "unit_rows"]

Matrix = npt.NDArray[np.float64]


def as_matrix(rows: Sequence[Sequence[float]]) -> Matrix:
    return np.asarray(rows, dtype=np.float64)


def decode_base64(text: str) -> list[float]:
    """OpenAI's base64 embedding: float32, little-endian, standard base64."""
    values: list[float] = np.frombuffer(base64.b64decode(text), dtype="<f4").tolist()
    return values


def unit_rows(m: Matrix) -> Matrix:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    unit: Matrix = m / np.maximum(norms, 1e-12)
    return unit


def max_abs_diff(a: Matrix, b: Matrix) -> float:
    return float(np.abs(a - b).max()) if a.size else 0.0


def min_cosine(a: Matrix, b: Matrix) -> float:
    return float((unit_rows(a) * unit_rows(b)).sum(axis=1).min()) if a.size else 1.0
