"""Fidelity suite: does the server compute what the model defines?

Given `--reference PATH`, a local copy of the model, the client runs the model's own library
(sentence-transformers) on the built-in corpus and compares. Passing means max abs difference
< 1e-4 per component and min cosine > 0.9999 over every text. Without --reference, or without
sentence-transformers installed on the client, the suite is not applicable.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import numpy as np
import pytest

from conformance.corpus import FIDELITY_TEXTS
from conformance.target import Target
from conformance.vectors import as_matrix, max_abs_diff, min_cosine, unit_rows

MAX_ABS_DIFF = 1e-4
MIN_COSINE = 0.9999


@pytest.fixture(scope="module")
def reference_vectors(target: Target) -> np.ndarray:
    if target.reference is None:
        pytest.skip("not applicable: no --reference model folder given")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        pytest.skip("not applicable: sentence-transformers is not installed on this client")
    model: Any = SentenceTransformer(str(target.reference), device="cpu", local_files_only=True)
    return np.asarray(model.encode(FIDELITY_TEXTS, convert_to_numpy=True), dtype=np.float64)


def _record(request: pytest.FixtureRequest, ours: np.ndarray, reference: np.ndarray) -> None:
    diff, cosine = max_abs_diff(ours, reference), min_cosine(ours, reference)
    request.node.user_properties += [("max_abs_diff", diff), ("min_cosine", cosine)]
    assert diff < MAX_ABS_DIFF, f"max abs diff {diff:.2e} >= {MAX_ABS_DIFF:.0e}"
    assert cosine > MIN_COSINE, f"min cosine {cosine:.6f} <= {MIN_COSINE}"


@pytest.mark.dialect("openai")
def test_v1_vectors_equal_the_reference_library(
    http: httpx.Client,
    target: Target,
    reference_vectors: np.ndarray,
    request: pytest.FixtureRequest,
) -> None:
    """/v1/embeddings returns what sentence-transformers computes for the same model."""
    body = {"model": target.model, "input": FIDELITY_TEXTS, "encoding_format": "float"}
    response = http.post("/v1/embeddings", json=body)
    assert response.status_code == 200, response.text[:300]
    data = sorted(response.json()["data"], key=lambda d: d["index"])
    _record(request, as_matrix([d["embedding"] for d in data]), reference_vectors)


@pytest.mark.dialect("ollama")
def test_api_embed_vectors_equal_the_normalised_reference(
    http: httpx.Client,
    target: Target,
    reference_vectors: np.ndarray,
    request: pytest.FixtureRequest,
) -> None:
    """/api/embed returns the reference's vectors at unit length."""
    response = http.post("/api/embed", json={"model": target.model, "input": FIDELITY_TEXTS})
    assert response.status_code == 200, response.text[:300]
    ours = as_matrix(response.json()["embeddings"])
    _record(request, ours, unit_rows(reference_vectors))
