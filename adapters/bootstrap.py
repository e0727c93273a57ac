"""The composition root: the one place that builds adapters and wires them to the application."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Literal

from litestar import Litestar
from platformdirs import user_data_dir

from adapters.engines.numpy_ref import NumpyEngine
from adapters.http.app import create_app
from adapters.http.inventory import Inventory
from adapters.observability import LogFormat, configure_logging
from adapters.stores.hf_hub import HubStore
from adapters.stores.installed_package import InstalledPackageStore
from adapters.tokenizers.by_family import load_tokenizer
from adapters.tokenizers.cl100k import Cl100kDecoder
from application.catalogue import CATALOGUE, Catalogue
from application.embedding import EmbeddingService
from application.lifecycle import ModelRegistry
from application.stores import FirstFound

__all__ = ["Settings", "build_app", "default_home"]

_TRUTHY = {"1", "true", "yes", "on"}


def default_home() -> Path:
    return Path(os.environ.get("EMBEDSERVE_HOME") or user_data_dir("embedserve"))


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    token_ids: Literal["openai", "model"] = "openai"
    truncate: bool = True
    keep_alive_s: float = 300.0
    offline: bool = False
    hf_endpoint: str | None = None
    log_format: LogFormat = "auto"

    @classmethod
    def from_environment(cls, home: Path | None = None) -> Settings:
        """Defaults overridden by HF_HUB_OFFLINE and HF_ENDPOINT, as huggingface_hub reads them."""
        return cls(
            home=home or default_home(),
            offline=os.environ.get("HF_HUB_OFFLINE", "").lower() in _TRUTHY,
            hf_endpoint=os.environ.get("HF_ENDPOINT") or None,
        )


def build_app(settings: Settings) -> Litestar:
    configure_logging(settings.log_format)
    catalogue = Catalogue(CATALOGUE)
    store = FirstFound(
        [
            InstalledPackageStore(),
            HubStore(
                settings.home / "Embeddings",
                endpoint=settings.hf_endpoint,
                offline=settings.offline,
            ),
        ]
    )
    # One inference thread: BLAS already uses every core, and two forward passes at once
    # would only fight over them.
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")
    registry = ModelRegistry(
        store, NumpyEngine(), load_tokenizer, executor, default_keep_alive_s=settings.keep_alive_s
    )
    decoder = Cl100kDecoder() if settings.token_ids == "openai" else None
    service = EmbeddingService(catalogue, registry, decoder)
    return create_app(
        service,
        registry,
        Inventory(catalogue, store),
        version=version("embedserve"),
        truncate=settings.truncate,
    )
