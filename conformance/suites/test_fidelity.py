"""Fidelity suite: does the server compute what the model defines?

Given `--reference PATH`, a local copy of the model the server serves as `--model`, the client
runs the model's own library on the built-in corpus (conformance/corpus.py: ~100 texts in many
scripts, emoji, blanks, URLs, code, and texts beyond 256 tokens) and compares, text by text:
model2vec when the folder is a Model2Vec model (its config.json names no transformers
model_type, or "model2vec"), sentence-transformers otherwise. The library is imported only
here and runs offline (HF_HUB_OFFLINE=1, local files only); without --reference, or without
the library on the client, the suite is not applicable.

/v1/embeddings must equal `encode(...)` as the library returns it, or, from a server that
answers unit vectors (OpenAI, TEI, infinity, vLLM and Ollama all do), the same brought to unit
length; /api/embed must equal it brought to unit length. Each check records max_abs_diff (the
largest difference of any component of any text) and min_cosine (the smallest cosine between
the two vectors of a text), and passes when max_abs_diff < 1e-4 and min_cosine > 0.9999.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from conformance.corpus import FIDELITY_TEXTS
from conformance.target import Target
from conformance.vectors import Matrix, as_matrix, unit_rows

MAX_ABS_DIFF = 1e-4
MIN_COSINE = 0.9999


def _is_model2vec(folder: Path) -> bool:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    # model2vec writes no model_type (its distiller writes "model2vec"); transformers always does
    return isinstance(config, dict) and config.get("model_type", "model2vec") == "model2vec"


def _encode(folder: Path, texts: list[str]) -> tuple[str, Matrix]:
    """The reference library's vectors for `texts`, and the library's name."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # read before the hub client is imported
    if _is_model2vec(folder):
        try:
            from model2vec import StaticModel
        except ImportError:
            pytest.skip("not applicable: model2vec is not installed on this client")
        static: Any = StaticModel.from_pretrained(folder, force_download=False)
        return "model2vec", as_matrix(static.encode(texts))
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        pytest.skip("not applicable: sentence-transformers is not installed on this client")
    model: Any = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    return "sentence-transformers", as_matrix(model.encode(texts, convert_to_numpy=True))


@pytest.fixture(scope="module")
def reference(target: Target) -> tuple[str, Matrix]:
    if target.reference is None:
        pytest.skip("not applicable: no --reference model folder given")
    if not target.reference.is_dir():
        pytest.fail(f"--reference {target.reference} is not a folder")
    return _encode(target.reference, FIDELITY_TEXTS)


def _compare(request: pytest.FixtureRequest, library: str, ours: Matrix, expected: Matrix) -> None:
    """Record and print the two measures, then hold them to the thresholds."""
    assert ours.shape == expected.shape, f"server {ours.shape} vs {library} {expected.shape}"
    diffs = np.abs(ours - expected).max(axis=1)
    cosines = (unit_rows(ours) * unit_rows(expected)).sum(axis=1)
    diff, cosine = float(diffs.max()), float(cosines.min())
    request.node.user_properties += [("max_abs_diff", diff), ("min_cosine", cosine)]
    measured = f"max_abs_diff={diff:.3g} min_cosine={cosine:.7f}"
    print(f"{request.node.name}: {measured} against {library}")  # noqa: T201 - shown by pytest -s
    worst = int(diffs.argmax())
    where = f"worst text #{worst}: {FIDELITY_TEXTS[worst][:60]!r}"
    assert diff < MAX_ABS_DIFF, f"max abs diff {diff:.3g} >= {MAX_ABS_DIFF:g} ({where})"
    least = int(cosines.argmin())
    assert cosine > MIN_COSINE, (
        f"min cosine {cosine:.7f} <= {MIN_COSINE} (text #{least}: {FIDELITY_TEXTS[least][:60]!r})"
    )


@pytest.mark.dialect("openai")
def test_v1_vectors_equal_the_reference_library(
    http: httpx.Client,
    target: Target,
    reference: tuple[str, Matrix],
    request: pytest.FixtureRequest,
) -> None:
    """/v1/embeddings returns what the model's own library computes, text by text: as it is,
    or at unit length where the server answers unit vectors."""
    body = {"model": target.model, "input": FIDELITY_TEXTS, "encoding_format": "float"}
    response = http.post("/v1/embeddings", json=body)
    assert response.status_code == 200, f"{response.status_code} {response.text[:300]}"
    data = sorted(response.json()["data"], key=lambda d: d["index"])
    library, expected = reference
    ours = as_matrix([d["embedding"] for d in data])
    if _unit_length(ours) and not _unit_length(expected):
        expected = unit_rows(expected)  # a server that normalises, as OpenAI's peers do
    _compare(request, library, ours, expected)


def _unit_length(rows: Matrix) -> bool:
    """Every row of norm 1 (a zero row, which has no direction, aside)."""
    norms = np.linalg.norm(rows, axis=1)
    return bool(np.all((np.abs(norms - 1.0) < MAX_ABS_DIFF) | (norms == 0)))


@pytest.mark.dialect("ollama")
def test_api_embed_vectors_equal_the_normalised_reference(
    http: httpx.Client,
    target: Target,
    reference: tuple[str, Matrix],
    request: pytest.FixtureRequest,
) -> None:
    """/api/embed returns the model's own vectors at unit length, text by text."""
    response = http.post("/api/embed", json={"model": target.model, "input": FIDELITY_TEXTS})
    assert response.status_code == 200, f"{response.status_code} {response.text[:300]}"
    library, expected = reference
    _compare(request, library, as_matrix(response.json()["embeddings"]), unit_rows(expected))
