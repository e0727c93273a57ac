"""ModernBERT on every engine against sentence-transformers and transformers.

Small random-weight folders from tests/model_factory_modernbert.py: the layout of
Alibaba-NLP/gte-modernbert-base (CLS, Normalize, the hub's config spelling, local_attention
128), that of nomic-ai/modernbert-embed-base (mean, Normalize, its `search_query: ` /
`search_document: ` prompts), and a ModernBertForMaskedLM checkpoint (`model.` keys) in the
spelling transformers 5 writes (layer_types, rope_parameters), with other rotary bases, a global
layer every 2 and an 8-token window, so that most texts reach past the window and a base read
from the wrong key moves every vector. The corpus' longest text
passes 1,000 tokens, well past the published 128-token window too.

Each folder is embedded by the numpy engine, ONNX Runtime and OpenVINO in mixed-length padded
batches and compared with SentenceTransformer.encode (tests/parity/every_engine.py), with and
without prompts. The reference pads and masks where the original ModernBERT code unpadded; both
leave pads out of every real token's computation, and each text alone equals it inside a padded
batch. The config readings and the window's bound are checked against transformers' own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from application.batching import pad
from application.catalogue import CATALOGUE
from domain.architectures.modernbert import LOCAL, ModernBertConfig
from tests.corpus import VARIED_TEXTS
from tests.model_factory import reference_model
from tests.model_factory_modernbert import EMBED_PROMPTS, write_modernbert_model
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
from tests.tolerances import BATCH_INVARIANCE

if TYPE_CHECKING:
    from pathlib import Path

    from domain.models import ModelSpec

_SPECS = {spec.name: spec for spec in CATALOGUE if spec.tag == "latest"}
TEXTS = [
    *VARIED_TEXTS,
    "[PAD]",
    "a [PAD] b [PAD][PAD] c",
    "[CLS] inside [SEP] the text",
    "fill in the [MASK] please",
    "<|padding|> and <|endoftext|>",
]
PROMPT_TEXTS = VARIED_TEXTS[:40]  # short and long ones


@dataclass(frozen=True)
class Case:
    id: str
    catalogue_name: str
    factory: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> ModelSpec:
        return _SPECS[self.catalogue_name]


CASES = [
    Case("gte-modernbert-base", "gte-modernbert-base", {"seed": 81}),
    Case(
        "modernbert-embed-base",
        "modernbert-embed-base",
        {"pooling": "mean", "prompts": EMBED_PROMPTS, "seed": 82},
    ),
    Case(
        "masked-lm-keys-transformers-spelling-window-8",
        "modernbert-embed-base",
        {
            "prefixed": True,
            "pooling": "mean",
            "normalize": False,
            "config_format": "current",
            "config_spelling": "transformers",
            "local_attention": 8,
            "global_attn_every_n_layers": 2,
            "rope_theta": (50_000.0, 2_000.0),
            "seed": 83,
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
    folder = write_modernbert_model(tmp_path_factory.mktemp(case.id), **case.factory)
    return Written(case, folder, reference_of(folder, TEXTS))


@pytest.fixture(scope="module")
def prompted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """modernbert-embed-base's layout, for the prompt tests."""
    return write_modernbert_model(tmp_path_factory.mktemp("prompted"), **CASES[1].factory)


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
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("prompt_name", sorted(EMBED_PROMPTS))
def test_prompted_embeddings_match_sentence_transformers(
    engine: str, prompt_name: str, prompted: Path, graphs: Path
) -> None:
    """modernbert-embed-base's named prompts: encode(..., prompt_name=...) on every engine."""
    case, folder = CASES[1], prompted
    ours = embedded_by(engine, case.spec, folder, PROMPT_TEXTS, graphs)
    assert ours.tokenizer.prompts == EMBED_PROMPTS
    prompted = embed_with_prompt(
        ours.tokenizer, ours.encoder, PROMPT_TEXTS, EMBED_PROMPTS[prompt_name]
    )
    model = reference_model(folder)
    reference = np.asarray(model.encode(PROMPT_TEXTS, prompt_name=prompt_name), np.float32)
    assert_matches(prompted, reference, PROMPT_TEXTS)


@pytest.mark.reference
def test_token_ids_and_limit_match_sentence_transformers(written: Written, graphs: Path) -> None:
    """The texts become the ids sentence-transformers feeds its model, cut at its limit (8192),
    and some are longer than the published 128-token window."""
    ours = embedded_by("numpy", written.case.spec, written.folder, TEXTS, graphs)
    assert not mismatched_texts(ours, written.reference, TEXTS)
    assert ours.tokenizer.max_tokens == written.reference.max_seq_length == 8192
    assert max(len(e.ids) for e in ours.encoded) > 2 * 128


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
    """Pads shift no rotary angle and no window, and are never read: each text alone equals it
    inside one right-padded batch."""
    ours = embedded_by(engine, written.case.spec, written.folder, TEXTS, graphs)
    rows = [ours.encoded[n].ids for n in range(0, len(TEXTS), 11)]
    assert len({len(r) for r in rows}) > 3
    together = ours.encoder.embed(*pad(rows))
    alone = np.concatenate([ours.encoder.embed(*pad([row])) for row in rows])
    assert np.abs(alone - together).max() < BATCH_INVARIANCE


# --- the config and the window, against transformers ----------------------------------------------


@pytest.mark.reference
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_layer_types_and_bases_are_transformers_readings(case: Case, tmp_path: Path) -> None:
    """Either spelling of config.json gives the layer types and rotary bases transformers'
    ModernBertConfig gives it."""
    import json

    from transformers import AutoConfig

    folder = write_modernbert_model(tmp_path, **case.factory)
    theirs = AutoConfig.from_pretrained(str(folder))
    ours = ModernBertConfig.from_json(json.loads((folder / "config.json").read_text()))
    assert list(ours.layer_types) == theirs.layer_types
    for kind, params in theirs.rope_parameters.items():
        assert ours.rope_theta[kind] == params["rope_theta"]
    assert ours.norm_eps == theirs.norm_eps
    assert ours.local_attention // 2 == theirs.sliding_window


@pytest.mark.reference
@pytest.mark.parametrize("local_attention", [2, 8, 9, 128])
def test_the_local_window_is_transformers_sliding_window_mask(local_attention: int) -> None:
    """A local layer's keys, |i - j| < window, are those of transformers'
    create_bidirectional_sliding_window_mask (the sdpa mask sentence-transformers runs)."""
    import torch
    from transformers import ModernBertConfig as TheirConfig
    from transformers.masking_utils import create_bidirectional_sliding_window_mask

    tokens = 300
    theirs_cfg = TheirConfig(
        hidden_size=32, num_attention_heads=4, num_hidden_layers=3, local_attention=local_attention
    )
    theirs_cfg._attn_implementation = "sdpa"  # what ModernBertModel runs by default
    allowed = create_bidirectional_sliding_window_mask(
        config=theirs_cfg,
        inputs_embeds=torch.zeros(1, tokens, 32),
        attention_mask=torch.ones(1, tokens, dtype=torch.long),
    )
    assert allowed is not None
    theirs = allowed.reshape(tokens, tokens).numpy()
    if theirs.dtype != np.bool_:  # an additive float mask: 0 where a key is read
        theirs = theirs == 0
    raw = {**theirs_cfg.to_dict(), "model_type": "modernbert"}
    ours_cfg = ModernBertConfig.from_json(raw)
    [local] = {n for n, kind in enumerate(ours_cfg.layer_types) if kind == LOCAL} - {2}
    window = ours_cfg.window(local)
    assert window is not None
    offsets = np.abs(np.arange(tokens)[None, :] - np.arange(tokens)[:, None])
    np.testing.assert_array_equal(offsets < window, theirs)
