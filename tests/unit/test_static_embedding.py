"""The static-embedding forward pass and its load-time folding, on hand-made tables."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.engines.numpy_ref import NumpyOps
from domain.architectures.static_embedding import (
    StaticEmbeddingModel,
    fold_token_weights,
    static_sentence_embedding,
)

OPS = NumpyOps()
TABLE = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]], dtype=np.float32)


def test_folding_gives_each_token_its_mapped_row_times_its_weight() -> None:
    """Row t of the folded table is embeddings[mapping[t]] * weights[t], as model2vec computes."""
    mapping = np.array([2, 0, 2, 1])
    weights = np.array([0.5, 2.0, 1.0, -1.0], dtype=np.float32)
    folded = fold_token_weights(TABLE, weights, mapping)
    expected = np.stack([TABLE[m] * w for m, w in zip(mapping, weights, strict=True)])
    np.testing.assert_array_equal(folded, expected)
    assert folded.dtype == np.float32


def test_folding_without_weights_or_mapping_keeps_the_table_as_float32() -> None:
    """float16 and int8 tables are read as float32 values, unchanged."""
    np.testing.assert_array_equal(fold_token_weights(TABLE.astype(np.float16), None, None), TABLE)
    as_int8 = np.array([[-127, 5], [0, 127]], dtype=np.int8)
    np.testing.assert_array_equal(fold_token_weights(as_int8, None, None), as_int8)


@pytest.mark.parametrize(
    ("weights", "mapping"),
    [(None, np.array([0, 3])), (None, np.array([-1])), (np.ones(2, np.float32), None)],
    ids=["mapping-past-the-table", "negative-mapping", "weights-for-another-vocabulary"],
)
def test_folding_refuses_tensors_that_do_not_fit(
    weights: np.ndarray | None, mapping: np.ndarray | None
) -> None:
    """A mapping outside the table or a weight count other than the token count is refused."""
    with pytest.raises(ValueError, match="token"):
        fold_token_weights(TABLE, weights, mapping)


def test_a_model_needs_a_matrix() -> None:
    """A table that is not [tokens, dimensions] is refused at load time."""
    with pytest.raises(ValueError, match="shape"):
        StaticEmbeddingModel(np.zeros(3, np.float32), normalize=False)


def test_a_text_vector_is_the_mean_of_its_real_tokens() -> None:
    """Padded positions take no part in the mean."""
    model = StaticEmbeddingModel(TABLE, normalize=False)
    ids = np.array([[0, 2, 0], [1, 0, 0]])
    mask = np.array([[1, 1, 1], [1, 0, 0]])
    got = static_sentence_embedding(OPS, ids, mask, model)
    np.testing.assert_allclose(got, [[5 / 3, 4 / 3], [0.0, 2.0]], rtol=1e-6)


def test_normalised_vectors_have_unit_length_and_no_tokens_stays_zero() -> None:
    """With normalize, rows have unit norm; a text with no token is zero, never NaN."""
    model = StaticEmbeddingModel(TABLE, normalize=True)
    ids = np.array([[2, 2], [0, 0]])
    mask = np.array([[1, 1], [0, 0]])
    got = static_sentence_embedding(OPS, ids, mask, model)
    np.testing.assert_allclose(got, [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)
    assert np.isfinite(got).all()
