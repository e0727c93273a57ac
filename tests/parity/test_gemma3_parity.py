"""Gemma 3 (EmbeddingGemma) on every engine against sentence-transformers and transformers.

Small random-weight Gemma3TextModel folders from tests/model_factory_gemma3.py in
google/embeddinggemma-300m's layout (mean pooling, two bias-free Identity Dense modules,
Normalize, 2,048 tokens, its task prompts, a tokenizer that pads on the left), with config.json
as the published repo writes it and as transformers 5 writes it. The corpus runs far past the
sliding window (keys within 8 positions here) and up to the 2,048-token cut, so both rotary bases,
the window and the full layers all count. Each folder is embedded in mixed-length right-padded
batches and compared with SentenceTransformer.encode (tests/parity/every_engine.py), with and
without a prompt; the final hidden states are compared with Gemma3TextModel's directly.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from adapters.engines.numpy_ref import NumpyEngine, NumpyOps
from adapters.families import GRAPH_FAMILIES
from adapters.tokenizers.by_family import load_tokenizer
from adapters.weights.model_folder import read_gemma3
from application.batching import pad
from application.catalogue import CATALOGUE
from application.engine_choice import Candidate, EngineSelector
from domain.architectures.gemma3 import LayerType
from domain.errors import ModelUnavailable
from domain.models import PoolingMode
from tests.contracts.test_engine_parity import _cpu_has_bf16
from tests.corpus import VARIED_TEXTS
from tests.model_factory import reference_model
from tests.model_factory_gemma3 import EMBEDDINGGEMMA_PROMPTS, write_gemma3_model
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
from tests.parity.test_sentence_head_parity import embed_with_prompt
from tests.tolerances import BATCH_INVARIANCE, BF16_MIN_COSINE, MAX_ABS_DIFF

if TYPE_CHECKING:
    from pathlib import Path

    from domain.models import ModelSpec

_SPEC = next(s for s in CATALOGUE if s.repo_id == "google/embeddinggemma-300m")
TEXTS = (*VARIED_TEXTS, "<bos>", "a <pad> b <eos> c", "<mask> <unk>", "<0x41> is not A")
# one embedding of the corpus per engine and folder, shared by the tests that read it
_embedded = functools.cache(embedded_by)


@dataclass(frozen=True)
class Case:
    id: str
    factory: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> ModelSpec:
        return _SPEC


CASES = [
    Case("embeddinggemma-300m", {"seed": 81}),
    Case(
        "transformers-5-config-full-first",
        {
            "config_format": "transformers",
            "layer_types": ("full_attention", "sliding_attention", "sliding_attention"),
            "sliding_window": 12,  # keys within 6 positions
            "seed": 82,
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
    folder = write_gemma3_model(tmp_path_factory.mktemp(case.id), **case.factory)
    return Written(case, folder, reference_of(folder, TEXTS))


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("graphs")


@pytest.mark.reference
@pytest.mark.parametrize("engine", ENGINES)
def test_embeddings_match_sentence_transformers(
    engine: str, written: Written, graphs: Path
) -> None:
    """Every vector equals SentenceTransformer.encode's (MAX_ABS_DIFF scaled, MIN_COSINE),
    though sentence-transformers pads on the left and we pad on the right."""
    ours = _embedded(engine, written.case.spec, written.folder, TEXTS, graphs)
    assert ours.batches > 1
    assert ours.encoder.dimensions == written.reference.dimensions
    assert_matches(ours.vectors, written.reference.vectors, TEXTS)


@pytest.mark.reference
@pytest.mark.parametrize("prompt_name", ["query", "document"])
@pytest.mark.parametrize("engine", ENGINES)
def test_prompted_embeddings_match_sentence_transformers(
    engine: str, prompt_name: str, written: Written, graphs: Path
) -> None:
    """`prompt + text`, tokenized as one and cut as one, equals encode(prompt_name=...)."""
    texts = list(TEXTS[::3])
    model = reference_model(written.folder)
    theirs = np.asarray(model.encode(texts, prompt_name=prompt_name), dtype=np.float32)
    ours = _embedded(engine, written.case.spec, written.folder, TEXTS, graphs)
    prompt = ours.tokenizer.prompts[prompt_name]
    assert prompt == EMBEDDINGGEMMA_PROMPTS[prompt_name]
    assert_matches(embed_with_prompt(ours.tokenizer, ours.encoder, texts, prompt), theirs, texts)


@pytest.mark.reference
def test_token_ids_and_limit_match_sentence_transformers(written: Written, graphs: Path) -> None:
    """The texts become the ids sentence-transformers feeds its model (<bos> … <eos>, bytes
    for what the vocabulary lacks), cut at its 2,048 tokens, many longer than the window."""
    ours = _embedded("numpy", written.case.spec, written.folder, TEXTS, graphs)
    assert not mismatched_texts(ours, written.reference, TEXTS)
    assert ours.tokenizer.max_tokens == written.reference.max_seq_length == 2048
    assert max(len(e.ids) for e in ours.encoded) == 2048
    assert all(e.ids[0] == 2 and e.ids[-1] == 1 for e in ours.encoded)


@pytest.mark.reference
@pytest.mark.parametrize("engine", GRAPH_ENGINES)
def test_the_engines_parity_gate_passes(engine: str, written: Written, graphs: Path) -> None:
    """Loaded as the server loads it, the graph engine passes the gate and is the one used."""
    chosen = gate(engine, written.case.spec, written.folder, graphs)
    assert chosen.engine == engine
    assert chosen.parity is not None
    assert chosen.parity.passed


@pytest.mark.reference
@pytest.mark.skipif(not _cpu_has_bf16(), reason="the CPU does not compute in bf16 natively")
def test_bf16_passes_the_gate_or_is_refused_with_its_figure_logged(
    written: Written, graphs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Published guidance is no fp16; OpenVINO's bf16 goes through the load-time gate (min
    cosine BF16_MIN_COSINE): it runs the model where it passes, else numpy does and the log
    says bf16's min cosine."""
    import structlog
    from structlog.testing import LogCapture

    import application.engine_choice
    from adapters.engines.openvino_engine import OpenVinoEngine

    # the selector's module logger may be cached by an app built earlier in the session, which
    # structlog's capture_logs would miss: swapped for a capturing one
    capture = LogCapture()
    monkeypatch.setattr(
        application.engine_choice, "log", structlog.wrap_logger(None, processors=[capture])
    )
    logs = capture.entries

    spec, folder = written.case.spec, written.folder
    tokenizer = load_tokenizer(spec, folder)
    assert not isinstance(tokenizer, ModelUnavailable), tokenizer
    bf16 = OpenVinoEngine(graphs, precision="bf16")
    candidate = Candidate("openvino", "bf16", GRAPH_FAMILIES, lambda: bf16)
    selector = EngineSelector(
        NumpyEngine(), [candidate], forced="openvino", precision_of=lambda _spec: "bf16"
    )
    chosen = selector.choose(spec, folder, tokenizer)
    assert not isinstance(chosen, ModelUnavailable), chosen
    verdict = [e for e in logs if e["event"] == "engine_parity"][-1]
    assert verdict["precision"] == "bf16"
    passed = verdict["min_cosine"] >= BF16_MIN_COSINE
    assert verdict["passed"] == passed
    if passed:
        assert (chosen.engine, chosen.precision) == ("openvino", "bf16")
    else:
        assert chosen.engine == "numpy"
        refused = [e for e in logs if e["event"] == "engine_failed_parity"]
        assert refused[-1]["min_cosine"] == verdict["min_cosine"]


@pytest.mark.parametrize("engine", ENGINES)
def test_text_alone_equals_text_in_mixed_length_batch(
    engine: str, written: Written, graphs: Path
) -> None:
    """Rotary scores depend on offsets alone and pads are masked keys: each text alone equals
    it inside one right-padded batch."""
    ours = _embedded(engine, written.case.spec, written.folder, TEXTS, graphs)
    rows = [e.ids for e in ours.encoded[::7] if len(e.ids) <= 300]
    assert len({len(r) for r in rows}) > 3
    together = ours.encoder.embed(*pad(rows))
    alone = np.concatenate([ours.encoder.embed(*pad([row])) for row in rows])
    assert np.abs(alone - together).max() < BATCH_INVARIANCE


# --- the encoder alone, against transformers ---------------------------------------------------


@pytest.mark.reference
@pytest.mark.parametrize("tokens", [1, 7, 40, 300])
def test_hidden_states_are_gemma3_text_models(tokens: int, tmp_path: Path) -> None:
    """Before pooling, the final normed states of a right-padded batch equal Gemma3TextModel's
    on its real tokens (scaled per state, as the vectors are)."""
    import torch
    from transformers import Gemma3TextModel

    from domain.architectures.gemma3 import gemma3_layer

    folder = write_gemma3_model(tmp_path, seed=83)
    theirs_model = Gemma3TextModel.from_pretrained(str(folder)).eval()
    ids = np.random.default_rng(tokens).integers(5, 1500, size=(2, tokens), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[1, tokens // 2 + 1 :] = 0  # the second row ends early: padding on the right
    with torch.no_grad():
        out = theirs_model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    theirs = out.last_hidden_state.numpy()
    model = read_gemma3(folder, PoolingMode.MEAN)
    ops, cfg, w = NumpyOps(), model.config, model.weights
    x = ops.embedding(w.embed_tokens, ids)
    for layer, kind in zip(w.layers, cfg.layer_types, strict=True):
        x = gemma3_layer(ops, x, mask, layer, cfg, kind=kind)
    ours = ops.rms_norm(x, w.norm, cfg.rms_norm_eps)
    real = mask.astype(bool)
    scale = np.maximum(1.0, np.abs(theirs[real]).max(axis=-1, keepdims=True))
    assert (np.abs(ours[real] - theirs[real]) / scale).max() < MAX_ABS_DIFF
    assert LayerType.SLIDING in cfg.layer_types
    assert LayerType.FULL in cfg.layer_types


@pytest.mark.reference
@pytest.mark.parametrize("sliding_window", [1, 9, 16, 512, 4096])
@pytest.mark.parametrize("written_as", ["published", "transformers-5"])
def test_config_reads_as_gemma3_text_config(sliding_window: int, written_as: str) -> None:
    """Window, rotary bases and layer types are what Gemma3TextConfig makes of the same
    config.json, as the repo writes it and as transformers 5 writes it back (odd windows too)."""
    from transformers import Gemma3TextConfig

    from domain.architectures.gemma3 import Gemma3Config
    from tests.model_factory_gemma3 import _published_config

    raw = _published_config(
        hidden=64,
        layers=7,
        heads=2,
        kv_heads=1,
        head_dim=32,
        intermediate=96,
        sliding_window=sliding_window,
        layer_types=(),
    )
    del raw["layer_types"]  # filled in from the pattern
    theirs = Gemma3TextConfig.from_dict(raw)
    if written_as == "transformers-5":
        raw = theirs.to_dict()
        theirs = Gemma3TextConfig.from_dict(raw)
    ours = Gemma3Config.from_json(raw)
    assert ours.window == theirs.sliding_window
    assert ours.layer_types == tuple(LayerType(t) for t in theirs.layer_types)
    bases = {LayerType(k): v["rope_theta"] for k, v in theirs.rope_parameters.items()}
    assert ours.rope_theta == bases
    assert ours.scale == theirs.query_pre_attn_scalar**-0.5
