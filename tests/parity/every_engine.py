"""One model folder embedded by every engine, the way the server embeds, against
sentence-transformers' own `encode`: what the family parity tests of the newer layouts share.

Each engine (numpy, ONNX Runtime, OpenVINO) tokenizes with our tokenizer, plans length-bucketed
batches under a small token budget (so batches mix lengths and are right-padded), embeds and
restores order (tests/parity/test_bert_parity.py's `embed_like_the_server`). The comparison is
per component, scaled (tests/tolerances.py MAX_ABS_DIFF), and by cosine (MIN_COSINE). A graph
engine must also pass the parity gate the server runs at every load (application/engine_choice).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np

from adapters.engines.numpy_ref import NumpyEngine
from adapters.families import GRAPH_FAMILIES
from adapters.tokenizers.by_family import load_tokenizer
from application.engine_choice import Candidate, Chosen, EngineSelector
from domain.errors import ModelUnavailable
from tests.contracts.test_engine_parity import make_engine
from tests.model_factory import reference_model
from tests.parity.test_bert_parity import (
    embed_like_the_server,
    mismatched_ids,
    reference_token_ids,
    scaled_abs_diff,
)
from tests.tolerances import MAX_ABS_DIFF, MIN_COSINE

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from domain.models import ModelSpec
    from domain.ports import Encoded, Encoder, InferenceEngine, Tokenizer

__all__ = [
    "ENGINES",
    "GRAPH_ENGINES",
    "Ours",
    "Reference",
    "assert_matches",
    "embedded_by",
    "gate",
    "mismatched_texts",
    "reference_of",
]

ENGINES = ("numpy", "onnxruntime", "openvino")
GRAPH_ENGINES = ("onnxruntime", "openvino")


@dataclass(frozen=True)
class Reference:
    vectors: np.ndarray
    ids: list[tuple[int, ...]]
    max_seq_length: int
    dimensions: int


@dataclass(frozen=True)
class Ours:
    vectors: np.ndarray
    encoded: list[Encoded]
    batches: int
    tokenizer: Tokenizer
    encoder: Encoder


def reference_of(folder: Path, texts: Sequence[str], limit: int | None = None) -> Reference:
    """sentence-transformers' vectors and token ids; `limit` overrides its max_seq_length."""
    model = reference_model(folder)
    reported = int(model.max_seq_length or 0)
    if limit is not None:
        model.max_seq_length = limit
    vectors = model.encode(list(texts), batch_size=32, convert_to_numpy=True)
    return Reference(
        vectors=np.asarray(vectors, dtype=np.float32),
        ids=reference_token_ids(model, list(texts)),
        max_seq_length=reported,
        dimensions=int(model.get_embedding_dimension() or 0),
    )


@functools.cache
def _engine(name: str, cache: Path) -> InferenceEngine:
    return make_engine(name, cache)


def embedded_by(
    engine: str, spec: ModelSpec, folder: Path, texts: Sequence[str], cache: Path
) -> Ours:
    tokenizer = load_tokenizer(spec, folder)
    assert not isinstance(tokenizer, ModelUnavailable), tokenizer
    encoder = _engine(engine, cache).load(spec, folder)
    assert not isinstance(encoder, ModelUnavailable), encoder
    vectors, encoded, batches = embed_like_the_server(tokenizer, encoder, texts)
    return Ours(vectors, encoded, batches, tokenizer, encoder)


def assert_matches(ours: np.ndarray, reference: np.ndarray, texts: Sequence[str]) -> None:
    """Every component within MAX_ABS_DIFF (scaled), every vector within MIN_COSINE."""
    assert ours.shape == reference.shape
    diff = scaled_abs_diff(ours, reference)
    row = int(np.argmax(diff.max(axis=1)))
    assert diff.max() < MAX_ABS_DIFF, f"scaled abs diff {diff.max():.3g} at {texts[row][:60]!r}"
    norms = np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1)
    cosines = (ours * reference).sum(axis=1) / np.maximum(norms, 1e-30)
    assert cosines.min() > MIN_COSINE, f"cosine {cosines.min():.8f}"


def mismatched_texts(ours: Ours, reference: Reference, texts: Sequence[str]) -> list[str]:
    return [texts[n][:40] for n in mismatched_ids(ours.encoded, reference.ids)]


def gate(engine: str, spec: ModelSpec, folder: Path, cache: Path) -> Chosen:
    """The engine as the server picks it with `--engine NAME`: loaded, then gated on the probe
    against the numpy engine; a failing gate would fall back to numpy."""
    tokenizer = load_tokenizer(spec, folder)
    assert not isinstance(tokenizer, ModelUnavailable), tokenizer
    fast = make_engine(engine, cache)
    candidate = Candidate(engine, "fp32", GRAPH_FAMILIES, lambda: fast)
    chosen = EngineSelector(NumpyEngine(), [candidate], forced=engine).choose(
        spec, folder, tokenizer
    )
    assert not isinstance(chosen, ModelUnavailable), chosen
    return chosen
