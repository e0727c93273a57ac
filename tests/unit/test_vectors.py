from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from domain.vectors import l2_normalize, truncate_dimensions

_finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)
_matrices = st.integers(1, 6).flatmap(lambda n: arrays(np.float32, (n, 8), elements=_finite))


@given(_matrices)
def test_normalized_rows_have_unit_norm_or_stay_zero(vectors: np.ndarray) -> None:
    """Every row becomes unit length; a row too small to normalise does not turn into NaN."""
    out = l2_normalize(vectors)
    norms = np.linalg.norm(out.astype(np.float64), axis=1)
    tiny = np.linalg.norm(vectors.astype(np.float64), axis=1) < 1e-12
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(norms[~tiny], 1.0, rtol=1e-5)


@given(_matrices, st.integers(1, 8))
def test_dimensions_equal_cut_then_renormalise(vectors: np.ndarray, d: int) -> None:
    """Matryoshka truncation is the prefix of the vector, rescaled to unit length."""
    out = truncate_dimensions(vectors, d)
    assert out.shape == (len(vectors), d)
    prefix = vectors[:, :d].astype(np.float64)
    norms = np.maximum(np.linalg.norm(prefix, axis=1, keepdims=True), 1e-12)
    np.testing.assert_allclose(out, prefix / norms, rtol=1e-5, atol=1e-7)
