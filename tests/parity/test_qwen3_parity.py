"""Qwen3 (Qwen3-Embedding) on every engine against sentence-transformers.

Small random-weight folders from tests/model_factory_qwen3.py in Qwen/Qwen3-Embedding-0.6B's
layout: bfloat16 weights under bare keys, lasttoken pooling, Normalize, the query prompt, and a
tokenizer that appends <|endoftext|> and pads on the left. Two variants besides: Qwen3ForCausalLM's
`model.` keys in float32 cut at 24 tokens (the cut keeps the appended token, as
sentence-transformers' does), and sliding-window layers with attention biases.

The reference is SentenceTransformer.encode in float32 (model_kwargs dtype: the repo's
bfloat16 would otherwise be computed in bfloat16), in batches of 32 of mixed lengths padded on
the LEFT, as the repo's tokenizer says; ours are right-padded. Equal vectors show that under the
causal mask and relative (rotary) positions the last real token's state does not depend on the
padding side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from application.batching import pad
from domain.models import Family, ModelSpec, PoolingMode
from tests.corpus import VARIED_TEXTS
from tests.model_factory_qwen3 import QWEN3_PROMPTS, write_qwen3_model
from tests.parity.every_engine import (
    ENGINES,
    GRAPH_ENGINES,
    Reference,
    assert_matches,
    embedded_by,
    gate,
    mismatched_texts,
)
from tests.tolerances import BATCH_INVARIANCE

if TYPE_CHECKING:
    from pathlib import Path

TEXTS = [
    *VARIED_TEXTS,
    "<|endoftext|>",
    "a <|endoftext|> b <|im_start|> c <|im_end|>",
]
_BATCH = 32  # sentence-transformers' default: batches mix short and long texts


@dataclass(frozen=True)
class Case:
    id: str
    factory: dict[str, Any] = field(default_factory=dict)
    max_tokens: int = 8192

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(
            "qwen3-embedding",
            "Qwen/Qwen3-Embedding-0.6B",
            Family.QWEN3,
            48,
            self.max_tokens,
            PoolingMode.LAST_TOKEN,
            tag="0.6b",
        )


CASES = [
    Case("qwen3-embedding-0.6b", {"seed": 81}),
    Case(
        "causal-lm-keys-float32-cut-at-24",
        {"seed": 82, "prefixed": True, "dtype": "float32", "max_seq_length": 24},
        max_tokens=24,
    ),
    Case(
        "sliding-window-and-attention-bias",
        {"seed": 83, "sliding_window": 5, "max_window_layers": 1, "attention_bias": True},
    ),
]


def reference_of(folder: Path, texts: list[str], prompt_name: str | None = None) -> Reference:
    """sentence-transformers in float32, with the repo's own (left) padding."""
    import torch
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(
        str(folder), device="cpu", local_files_only=True, model_kwargs={"dtype": torch.float32}
    )
    assert model.tokenizer.padding_side == "left"
    vectors = model.encode(texts, batch_size=_BATCH, prompt_name=prompt_name)
    prompt = model.prompts[prompt_name] if prompt_name else ""
    return Reference(
        vectors=np.asarray(vectors, dtype=np.float32),
        ids=_token_ids(model, [prompt + t for t in texts]),
        max_seq_length=int(model.max_seq_length or 0),
        dimensions=int(model.get_embedding_dimension() or 0),
    )


def _token_ids(model: Any, texts: list[str]) -> list[tuple[int, ...]]:
    """The ids sentence-transformers feeds its model, the (left) padding taken out."""
    features = model.preprocess(texts)
    rows = zip(features["input_ids"].tolist(), features["attention_mask"].tolist(), strict=True)
    return [tuple(i for i, m in zip(ids, mask, strict=True) if m) for ids, mask in rows]


@dataclass(frozen=True)
class Written:
    case: Case
    folder: Path
    reference: Reference


@pytest.fixture(scope="module", params=CASES, ids=[c.id for c in CASES])
def written(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Written:
    case: Case = request.param
    folder = write_qwen3_model(tmp_path_factory.mktemp(case.id), **case.factory)
    return Written(case, folder, reference_of(folder, TEXTS))


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("graphs")


@pytest.mark.reference
@pytest.mark.parametrize("engine", ENGINES)
def test_embeddings_match_sentence_transformers(
    engine: str, written: Written, graphs: Path
) -> None:
    """Every vector equals SentenceTransformer.encode's, which pads on the left where the
    server's batches pad on the right (MAX_ABS_DIFF scaled, MIN_COSINE)."""
    ours = embedded_by(engine, written.case.spec, written.folder, TEXTS, graphs)
    assert ours.batches > 1
    assert ours.encoder.dimensions == written.reference.dimensions
    assert_matches(ours.vectors, written.reference.vectors, TEXTS)


@pytest.mark.reference
@pytest.mark.parametrize("engine", ENGINES)
def test_query_prompt_matches_sentence_transformers(
    engine: str, written: Written, graphs: Path
) -> None:
    """With the repo's query instruction in front (prompt_name="query"), as a request naming
    it embeds: the same vectors as sentence-transformers'."""
    texts = TEXTS[::3]
    reference = reference_of(written.folder, texts, "query")
    prompted = [QWEN3_PROMPTS["query"] + t for t in texts]
    ours = embedded_by(engine, written.case.spec, written.folder, prompted, graphs)
    assert not mismatched_texts(ours, reference, prompted)
    assert_matches(ours.vectors, reference.vectors, prompted)


@pytest.mark.reference
def test_token_ids_end_in_endoftext_as_sentence_transformers(
    written: Written, graphs: Path
) -> None:
    """The texts become the ids sentence-transformers feeds its model, each ending in the
    <|endoftext|> the post-processor appends, kept at the end of a text cut at the limit."""
    ours = embedded_by("numpy", written.case.spec, written.folder, TEXTS, graphs)
    assert not mismatched_texts(ours, written.reference, TEXTS)
    assert ours.tokenizer.max_tokens == written.reference.max_seq_length
    endoftext = ours.encoded[TEXTS.index("<|endoftext|>")].ids[-1]
    assert all(e.ids[-1] == endoftext for e in ours.encoded)
    if written.case.max_tokens < 100:
        assert any(len(e.ids) == written.case.max_tokens for e in ours.encoded)


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
    """Right-padding reaches no real token under the causal mask: each text alone equals it
    inside one right-padded batch."""
    ours = embedded_by(engine, written.case.spec, written.folder, TEXTS, graphs)
    rows = [ours.encoded[n].ids for n in range(0, len(TEXTS), 11)]
    assert len({len(r) for r in rows}) > 3
    together = ours.encoder.embed(*pad(rows))
    alone = np.concatenate([ours.encoder.embed(*pad([row])) for row in rows])
    assert np.abs(alone - together).max() < BATCH_INVARIANCE
