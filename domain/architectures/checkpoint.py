"""Checkpoint tensors handed out only in the shape a model's config implies."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from domain.ops import Array, Linear, Norm

__all__ = ["CheckpointTensors"]


class CheckpointTensors:
    """Each key is read through `canonical` first, so checkpoint dialects meet in one name."""

    def __init__(
        self,
        raw: Mapping[str, np.ndarray[Any, Any]],
        canonical: Callable[[str], str] = lambda key: key,
    ) -> None:
        self._raw = {canonical(k): v for k, v in raw.items()}

    def has(self, prefix: str) -> bool:
        return any(key.startswith(prefix) for key in self._raw)

    def get(self, key: str, shape: tuple[int, ...]) -> Array:
        if key not in self._raw:
            msg = f"checkpoint has no tensor {key!r}"
            raise ValueError(msg)
        t = self._raw[key]
        if t.shape != shape:
            msg = f"tensor {key!r} has shape {t.shape}, config.json implies {shape}"
            raise ValueError(msg)
        return np.ascontiguousarray(t, dtype=np.float32)

    def linear(self, prefix: str, out: int, inp: int) -> Linear:
        return Linear(self.get(f"{prefix}.weight", (out, inp)), self.get(f"{prefix}.bias", (out,)))

    def projection(self, key: str, out: int, inp: int) -> Linear:
        """A linear layer stored without a bias."""
        return Linear(self.get(key, (out, inp)), np.zeros(out, dtype=np.float32))

    def norm(self, prefix: str, size: int) -> Norm:
        return Norm(self.get(f"{prefix}.weight", (size,)), self.get(f"{prefix}.bias", (size,)))
