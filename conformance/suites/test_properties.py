"""Property suite: invariants any faithful embeddings server keeps, checked with hypothesis.

Examples are few and short (each one is an HTTP round trip); hypothesis is derandomised, so a
run is repeatable.
"""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conformance.target import Target
from conformance.vectors import as_matrix, decode_base64, max_abs_diff, unit_rows

TOLERANCE = 1e-5  # per component, between vectors of the same text
_SETTINGS = settings(
    max_examples=8,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each step is an HTTP call
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_texts = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40
).filter(str.strip)
_batches = st.lists(_texts, min_size=1, max_size=6)


def _openai(http: httpx.Client, target: Target, texts: list[str], **extra: object) -> np.ndarray:
    body = {"model": target.model, "input": texts, "encoding_format": "float", **extra}
    response = http.post("/v1/embeddings", json=body)
    assert response.status_code == 200, response.text
    data = sorted(response.json()["data"], key=lambda d: d["index"])
    return as_matrix([d["embedding"] for d in data])


def _ollama(http: httpx.Client, target: Target, texts: list[str]) -> np.ndarray:
    response = http.post("/api/embed", json={"model": target.model, "input": texts})
    assert response.status_code == 200, response.text
    return as_matrix(response.json()["embeddings"])


@pytest.mark.dialect("openai")
@_SETTINGS
@given(text=_texts, others=_batches, position=st.integers(0, 6))
def test_a_text_embeds_the_same_alone_and_in_any_batch(
    http: httpx.Client, target: Target, text: str, others: list[str], position: int
) -> None:
    """Batching and padding never leak between inputs: alone == inside a batch, within 1e-5."""
    batch = [*others[:position], text, *others[position:]]
    alone = _openai(http, target, [text])
    inside = _openai(http, target, batch)[min(position, len(others))]
    assert max_abs_diff(alone, inside[None, :]) < TOLERANCE


@pytest.mark.dialect("openai")
@_SETTINGS
@given(batch=_batches)
def test_rows_come_back_in_input_order(
    http: httpx.Client, target: Target, batch: list[str]
) -> None:
    """Row i of a batch is the embedding of input i (index and position both)."""
    response = http.post(
        "/v1/embeddings", json={"model": target.model, "input": batch, "encoding_format": "float"}
    )
    data = response.json()["data"]
    assert [d["index"] for d in data] == list(range(len(batch)))
    together = as_matrix([d["embedding"] for d in data])
    for i, text in enumerate(batch):
        assert max_abs_diff(_openai(http, target, [text]), together[i : i + 1]) < TOLERANCE


@pytest.mark.dialect("ollama")
@_SETTINGS
@given(batch=_batches)
def test_api_embed_rows_have_unit_norm(
    http: httpx.Client, target: Target, batch: list[str]
) -> None:
    """/api/embed answers L2-normalised vectors, whatever the model."""
    norms = np.linalg.norm(_ollama(http, target, batch), axis=1)
    assert np.all(np.abs(norms - 1.0) < TOLERANCE)


@pytest.mark.dialect("openai")
@_SETTINGS
@given(text=_texts, fraction=st.floats(0.05, 0.95))
def test_dimensions_is_the_renormalised_prefix(
    http: httpx.Client, target: Target, text: str, fraction: float
) -> None:
    """`dimensions=d` equals the first d components of the full vector, rescaled to unit length."""
    full = _openai(http, target, [text])
    d = max(1, int(full.shape[1] * fraction))
    cut = _openai(http, target, [text], dimensions=d)
    assert cut.shape == (1, d)
    assert max_abs_diff(cut, unit_rows(full[:, :d])) < TOLERANCE


@pytest.mark.dialect("openai")
@_SETTINGS
@given(batch=_batches)
def test_base64_decodes_to_the_float_answer(
    http: httpx.Client, target: Target, batch: list[str]
) -> None:
    """base64 carries the same float32 values as encoding_format=float, bit for bit."""
    body = {"model": target.model, "input": batch}
    floats = http.post("/v1/embeddings", json=body | {"encoding_format": "float"}).json()["data"]
    b64 = http.post("/v1/embeddings", json=body | {"encoding_format": "base64"}).json()["data"]
    for f, b in zip(floats, b64, strict=True):
        expected = np.asarray(f["embedding"], dtype=np.float32).tolist()
        assert decode_base64(b["embedding"]) == expected


@_SETTINGS
@given(batch=_batches)
def test_both_dialects_agree(http: httpx.Client, target: Target, batch: list[str]) -> None:
    """The same text gives the same direction on /v1/embeddings and on /api/embed."""
    if set(target.dialects) != {"openai", "ollama"}:
        pytest.skip("not applicable: needs both dialects")
    v1 = unit_rows(_openai(http, target, batch))
    assert max_abs_diff(v1, _ollama(http, target, batch)) < TOLERANCE


@pytest.mark.dialect("openai")
@_SETTINGS
@given(batch=_batches)
def test_repeated_calls_answer_identically(
    http: httpx.Client, target: Target, batch: list[str]
) -> None:
    """Embedding is deterministic: the same request twice gives the same numbers."""
    assert max_abs_diff(_openai(http, target, batch), _openai(http, target, batch)) == 0.0
