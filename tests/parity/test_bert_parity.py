"""The numpy engine and our tokenizer against sentence-transformers, on BERT-family folders.

Each case is one model folder: the real all-MiniLM-L6-v2 from its package, or a small
random-weight BERT from tests/model_factory.py in one of the layouts and configurations real
repos use. Our side runs the way the server does: tokenize, plan length-bucketed batches under a
small token budget, right-pad, embed, restore order. sentence-transformers' side is its own
`encode`, on the same texts (tests/corpus.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.engines.numpy_ref import NumpyEngine
from adapters.tokenizers.hf_tokenizer import load_tokenizer
from application.batching import pad, pass_lengths, plan_batches
from application.catalogue import CATALOGUE
from domain.errors import ModelUnavailable
from tests.corpus import VARIED_TEXTS
from tests.model_factory import minilm_folder, reference_model, write_bert_model
from tests.tolerances import BATCH_INVARIANCE, MAX_ABS_DIFF

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from domain.models import ModelSpec
    from domain.ports import Encoded, Encoder, Tokenizer

# Small enough that the corpus runs in many batches of different widths.
TOKEN_BUDGET = 1024
MAX_BATCH = 16

_SPECS = {spec.name: spec for spec in CATALOGUE if spec.tag == "latest"}


@dataclass(frozen=True)
class Case:
    """One model folder to compare: how to write it, and the catalogue entry it stands for."""

    id: str
    spec_name: str
    factory: dict[str, Any] | None = field(default=None)  # None: the real all-MiniLM-L6-v2

    @property
    def spec(self) -> ModelSpec:
        return _SPECS[self.spec_name]


CASES = [
    Case("real-all-MiniLM-L6-v2", "all-MiniLM-L6-v2"),
    # every pooling mode, each on its own
    Case("cls", "msmarco-bert-base-dot-v5", {"pooling": "cls", "seed": 1}),
    Case("max", "gte-base", {"pooling": "max", "seed": 2}),
    Case("mean", "gte-base", {"pooling": "mean", "seed": 3}),
    Case("mean-sqrt-len", "gte-base", {"pooling": "mean_sqrt_len_tokens", "seed": 4}),
    Case("weightedmean", "gte-base", {"pooling": "weightedmean", "seed": 5}),
    Case("lasttoken", "gte-base", {"pooling": "lasttoken", "seed": 6}),
    # several modes concatenate in the order given
    Case("mean+cls", "gte-base", {"pooling": ["mean", "cls"], "seed": 7}),
    Case(
        "all-modes-normalized",
        "gte-base",
        {
            "pooling": ["lasttoken", "max", "cls", "weightedmean", "mean_sqrt_len_tokens", "mean"],
            "normalize": True,
            "seed": 8,
        },
    ),
    # Normalize
    Case(
        "cls-normalized",
        "msmarco-bert-base-dot-v5",
        {"pooling": "cls", "normalize": True, "seed": 9},
    ),
    Case("mean-normalized", "all-MiniLM-L6-v2", {"normalize": True, "seed": 10}),
    # the old config format most hub repos carry
    Case(
        "legacy-mean-normalized",
        "all-MiniLM-L6-v2",
        {"normalize": True, "config_format": "legacy", "seed": 11},
    ),
    Case(
        "legacy-cls+max+mean",
        "gte-base",
        {"pooling": ["cls", "max", "mean"], "config_format": "legacy", "seed": 12},
    ),
    Case(
        "legacy-no-max-seq-length",
        "gte-base",
        {"config_format": "legacy", "max_seq_length": None, "seed": 13},
    ),
    # checkpoint keys under `bert.`, with the MLM head beside them
    Case(
        "bert-prefixed",
        "msmarco-bert-base-dot-v5",
        {"prefixed": True, "normalize": True, "seed": 14},
    ),
    # a plain transformers repo: sentence-transformers' defaults apply
    Case(
        "plain-transformers-prefixed",
        "bert-base-uncased",
        {"layout": "transformers", "prefixed": True, "max_seq_length": 512, "seed": 15},
    ),
    Case(
        "plain-transformers-no-model-max-length",
        "bert-base-uncased",
        {"layout": "transformers", "max_seq_length": None, "seed": 16},
    ),
    Case(
        "plain-transformers-short-positions",
        "bert-base-uncased",
        {
            "layout": "transformers",
            "max_seq_length": 512,
            "max_position_embeddings": 64,
            "seed": 17,
        },
    ),
    # no limit configured: the tokenizer's own 512
    Case("no-max-seq-length", "gte-base", {"max_seq_length": None, "seed": 18}),
    # lower-casing in front of a cased tokenizer, in both config formats
    Case("cased-tokenizer", "gte-base", {"cased_tokenizer": True, "seed": 19}),
    Case(
        "cased-tokenizer-do-lower-case",
        "gte-base",
        {"cased_tokenizer": True, "do_lower_case": True, "seed": 20},
    ),
    Case(
        "legacy-cased-tokenizer-do-lower-case",
        "gte-base",
        {"cased_tokenizer": True, "do_lower_case": True, "config_format": "legacy", "seed": 21},
    ),
    Case("uncased-tokenizer-do-lower-case", "gte-base", {"do_lower_case": True, "seed": 22}),
]


@dataclass(frozen=True)
class Compared:
    """Both sides' results for one case, computed once per module."""

    case: Case
    ours: np.ndarray
    ours_encoded: list[Encoded]
    ours_batches: int
    encoder: Encoder
    tokenizer: Tokenizer
    reference: np.ndarray
    reference_lengths: list[int]
    reference_ids: list[tuple[int, ...]]
    reference_max_seq_length: int
    reference_dimensions: int


def _load_ours(spec: ModelSpec, folder: Path) -> tuple[Tokenizer, Encoder]:
    tokenizer = load_tokenizer(spec, folder)
    assert not isinstance(tokenizer, ModelUnavailable), tokenizer
    encoder = NumpyEngine().load(spec, folder)
    assert not isinstance(encoder, ModelUnavailable), encoder
    return tokenizer, encoder


def mismatched_ids(ours: Sequence[Encoded], reference_ids: Sequence[tuple[int, ...]]) -> list[int]:
    """Indices of the texts whose token ids differ from the reference's."""
    return [
        n
        for n, (mine, theirs) in enumerate(zip(ours, reference_ids, strict=True))
        if mine.ids != theirs
    ]


def reference_token_ids(model: Any, texts: list[str]) -> list[tuple[int, ...]]:
    """The token ids sentence-transformers feeds its model for each text, padding removed
    (on whichever side the tokenizer pads: Gemma's pads on the left)."""
    features = model.preprocess(texts)
    return [
        tuple(int(i) for i, real in zip(row, mask, strict=True) if real)
        for row, mask in zip(features["input_ids"], features["attention_mask"], strict=True)
    ]


def embed_like_the_server(
    tokenizer: Tokenizer, encoder: Encoder, texts: Sequence[str]
) -> tuple[np.ndarray, list[Encoded], int]:
    """Tokenize, bucket by length under TOKEN_BUDGET, pad, embed, and put rows back in order.
    An encoder that keeps shapes (OpenVINO's) gets its passes padded as the server pads them,
    to `pass_length` under the model's limit."""
    encoded = tokenizer.encode(texts)
    rows = [e.ids for e in encoded]
    length = pass_lengths(encoder, tokenizer.max_tokens)
    lengths = [len(r) if length is None else length(len(r)) for r in rows]
    plan = plan_batches(lengths, TOKEN_BUDGET, MAX_BATCH)
    out = np.full((len(rows), encoder.dimensions), np.nan, dtype=np.float32)
    for batch in plan:
        ids, mask = pad([rows[i] for i in batch], length=length)
        out[batch] = encoder.embed(ids, mask)
    return out, encoded, len(plan)


def _folder(case: Case, factory: pytest.TempPathFactory) -> Path:
    if case.factory is None:
        return minilm_folder()
    return write_bert_model(factory.mktemp(case.id), **case.factory)


@pytest.fixture(scope="module", params=CASES, ids=[c.id for c in CASES])
def compared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Compared:
    case: Case = request.param
    folder = _folder(case, tmp_path_factory)
    tokenizer, encoder = _load_ours(case.spec, folder)
    ours, encoded, batches = embed_like_the_server(tokenizer, encoder, VARIED_TEXTS)

    model = reference_model(folder)
    reference = model.encode(VARIED_TEXTS, batch_size=32, convert_to_numpy=True)
    ids = reference_token_ids(model, VARIED_TEXTS)
    lengths = [len(row) for row in ids]
    return Compared(
        case=case,
        ours=ours,
        ours_encoded=encoded,
        ours_batches=batches,
        encoder=encoder,
        tokenizer=tokenizer,
        reference=np.asarray(reference, dtype=np.float32),
        reference_lengths=lengths,
        reference_ids=ids,
        reference_max_seq_length=int(model.max_seq_length or 0),
        reference_dimensions=int(model.get_embedding_dimension() or 0),
    )


def scaled_abs_diff(ours: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """|ours - reference| per component, over max(1, the reference row's largest |component|)."""
    scale = np.maximum(np.abs(reference).max(axis=1, keepdims=True), 1.0)
    scaled: np.ndarray = np.abs(ours - reference) / scale
    return scaled


def _worst(diff: np.ndarray) -> str:
    row = int(np.argmax(diff.max(axis=1)))
    return f"scaled abs diff {diff.max():.3g} at text {row}: {VARIED_TEXTS[row][:60]!r}"


@pytest.mark.reference
def test_embeddings_match_sentence_transformers(compared: Compared) -> None:
    """Every vector equals sentence-transformers' within MAX_ABS_DIFF per component (scaled)."""
    assert compared.ours_batches > 1  # the order was really restored across several batches
    assert compared.ours.shape == compared.reference.shape
    diff = scaled_abs_diff(compared.ours, compared.reference)
    assert diff.max() < MAX_ABS_DIFF, _worst(diff)


@pytest.mark.reference
def test_token_counts_match_sentence_transformers(compared: Compared) -> None:
    """Each text keeps as many tokens as sentence-transformers feeds its model after truncation."""
    ours = [len(e.ids) for e in compared.ours_encoded]
    mismatched = [
        (n, VARIED_TEXTS[n][:40], mine, theirs)
        for n, (mine, theirs) in enumerate(zip(ours, compared.reference_lengths, strict=True))
        if mine != theirs
    ]
    assert not mismatched


@pytest.mark.reference
def test_token_ids_match_sentence_transformers(compared: Compared) -> None:
    """Each text becomes exactly the token ids sentence-transformers feeds its model."""
    mismatched = mismatched_ids(compared.ours_encoded, compared.reference_ids)
    assert not mismatched, [VARIED_TEXTS[n][:40] for n in mismatched]


@pytest.mark.reference
def test_token_limit_matches_sentence_transformers(compared: Compared) -> None:
    """The tokenizer's limit is the max_seq_length sentence-transformers applies."""
    assert compared.tokenizer.max_tokens == compared.reference_max_seq_length


@pytest.mark.reference
def test_dimensions_match_sentence_transformers(compared: Compared) -> None:
    """The encoder reports the embedding width sentence-transformers reports."""
    assert compared.encoder.dimensions == compared.reference_dimensions
    assert compared.ours.shape[1] == compared.reference_dimensions


# --- batch invariance on the real model -------------------------------------------------------


@pytest.fixture(scope="module")
def minilm() -> tuple[Tokenizer, Encoder]:
    return _load_ours(_SPECS["all-MiniLM-L6-v2"], minilm_folder())


def _alone_and_in_batch(
    tokenizer: Tokenizer, encoder: Encoder, texts: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Each text as a batch of one, and all of them as one right-padded batch, unsorted."""
    rows = [e.ids for e in tokenizer.encode(texts)]
    together = encoder.embed(*pad(rows))
    alone = np.concatenate([encoder.embed(*pad([row])) for row in rows])
    return alone, together


_MIXED = [
    "",
    "a",
    "The quick brown fox jumps over the lazy dog.",
    "你好世界",
    "😀",
    "token " * 254,
    "   ",
    "https://example.com/path?query=1&other=two#fragment",
    "The committee reviewed the proposal carefully. " * 6,
    "مرحبا بالعالم",
]


def test_text_alone_equals_text_in_mixed_length_batch(minilm: tuple[Tokenizer, Encoder]) -> None:
    """A text embeds the same alone as inside one padded batch of very different lengths."""
    alone, together = _alone_and_in_batch(*minilm, _MIXED)
    assert np.abs(alone - together).max() < BATCH_INVARIANCE


_SHORT_TEXTS = [t for t in VARIED_TEXTS if len(t) < 120]


@settings(max_examples=25, deadline=None)
@given(texts=st.lists(st.sampled_from(_SHORT_TEXTS) | st.text(max_size=60), min_size=1, max_size=6))
def test_any_text_embeds_the_same_in_any_batch(
    minilm: tuple[Tokenizer, Encoder], texts: list[str]
) -> None:
    """For any batch of texts, each row equals that text embedded on its own."""
    alone, together = _alone_and_in_batch(*minilm, texts)
    assert np.abs(alone - together).max() < BATCH_INVARIANCE
