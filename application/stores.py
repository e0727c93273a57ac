"""Several model stores consulted in order, as one."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from domain.errors import ModelNotFound, ModelUnavailable
from domain.models import ModelSpec
from domain.ports import ModelStore, WeightsSize

__all__ = ["FirstFound"]


class FirstFound:
    """A model already present in any store wins; otherwise the last store fetches it.

    Typically: installed packages, then the Hugging Face Hub, which downloads.
    """

    def __init__(self, stores: Sequence[ModelStore]) -> None:
        if not stores:
            msg = "FirstFound needs at least one store"
            raise ValueError(msg)
        self._stores = stores

    def locate(self, spec: ModelSpec) -> Path | None:
        for store in self._stores:
            folder = store.locate(spec)
            if folder is not None:
                return folder
        return None

    def fetch(self, spec: ModelSpec) -> Path | ModelNotFound | ModelUnavailable:
        return self.locate(spec) or self._stores[-1].fetch(spec)

    def held_bytes(self, spec: ModelSpec) -> int | None:
        """The size told by the store that has the model, else by the one that would fetch it;
        None where that store cannot tell (domain.ports.WeightsSize)."""
        store = next((s for s in self._stores if s.locate(spec) is not None), self._stores[-1])
        return store.held_bytes(spec) if isinstance(store, WeightsSize) else None
