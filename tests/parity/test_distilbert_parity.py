"""DistilBERT on every engine against sentence-transformers, in the real repos' layouts.

Small random-weight DistilBertModel folders from tests/model_factory_distilbert.py, as
sentence-transformers/msmarco-distilbert-base-v4 (mean) and multi-qa-distilbert-cos-v1 (mean,
Normalize) carry them, plus a DistilBertForMaskedLM checkpoint (`distilbert.` keys) with
concatenated pooling modes. Each is embedded by the numpy engine, ONNX Runtime and OpenVINO in
mixed-length padded batches and compared with SentenceTransformer.encode (tests/parity/
every_engine.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from application.batching import pad
from application.catalogue import CATALOGUE
from tests.corpus import VARIED_TEXTS
from tests.model_factory_distilbert import write_distilbert_model
from tests.parity.every_engine import (
    ENGINES,
    GRAPH_ENGINES,
    Reference,
    assert_matches,
    embedded_by,
    gate,
    mismatched_texts,
    reference_of,
)
from tests.tolerances import BATCH_INVARIANCE

if TYPE_CHECKING:
    from pathlib import Path

    from domain.models import ModelSpec

_SPECS = {spec.name: spec for spec in CATALOGUE if spec.tag == "latest"}
TEXTS = [*VARIED_TEXTS, "[PAD]", "a [SEP] b [CLS] c", "fill in the [MASK] please"]


@dataclass(frozen=True)
class Case:
    id: str
    spec_name: str
    factory: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> ModelSpec:
        return _SPECS[self.spec_name]


CASES = [
    Case("msmarco-distilbert-base-v4", "msmarco-distilbert-base-v4", {"seed": 61}),
    Case(
        "multi-qa-distilbert-cos-v1", "multi-qa-distilbert-cos-v1", {"normalize": True, "seed": 62}
    ),
    Case(
        "masked-lm-keys-cls+max-current-files",
        "msmarco-distilbert-base-v4",
        {"prefixed": True, "pooling": ["cls", "max"], "config_format": "current", "seed": 63},
    ),
]


@dataclass(frozen=True)
class Written:
    case: Case
    folder: Path
    reference: Reference


@pytest.fixture(scope="module", params=CASES, ids=[c.id for c in CASES])
def written(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Written:
    case: Case = request.param
    folder = write_distilbert_model(tmp_path_factory.mktemp(case.id), **case.factory)
    return Written(case, folder, reference_of(folder, TEXTS))


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("graphs")


@pytest.mark.reference
@pytest.mark.parametrize("engine", ENGINES)
def test_embeddings_match_sentence_transformers(
    engine: str, written: Written, graphs: Path
) -> None:
    """Every vector equals SentenceTransformer.encode's (MAX_ABS_DIFF scaled, MIN_COSINE)."""
    ours = embedded_by(engine, written.case.spec, written.folder, TEXTS, graphs)
    assert ours.batches > 1
    assert ours.encoder.dimensions == written.reference.dimensions
    assert_matches(ours.vectors, written.reference.vectors, TEXTS)


@pytest.mark.reference
def test_token_ids_and_limit_match_sentence_transformers(written: Written, graphs: Path) -> None:
    """The texts become the ids sentence-transformers feeds its model, cut at its limit."""
    ours = embedded_by("numpy", written.case.spec, written.folder, TEXTS, graphs)
    assert not mismatched_texts(ours, written.reference, TEXTS)
    assert ours.tokenizer.max_tokens == written.reference.max_seq_length
    assert any(e.truncated for e in ours.encoded)


@pytest.mark.reference
@pytest.mark.parametrize("engine", GRAPH_ENGINES)
def test_the_engines_parity_gate_passes(engine: str, written: Written, graphs: Path) -> None:
    """Loaded as the server loads it, the graph engine passes the gate and is the one used."""
    chosen = gate(engine, written.case.spec, written.folder, graphs)
    assert chosen.engine == engine
    assert chosen.parity is not None
    assert chosen.parity.passed


@pytest.mark.parametrize("engine", ENGINES)
def test_text_alone_equals_text_in_mixed_length_batch(
    engine: str, written: Written, graphs: Path
) -> None:
    """Pads never leak into a row: each text alone equals it inside one padded batch."""
    ours = embedded_by(engine, written.case.spec, written.folder, TEXTS, graphs)
    rows = [ours.encoded[n].ids for n in range(0, len(TEXTS), 11)]
    assert len({len(r) for r in rows}) > 3
    together = ours.encoder.embed(*pad(rows))
    alone = np.concatenate([ours.encoder.embed(*pad([row])) for row in rows])
    assert np.abs(alone - together).max() < BATCH_INVARIANCE
