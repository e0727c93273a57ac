"""truncate "chunk": windows over token ids, pooled by a token-weighted mean (domain/chunking.py),
and the pipeline that embeds them (application/embedding.py) against the fakes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from application.catalogue import CATALOGUE, Catalogue
from application.embedding import EmbeddingService
from application.lifecycle import ModelRegistry
from domain.chunking import effective_overlap, pool_windows, window_spans
from domain.requests import EmbeddingRequest, EmbeddingResult, Normalization, TokenIds, Truncation
from domain.vectors import l2_normalize
from tests.fakes import BOS, EOS, FakeDecoder, FakeEngine

# FakeTokenizer: max_tokens 8, BOS and EOS around the text, so a window holds 6 text tokens;
# one token per word, its id the word's length


def _ok(result: object) -> EmbeddingResult:
    assert isinstance(result, EmbeddingResult), result
    return result


@given(st.integers(0, 2000), st.integers(1, 300), st.integers(0, 400))
def test_windows_cover_every_token_in_order(length: int, room: int, overlap: int) -> None:
    """Spans start at 0, end at the text's end, never leave a gap and never exceed the room."""
    spans = window_spans(length, room, overlap)
    assert spans[0][0] == 0
    assert spans[-1][1] == length
    assert all(0 < b - a <= room or length == 0 for a, b in spans)
    assert all(b2 > b1 and a2 <= b1 for (_, b1), (a2, b2) in itertools.pairwise(spans))


@given(st.integers(0, 2000), st.integers(1, 300), st.integers(0, 400))
def test_consecutive_windows_share_exactly_the_overlap(
    length: int, room: int, overlap: int
) -> None:
    """Each window starts `overlap` tokens (capped at half a window) before its previous ends."""
    spans = window_spans(length, room, overlap)
    shared = effective_overlap(room, overlap)
    assert shared <= room // 2
    assert all(b1 - a2 == shared for (_, b1), (a2, _) in itertools.pairwise(spans))


@given(st.integers(0, 2000), st.integers(1, 300))
def test_a_text_that_fits_is_one_window(length: int, room: int) -> None:
    """One span, the whole text, exactly when the text fits the room."""
    assert (window_spans(length, room, 3) == [(0, length)]) == (length <= room)


def test_windows_of_a_known_case() -> None:
    """10 tokens, windows of 4 sharing 1: starts step by 3, and the last window is short."""
    assert window_spans(10, 4, 1) == [(0, 4), (3, 7), (6, 10)]
    assert window_spans(11, 4, 1) == [(0, 4), (3, 7), (6, 10), (9, 11)]


def test_a_window_must_hold_a_token() -> None:
    """A room of 0 is a bug in the caller, not a request to embed nothing."""
    with pytest.raises(ValueError, match="at least one token"):
        window_spans(5, 0, 0)


_VECTORS = arrays(
    np.float32,
    st.tuples(st.integers(1, 6), st.integers(1, 8)),
    elements=st.floats(-10, 10, width=32),
)


@given(_VECTORS, st.data())
def test_pooling_is_the_normalised_token_weighted_mean(
    vectors: np.ndarray, data: st.DataObject
) -> None:
    """Weights count: a window of k tokens counts as k copies of its vector, then unit length."""
    weights = data.draw(st.lists(st.integers(1, 50), min_size=len(vectors), max_size=len(vectors)))
    repeated = np.repeat(vectors.astype(np.float64), weights, axis=0).mean(axis=0)
    expected = l2_normalize(repeated[None, :].astype(np.float32))[0]
    np.testing.assert_allclose(pool_windows(vectors, weights), expected, atol=1e-5)


def test_pooled_vector_has_unit_length() -> None:
    """Whatever the windows' norms, the input's one vector is a unit vector."""
    pooled = pool_windows(np.array([[3, 0], [0, 40]], dtype=np.float32), [254, 10])
    assert np.linalg.norm(pooled) == pytest.approx(1.0, abs=1e-6)


def test_truncation_reads_the_wire_field() -> None:
    """Ollama's flag: true cuts, false refuses; and embedserve's "chunk"."""
    assert Truncation.of(True) is Truncation.CUT  # noqa: FBT003 - the flag under test
    assert Truncation.of(False) is Truncation.REFUSE  # noqa: FBT003 - the flag under test
    assert Truncation.of("chunk") is Truncation.CHUNK


# --- the pipeline, against the fakes: FakeEncoder's row is [sum of ids, tokens, 3, 4] ---------


def _service(registry: ModelRegistry, overlap: int) -> EmbeddingService:
    return EmbeddingService(Catalogue(CATALOGUE), registry, FakeDecoder(), chunk_overlap=overlap)


@pytest.fixture
def overlap_3(registry: ModelRegistry) -> EmbeddingService:
    return _service(registry, 3)


@pytest.fixture
def overlap_0(registry: ModelRegistry) -> EmbeddingService:
    return _service(registry, 0)


async def test_a_long_input_is_embedded_as_windows_of_the_whole_text(
    overlap_3: EmbeddingService, engine: FakeEngine
) -> None:
    """Ten one-letter words, windows of 6 sharing 3: [0,6) [3,9) [6,10); three rows of the model."""
    chunk = EmbeddingRequest("all-minilm", ["a " * 10], truncate=Truncation.CHUNK)
    result = _ok(await overlap_3.embed(chunk))
    rows = [(BOS + 6 + EOS, 8), (BOS + 6 + EOS, 8), (BOS + 4 + EOS, 6)]
    windows = np.array([[s, n, 3, 4] for s, n in rows], dtype=np.float32)
    expected = pool_windows(windows, [8, 8, 6])
    np.testing.assert_allclose(result.vectors[0], expected, atol=1e-6)
    assert engine.encoder.batches == [(3, 8)]  # the windows ran as rows of one forward pass


async def test_usage_counts_every_windows_tokens(overlap_3: EmbeddingService) -> None:
    """Special tokens of every window included: what the model was shown."""
    request = EmbeddingRequest("all-minilm", ["a " * 10], truncate=Truncation.CHUNK)
    result = _ok(await overlap_3.embed(request))
    assert result.token_counts == (8 + 8 + 6,)


async def test_an_input_that_fits_is_embedded_as_without_chunking(
    service: EmbeddingService,
) -> None:
    """Bit for bit the vector and count of truncate=true, and not brought to unit length."""
    texts = ["a bb ccc", "", "dddd e"]
    cut = _ok(await service.embed(EmbeddingRequest("all-minilm", texts)))
    chunked = _ok(
        await service.embed(EmbeddingRequest("all-minilm", texts, truncate=Truncation.CHUNK))
    )
    assert cut.vectors.tobytes() == chunked.vectors.tobytes()
    assert cut.token_counts == chunked.token_counts


async def test_a_mixed_batch_keeps_input_order(overlap_0: EmbeddingService) -> None:
    """Short inputs keep their own vectors, in place, around the pooled long one."""
    texts = ["bb", "a " * 12, "ccc", "a " * 7]
    request = EmbeddingRequest("all-minilm", texts, truncate=Truncation.CHUNK)
    result = _ok(await overlap_0.embed(request))
    assert result.vectors[0].tolist() == [BOS + 2 + EOS, 3, 3, 4]
    assert result.vectors[2].tolist() == [BOS + 3 + EOS, 3, 3, 4]
    window = np.array([[BOS + 6 + EOS, 8, 3, 4]], dtype=np.float32)
    np.testing.assert_allclose(
        result.vectors[1], pool_windows(np.repeat(window, 2, axis=0), [8, 8])
    )
    last = np.array([[BOS + 6 + EOS, 8, 3, 4], [BOS + 1 + EOS, 3, 3, 4]], dtype=np.float32)
    np.testing.assert_allclose(result.vectors[3], pool_windows(last, [8, 3]), atol=1e-6)
    assert result.token_counts == (3, 16, 3, 11)


async def test_dimensions_cut_the_pooled_vector_then_renormalise(
    overlap_0: EmbeddingService,
) -> None:
    """Pool at full size, keep the first `dimensions`, back to unit length: not pool the cuts."""
    text = ["a " * 7]
    full = _ok(
        await overlap_0.embed(EmbeddingRequest("all-minilm", text, truncate=Truncation.CHUNK))
    )
    cut = _ok(
        await overlap_0.embed(
            EmbeddingRequest(
                "all-minilm",
                text,
                dimensions=2,
                truncate=Truncation.CHUNK,
                normalization=Normalization.ALWAYS,
            )
        )
    )
    np.testing.assert_allclose(cut.vectors, l2_normalize(full.vectors[:, :2]), atol=1e-6)


async def test_always_normalised_requests_get_the_pooled_unit_vector(
    service: EmbeddingService,
) -> None:
    """Ollama's normalisation leaves a pooled vector as it is: already unit length."""
    text = ["a " * 9]
    model = _ok(
        await service.embed(EmbeddingRequest("all-minilm", text, truncate=Truncation.CHUNK))
    )
    ollama = _ok(
        await service.embed(
            EmbeddingRequest(
                "all-minilm", text, truncate=Truncation.CHUNK, normalization=Normalization.ALWAYS
            )
        )
    )
    np.testing.assert_allclose(model.vectors, ollama.vectors, atol=1e-7)
    assert np.linalg.norm(model.vectors[0]) == pytest.approx(1.0, abs=1e-6)


async def test_token_id_inputs_are_chunked_as_their_decoded_text(
    overlap_0: EmbeddingService,
) -> None:
    """OpenAI token arrays are decoded, re-tokenized whole, and windowed like text."""
    ids = TokenIds((1,) * 7)  # seven one-letter words once decoded
    by_ids = _ok(
        await overlap_0.embed(EmbeddingRequest("all-minilm", [ids], truncate=Truncation.CHUNK))
    )
    by_text = _ok(
        await overlap_0.embed(EmbeddingRequest("all-minilm", ["x " * 7], truncate=Truncation.CHUNK))
    )
    assert by_ids.token_counts == by_text.token_counts == (8 + 3,)
    assert by_ids.vectors.tobytes() == by_text.vectors.tobytes()


async def test_own_vocabulary_token_ids_are_windowed_as_given(registry: ModelRegistry) -> None:
    """Without a decoder, ids are the model's own: cut into windows without re-tokenizing."""
    own = EmbeddingService(Catalogue(CATALOGUE), registry, None, chunk_overlap=0)
    result = _ok(
        await own.embed(
            EmbeddingRequest("all-minilm", [TokenIds((5,) * 8)], truncate=Truncation.CHUNK)
        )
    )
    windows = np.array([[BOS + 30 + EOS, 8, 3, 4], [BOS + 10 + EOS, 4, 3, 4]], dtype=np.float32)
    np.testing.assert_allclose(result.vectors[0], pool_windows(windows, [8, 4]), atol=1e-6)


async def test_refusing_still_refuses_and_cutting_still_cuts(service: EmbeddingService) -> None:
    """The two older modes are untouched by the third."""
    long = ["a " * 20]
    refused = await service.embed(EmbeddingRequest("all-minilm", long, truncate=Truncation.REFUSE))
    assert not isinstance(refused, EmbeddingResult)
    cut = _ok(await service.embed(EmbeddingRequest("all-minilm", long, truncate=Truncation.CUT)))
    assert cut.token_counts == (8,)
