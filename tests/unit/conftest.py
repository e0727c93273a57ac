from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from application.catalogue import CATALOGUE, Catalogue
from application.embedding import EmbeddingService
from application.lifecycle import ModelRegistry
from tests.fakes import FakeDecoder, FakeEngine, FakeStore, fake_tokenizer_loader

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path) -> FakeStore:
    return FakeStore({MINILM: tmp_path})


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def registry(store: FakeStore, engine: FakeEngine, clock: Clock) -> ModelRegistry:
    executor = ThreadPoolExecutor(max_workers=1)
    return ModelRegistry(store, engine, fake_tokenizer_loader, executor, clock=clock)


@pytest.fixture
def service(registry: ModelRegistry) -> EmbeddingService:
    return EmbeddingService(Catalogue(CATALOGUE), registry, FakeDecoder())
