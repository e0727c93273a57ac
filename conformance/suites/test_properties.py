"""Property suite: invariants any faithful embeddings server keeps, checked with hypothesis.

Each example is an HTTP round trip, so examples are few (12 per property) and texts short (up to
40 characters of any script, never blank: OpenAI refuses empty inputs, the robustness suite
sends those). hypothesis is derandomised and does not shrink, so a run is repeatable and
bounded; a failure reports the example as found, with the last HTTP exchanges.

Vectors of the same text are compared at unit length, component by component, within
TOLERANCE (1e-5): /v1/embeddings returns the model's own scale, which need not be 1, and
float32 arithmetic that differs only by batch composition stays orders of magnitude below it.
Unit norm is required of /api/embed always (Ollama normalises every vector), and of
/v1/embeddings only when the model is a normalised one, which the check finds out by probing
three fixed texts: OpenAI's own models are normalised, but the API does not promise it, and a
server faithful to a model without a Normalize layer returns what the model computes.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from conformance.target import Target
from conformance.vectors import Matrix, as_matrix, decode_base64, max_abs_diff, unit_rows

TOLERANCE = 1e-5
_PROBES = ["The quick brown fox jumps over the lazy dog.", "a", "Hello, world!"]
_SETTINGS = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    # no shrinking: each step is an HTTP round trip; the failing example is reported as found
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # the HTTP client is per check, shared by examples
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
_texts = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40).filter(str.strip)
_batches = st.lists(_texts, min_size=2, max_size=8, unique=True)
_fractions = st.floats(0.0, 1.0, exclude_max=True)

Dialect = Literal["openai", "ollama"]
_EACH_DIALECT = [
    pytest.param("openai", marks=pytest.mark.dialect("openai"), id="openai"),
    pytest.param("ollama", marks=pytest.mark.dialect("ollama"), id="ollama"),
]


def _post(http: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = http.post(path, json=body)
    assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:300]}"
    answer: dict[str, Any] = response.json()
    return answer


def _v1_data(http: httpx.Client, target: Target, texts: list[str], **extra: Any) -> list[Any]:
    body = {"model": target.model, "input": texts, "encoding_format": "float", **extra}
    data: list[Any] = _post(http, "/v1/embeddings", body)["data"]
    return data


def _embed(
    http: httpx.Client, target: Target, dialect: Dialect, texts: list[str], **extra: Any
) -> Matrix:
    """The rows exactly as the server lists them (a client reads them in that order)."""
    if dialect == "openai":
        return as_matrix([d["embedding"] for d in _v1_data(http, target, texts, **extra)])
    body = {"model": target.model, "input": texts, **extra}
    return as_matrix(_post(http, "/api/embed", body)["embeddings"])


def _unit_norm_errors(rows: Matrix) -> float:
    return float(np.abs(np.linalg.norm(rows, axis=1) - 1.0).max())


@st.composite
def _placed(draw: st.DrawFn) -> tuple[list[str], int]:
    """A batch and a position in it."""
    batch = draw(st.lists(_texts, min_size=2, max_size=8))
    return batch, draw(st.integers(0, len(batch) - 1))


@pytest.mark.parametrize("dialect", _EACH_DIALECT)
@_SETTINGS
@given(placed=_placed())
def test_a_text_embeds_the_same_alone_and_in_any_batch(
    http: httpx.Client, target: Target, dialect: Dialect, placed: tuple[list[str], int]
) -> None:
    """Batching and padding never leak between inputs: a text's vector alone equals its vector
    at any position of any batch, within 1e-5 per component at unit length."""
    batch, at = placed
    alone = unit_rows(_embed(http, target, dialect, [batch[at]]))
    inside = unit_rows(_embed(http, target, dialect, batch))
    assert inside.shape[0] == len(batch), f"{len(batch)} inputs, {inside.shape[0]} rows"
    diff = max_abs_diff(alone, inside[at : at + 1])
    assert diff < TOLERANCE, f"input {at}: alone and in the batch differ by up to {diff:.3g}"


@pytest.mark.parametrize("dialect", _EACH_DIALECT)
@_SETTINGS
@given(batch=_batches)
def test_rows_come_back_in_input_order(
    http: httpx.Client, target: Target, dialect: Dialect, batch: list[str]
) -> None:
    """Row i is the embedding of input i (and, on /v1, carries index i): it equals input i
    embedded alone."""
    if dialect == "openai":
        data = _v1_data(http, target, batch)
        assert [d["index"] for d in data] == list(range(len(batch)))
        together = as_matrix([d["embedding"] for d in data])
    else:
        together = _embed(http, target, dialect, batch)
    assert together.shape[0] == len(batch), f"{len(batch)} inputs, {together.shape[0]} rows"
    for i, text in enumerate(batch):
        alone = unit_rows(_embed(http, target, dialect, [text]))
        diff = max_abs_diff(alone, unit_rows(together[i : i + 1]))
        assert diff < TOLERANCE, f"row {i} is not input {i}'s vector (off by up to {diff:.3g})"


@pytest.mark.dialect("ollama")
@_SETTINGS
@given(batch=_batches)
def test_api_embed_rows_have_unit_norm(
    http: httpx.Client, target: Target, batch: list[str]
) -> None:
    """/api/embed answers L2-normalised vectors, whatever the model."""
    off = _unit_norm_errors(_embed(http, target, "ollama", batch))
    assert off < TOLERANCE, f"a norm is off 1 by {off:.3g}"


@pytest.fixture
def normalised_model(http: httpx.Client, target: Target) -> None:
    probe = _unit_norm_errors(_embed(http, target, "openai", _PROBES))
    if probe >= TOLERANCE:
        pytest.skip(
            f"not applicable: the model's /v1 vectors are not unit length (norm off by {probe:.2g}"
            " on the probe texts), and OpenAI's API does not require it"
        )


@pytest.mark.dialect("openai")
@pytest.mark.usefixtures("normalised_model")
@_SETTINGS
@given(batch=_batches)
def test_v1_rows_have_unit_norm_for_a_normalised_model(
    http: httpx.Client, target: Target, batch: list[str]
) -> None:
    """When the probe texts come back at unit length, so does every /v1/embeddings vector:
    a normalised model is normalised in every batch."""
    off = _unit_norm_errors(_embed(http, target, "openai", batch))
    assert off < TOLERANCE, f"a norm is off 1 by {off:.3g}"


@pytest.mark.parametrize("dialect", _EACH_DIALECT)
@_SETTINGS
@given(text=_texts, fraction=_fractions)
def test_dimensions_is_the_renormalised_prefix(
    http: httpx.Client, target: Target, dialect: Dialect, text: str, fraction: float
) -> None:
    """`dimensions=d` (0 < d < the model's size) answers the first d components of the full
    vector, rescaled to unit length."""
    full = _embed(http, target, dialect, [text])
    d = 1 + int(fraction * (full.shape[1] - 1))
    cut = _embed(http, target, dialect, [text], dimensions=d)
    assert cut.shape == (1, d), f"asked for {d} dimensions, got {cut.shape[1]}"
    diff = max_abs_diff(cut, unit_rows(full[:, :d]))
    assert diff < TOLERANCE, f"dimensions={d} differs from the renormalised prefix by {diff:.3g}"


@pytest.mark.dialect("openai")
@_SETTINGS
@given(batch=_batches)
def test_base64_decodes_to_the_float_answer(
    http: httpx.Client, target: Target, batch: list[str]
) -> None:
    """encoding_format=base64 carries little-endian float32 values equal, bit for bit, to the
    float answer read as float32."""
    floats = _v1_data(http, target, batch)
    packed = _v1_data(http, target, batch, encoding_format="base64")
    assert len(packed) == len(floats) == len(batch)
    for f, b in zip(floats, packed, strict=True):
        expected = np.asarray(f["embedding"], dtype=np.float32)
        decoded = np.asarray(decode_base64(b["embedding"]), dtype=np.float32)
        assert decoded.shape == expected.shape
        assert decoded.tobytes() == expected.tobytes(), f"index {b['index']} differs"


@_SETTINGS
@given(batch=_batches)
def test_both_dialects_agree(http: httpx.Client, target: Target, batch: list[str]) -> None:
    """The same texts give the same vectors on /api/embed as on /v1/embeddings, once the /v1
    vectors are brought to unit length."""
    if set(target.dialects) != {"openai", "ollama"}:
        pytest.skip("not applicable: needs both dialects selected")
    v1 = unit_rows(_embed(http, target, "openai", batch))
    diff = max_abs_diff(v1, _embed(http, target, "ollama", batch))
    assert diff < TOLERANCE, f"/v1 (at unit length) and /api/embed differ by up to {diff:.3g}"


@pytest.mark.parametrize("dialect", _EACH_DIALECT)
@_SETTINGS
@given(batch=_batches)
def test_repeated_calls_answer_the_same(
    http: httpx.Client, target: Target, dialect: Dialect, batch: list[str]
) -> None:
    """The same request twice gives the same vectors (within 1e-5 at unit length: a GPU may
    sum in another order; random or stateful inference is caught)."""
    first = unit_rows(_embed(http, target, dialect, batch))
    second = unit_rows(_embed(http, target, dialect, batch))
    diff = max_abs_diff(first, second)
    assert diff < TOLERANCE, f"the second answer differs from the first by up to {diff:.3g}"
