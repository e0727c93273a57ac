"""Pulling and removing models by name, as `ollama pull` and `ollama rm` do.

Two kinds of store hold a model: one that downloads (the Hugging Face Hub, into the home
folder), and stores that only carry models (an installed Python package). A carried model is
already present, so pulling it is instant; and it is not ours to delete, so removing it is refused
with the reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import structlog

from application.catalogue import Catalogue
from application.loading import folder_size
from application.model_lookup import Lookup, ModelLookup, as_lookup
from domain.errors import ModelNotFound, ModelUnavailable, NotRemovable
from domain.models import ModelSpec
from domain.ports import Downloads, ModelStore, OnProgress

__all__ = ["ModelAdmin", "NotRemovable", "Pulled", "Removed", "Unloader"]

log = structlog.get_logger(__name__)


class Unloader(Protocol):
    def unload(self, spec: ModelSpec, *, reason: str = "requested") -> bool:
        """Unloads the model (once its current requests finish); False when it was not loaded."""
        ...


@dataclass(frozen=True, slots=True)
class Pulled:
    spec: ModelSpec
    folder: Path
    carried: bool  # an installed package carries it: nothing was downloaded


@dataclass(frozen=True, slots=True)
class Removed:
    spec: ModelSpec
    unloaded: bool  # it was loaded, and is not any more


class ModelAdmin:
    """`pull` and `remove` over a downloading store and the stores that carry models."""

    def __init__(
        self,
        catalogue: Catalogue | ModelLookup,
        downloads: Downloads,
        carried: Sequence[ModelStore] = (),
        loaded: Unloader | None = None,
    ) -> None:
        self._names = as_lookup(catalogue)
        self._downloads = downloads
        self._carried = carried
        self._loaded = loaded

    def resolve(self, name: str) -> Lookup:
        """The model `name` stands for; a repo id is described from the Hub if it is not on
        disk. Blocks: callers on an event loop use a thread."""
        found = self._names.find_blocking(name)
        if isinstance(found, ModelNotFound) and not found.reason:
            return ModelNotFound(name, "it is not in the catalogue")
        return found

    def resolve_present(self, name: str) -> ModelSpec | ModelNotFound:
        """As `resolve`, but a repo id is looked for on disk alone: what `delete` needs."""
        return self._names.find_local(name)

    def carrier(self, spec: ModelSpec) -> Path | None:
        """The folder of an installed package that carries the model, if one does."""
        return next((f for s in self._carried if (f := s.locate(spec)) is not None), None)

    def present(self, spec: ModelSpec) -> Path | None:
        """Where the model is on disk, carried or downloaded; None if it is in neither."""
        return self.carrier(spec) or self._downloads.locate(spec)

    def stored(self) -> list[tuple[ModelSpec, int | None]]:
        """Every listed model (the catalogue's, and repo-id models on disk) with the bytes its
        folder holds; None where it is not on disk. Walks folders: callers on an event loop use
        a thread."""
        stored: list[tuple[ModelSpec, int | None]] = []
        for spec in self._names.listed():
            folder = self.present(spec)
            stored.append((spec, None if folder is None else folder_size(folder)))
        return stored

    def pull(
        self, spec: ModelSpec, progress: OnProgress | None = None
    ) -> Pulled | ModelNotFound | ModelUnavailable:
        """Blocks until the model is on disk: callers on an event loop use a thread."""
        carried = self.carrier(spec)
        if carried is not None:
            return Pulled(spec, carried, carried=True)
        folder = self._downloads.fetch(spec, progress)
        if not isinstance(folder, Path):
            return folder
        log.info("model_pulled", model=spec.qualified_name)
        return Pulled(spec, folder, carried=False)

    def refusal(self, spec: ModelSpec, name: str) -> NotRemovable | ModelNotFound | None:
        """Why `remove` would fail, found without touching anything."""
        carried = self.carrier(spec)
        if carried is not None:
            return NotRemovable(name, carried)
        if self._downloads.locate(spec) is None:
            return ModelNotFound(name, "it is not downloaded")
        return None

    def remove(self, spec: ModelSpec, name: str) -> Removed | NotRemovable | ModelNotFound:
        """Deletes the model's files; a running server's copy in memory is `delete`'s business."""
        refused = self.refusal(spec, name)
        if refused is not None:
            return refused
        if not self._downloads.remove(spec):  # another process removed it meanwhile
            return ModelNotFound(name, "it is not downloaded")
        self._names.forget(spec)
        log.info("model_removed", model=spec.qualified_name)
        return Removed(spec, unloaded=False)

    async def delete(self, spec: ModelSpec, name: str) -> Removed | NotRemovable | ModelNotFound:
        """Unloads the model (every reading of its folder), then deletes its files."""
        refused = self.refusal(spec, name)
        if refused is not None:
            return refused
        unloaded = False
        if self._loaded is not None:
            # M2V_base_output is read two ways from one folder
            for other in {*self._names.catalogue.specs, spec}:
                if other.repo_id == spec.repo_id:
                    unloaded = self._loaded.unload(other, reason="deleted") or unloaded
        removed = await asyncio.to_thread(self.remove, spec, name)
        if isinstance(removed, Removed):
            return Removed(spec, unloaded=unloaded)
        return removed
