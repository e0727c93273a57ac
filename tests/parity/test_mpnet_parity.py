"""MPNet on every engine against sentence-transformers and transformers.

Small random-weight MPNetModel folders from tests/model_factory_mpnet.py in
sentence-transformers/all-mpnet-base-v2's layout (legacy files, mean pooling, Normalize, 384
tokens), plus an MPNetForMaskedLM checkpoint (`mpnet.` keys) with CLS pooling at 512 tokens.
The corpus reaches past 128 tokens, so every relative-position bucket is used, up to the shared
last one; the tokenizer's own special tokens written as text are in it too (a literal "<pad>" is
id 1, which gets no position of its own, as in transformers). Each folder is embedded by the
numpy engine, ONNX Runtime and OpenVINO in mixed-length padded batches and compared with
SentenceTransformer.encode (tests/parity/every_engine.py). The bucket arithmetic and the bias
it gives are checked against transformers' MPNetEncoder directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from adapters.engines.numpy_ref import NumpyOps
from adapters.weights.model_folder import read_mpnet
from application.batching import pad
from application.catalogue import CATALOGUE
from domain.architectures.mpnet import MAX_DISTANCE, relative_position_bucket
from domain.models import PoolingMode
from tests.corpus import VARIED_TEXTS
from tests.model_factory_mpnet import write_mpnet_model
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
TEXTS = [
    *VARIED_TEXTS,
    "<pad>",
    "a <pad> b <pad><pad> c",
    "<s> inside </s> the text",
    "fill in the <mask> please",
]


@dataclass(frozen=True)
class Case:
    id: str
    factory: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> ModelSpec:
        return _SPECS["all-mpnet-base-v2"]


CASES = [
    Case("all-mpnet-base-v2", {"seed": 71}),
    Case(
        "masked-lm-keys-cls-512-current-files",
        {
            "prefixed": True,
            "pooling": "cls",
            "normalize": False,
            "config_format": "current",
            "max_seq_length": 512,
            "seed": 72,
        },
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
    folder = write_mpnet_model(tmp_path_factory.mktemp(case.id), **case.factory)
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
    """The texts become the ids sentence-transformers feeds its model, cut at its limit, and
    some are longer than the distance past which relative positions share a bucket."""
    ours = embedded_by("numpy", written.case.spec, written.folder, TEXTS, graphs)
    assert not mismatched_texts(ours, written.reference, TEXTS)
    assert ours.tokenizer.max_tokens == written.reference.max_seq_length
    assert max(len(e.ids) for e in ours.encoded) > MAX_DISTANCE + 1


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
    """Pads shift neither positions nor relative offsets: each text alone equals it inside one
    right-padded batch (padded with id 0, where sentence-transformers pads with <pad>)."""
    ours = embedded_by(engine, written.case.spec, written.folder, TEXTS, graphs)
    rows = [ours.encoded[n].ids for n in range(0, len(TEXTS), 11)]
    assert len({len(r) for r in rows}) > 3
    together = ours.encoder.embed(*pad(rows))
    alone = np.concatenate([ours.encoder.embed(*pad([row])) for row in rows])
    assert np.abs(alone - together).max() < BATCH_INVARIANCE


# --- the relative position bias, against transformers ---------------------------------------------


@pytest.mark.reference
def test_buckets_are_transformers_buckets_at_every_offset() -> None:
    """Each key offset from -4096 to 4096 gets MPNetEncoder.relative_position_bucket's bucket,
    float32 rounding at the wide buckets' edges included."""
    import torch
    from transformers.models.mpnet.modeling_mpnet import MPNetEncoder

    offsets = np.arange(-4096, 4097, dtype=np.int64)
    theirs = MPNetEncoder.relative_position_bucket(torch.from_numpy(offsets)).numpy()
    np.testing.assert_array_equal(relative_position_bucket(offsets), theirs)


@pytest.mark.reference
@pytest.mark.parametrize("tokens", [1, 9, 130, 300])
def test_offset_bias_is_transformers_position_bias(tokens: int, tmp_path: Path) -> None:
    """ops.offset_bias over the folded table equals MPNetEncoder.compute_position_bias."""
    import torch
    from transformers import MPNetModel

    folder = write_mpnet_model(tmp_path, seed=73)
    encoder = MPNetModel.from_pretrained(str(folder)).encoder
    with torch.no_grad():
        theirs = encoder.compute_position_bias(torch.zeros(2, tokens, 1))[:1].numpy()
    model = read_mpnet(folder, PoolingMode.MEAN)
    ids = np.zeros((2, tokens), dtype=np.int64)
    ours = NumpyOps().offset_bias(ids, model.weights.position_bias)
    np.testing.assert_array_equal(ours, theirs)
