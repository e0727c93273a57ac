"""The sentence head on every engine that runs here against sentence-transformers' encode.

Each case is a small random BERT that sentence-transformers itself saved, with the head a real
repo carries: every pooling mode with `include_prompt: false` and a prompt, Dense modules (Tanh
and Identity, with and without bias, safetensors and pytorch_model.bin) before and without a
Normalize. Our side does what the server does with a prompt: `prompt + text` tokenized as one
text and cut as one, the prompt's tokens marked in the mask where pooling leaves them out
(application/batching.py `pad`), length-bucketed batches; then each engine embeds them.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest

from adapters.tokenizers.hf_tokenizer import load_tokenizer
from application.batching import pad, plan_batches
from application.catalogue import CATALOGUE
from domain.errors import ModelUnavailable
from tests.contracts.test_engine_parity import ENGINES, make_engine
from tests.corpus import VARIED_TEXTS
from tests.model_factory import DenseModule, reference_model, write_bert_model
from tests.parity.test_bert_parity import scaled_abs_diff
from tests.tolerances import MAX_ABS_DIFF, MIN_COSINE

if TYPE_CHECKING:
    from pathlib import Path

    from domain.ports import Encoder, Tokenizer

_SPEC = next(s for s in CATALOGUE if s.name == "gte-base" and s.tag == "latest")
_PROMPTS = {"query": "query: ", "document": "Represent this passage for retrieval: "}
_TEXTS = VARIED_TEXTS[:40]  # short and long ones: a cut keeps the prompt and the text's start


@dataclass(frozen=True, eq=False)  # hashed by identity: one per case, its files written once
class Case:
    id: str
    factory: dict[str, Any] = field(default_factory=dict)
    prompt_name: str | None = "query"


_EXCLUDED = {"include_prompt": False, "prompts": _PROMPTS}
CASES = [
    *(
        Case(f"{mode}-without-prompt", {"pooling": mode, **_EXCLUDED, "seed": 30 + n})
        for n, mode in enumerate(
            ["mean", "cls", "max", "mean_sqrt_len_tokens", "weightedmean", "lasttoken"]
        )
    ),
    Case(
        "mean+cls-without-prompt-document",
        {"pooling": ["mean", "cls"], **_EXCLUDED, "seed": 37},
        "document",
    ),
    Case("mean-with-prompt", {"prompts": _PROMPTS, "seed": 38}),
    Case("dense-tanh-normalize", {"dense": [DenseModule(24)], "normalize": True, "seed": 40}, None),
    Case(
        "dense-identity-no-bias",
        {"dense": [DenseModule(16, "Identity", bias=False)], "seed": 41},
        None,
    ),
    Case(
        "cls-two-dense-bin-normalize",
        {
            "pooling": "cls",
            "dense": [DenseModule(48), DenseModule(20, "Identity", weights="bin")],
            "normalize": True,
            "seed": 42,
        },
        None,
    ),
    Case(
        "dense-without-prompt",
        {"dense": [DenseModule(24, bias=False)], **_EXCLUDED, "normalize": True, "seed": 43},
    ),
]


@functools.cache
def _folder(case: Case, root: Path) -> Path:
    return write_bert_model(root / case.id, **case.factory)


@functools.cache
def _reference(case: Case, root: Path) -> np.ndarray:
    model = reference_model(_folder(case, root))
    return np.asarray(model.encode(_TEXTS, prompt_name=case.prompt_name), dtype=np.float32)


def embed_with_prompt(
    tokenizer: Tokenizer, encoder: Encoder, texts: list[str], prompt: str
) -> np.ndarray:
    """As the server embeds `texts` under `prompt`: tokenized with it, batched by length."""
    rows = [e.ids for e in tokenizer.encode([prompt + t for t in texts])]
    skip = tokenizer.excluded_prompt_tokens(prompt)
    out = np.full((len(rows), encoder.dimensions), np.nan, dtype=np.float32)
    for batch in plan_batches([len(r) for r in rows], 512, 8):
        out[batch] = encoder.embed(*pad([rows[i] for i in batch], [skip] * len(batch)))
    return out


@pytest.fixture(scope="session")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("heads")


@pytest.mark.reference
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_head_matches_sentence_transformers(
    case: Case, engine: str, root: Path, tmp_path: Path
) -> None:
    """Every vector equals sentence-transformers' encode(..., prompt_name=...) on this engine."""
    folder = _folder(case, root)
    tokenizer = load_tokenizer(_SPEC, folder)
    assert not isinstance(tokenizer, ModelUnavailable), tokenizer
    encoder = make_engine(engine, tmp_path).load(_SPEC, folder)
    assert not isinstance(encoder, ModelUnavailable), encoder
    prompt = "" if case.prompt_name is None else _PROMPTS[case.prompt_name]
    ours = embed_with_prompt(tokenizer, encoder, list(_TEXTS), prompt)
    reference = _reference(case, root)
    assert ours.shape == reference.shape
    assert scaled_abs_diff(ours, reference).max() < MAX_ABS_DIFF
    cosine = (ours * reference).sum(axis=1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1)
    )
    assert cosine.min() > MIN_COSINE


@pytest.mark.reference
def test_prompt_tokens_left_out_count_as_sentence_transformers_counts(root: Path) -> None:
    """The prompt's tokens pooling leaves out are sentence-transformers' prompt_length."""
    case = CASES[0]
    folder = _folder(case, root)
    tokenizer = load_tokenizer(_SPEC, folder)
    assert not isinstance(tokenizer, ModelUnavailable)
    model = reference_model(folder)
    for prompt in _PROMPTS.values():
        expected = model[0]._get_prompt_length(prompt)  # the number we must equal
        assert tokenizer.excluded_prompt_tokens(prompt) == expected
