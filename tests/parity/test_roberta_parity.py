"""The numpy engine and our tokenizer against sentence-transformers, on RoBERTa-family folders.

The same comparison as tests/parity/test_bert_parity.py (whose server-like embedding loop and
scaled difference it reuses), on small random-weight RoBERTa and XLM-RoBERTa models from
tests/model_factory_roberta.py: byte-level BPE and Unigram tokenizers, fairseq positions
(padding_idx + 1 onwards), a 514-row position table, checkpoints with and without `roberta.`.
The texts are the shared corpus plus the tokenizers' own special tokens written out as text,
which they turn into those tokens' ids: a literal "<pad>" is id 1, whose position transformers
leaves at padding_idx.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest

from adapters.engines.numpy_ref import NumpyEngine, NumpyOps
from adapters.tokenizers.hf_tokenizer import load_tokenizer
from application.batching import pad
from application.catalogue import CATALOGUE
from domain.errors import ModelUnavailable
from domain.models import Family
from tests.corpus import VARIED_TEXTS
from tests.model_factory import reference_model
from tests.model_factory_roberta import write_roberta_model
from tests.parity.test_bert_parity import (
    embed_like_the_server,
    mismatched_ids,
    reference_token_ids,
    scaled_abs_diff,
)
from tests.tolerances import BATCH_INVARIANCE, MAX_ABS_DIFF

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from domain.models import ModelSpec
    from domain.ports import Encoded, Encoder, Tokenizer

_SPECS = {spec.name: spec for spec in CATALOGUE if spec.tag == "latest"}

TEXTS = [
    *VARIED_TEXTS,
    "<pad>",
    "a <pad> b <pad><pad> c",
    "<s> inside </s> the text",
    "fill in the <mask> please",
    "an <unk> word",
]

# what a 514-row position table holds when positions start at padding_idx + 1 = 2
ROBERTA_POSITIONS = 512


@dataclass(frozen=True)
class Case:
    id: str
    spec_name: str
    factory: dict[str, Any] = field(default_factory=dict)
    # sentence-transformers cannot run this folder past the position table (it reports 514 and
    # fails on longer inputs): the reference runs with its limit set to what the table holds
    reference_limit: int | None = None

    @property
    def spec(self) -> ModelSpec:
        return _SPECS[self.spec_name]


_R, _X = {"flavour": "roberta"}, {"flavour": "xlm-roberta"}
_PLAIN = {"layout": "transformers", "prefixed": True}

CASES = [
    # sentence-transformers layout: pooling and Normalize from its own config
    Case("roberta-mean-normalized", "roberta-base", {**_R, "normalize": True, "seed": 31}),
    Case("roberta-cls", "roberta-base", {**_R, "pooling": "cls", "seed": 32}),
    Case("roberta-max+mean", "roberta-base", {**_R, "pooling": ["max", "mean"], "seed": 33}),
    # FacebookAI/roberta-base: RobertaForMaskedLM keys (`roberta.` + lm_head), mean by default
    Case(
        "roberta-plain-prefixed",
        "roberta-base",
        {**_R, **_PLAIN, "max_seq_length": 512, "seed": 30},
    ),
    Case(
        "roberta-plain-no-model-max-length",
        "roberta-base",
        {**_R, **_PLAIN, "max_seq_length": None, "seed": 34},
        reference_limit=ROBERTA_POSITIONS,
    ),
    # paraphrase-multilingual-mpnet-base-v2: XLM-R in the legacy sentence-transformers files
    Case(
        "xlmr-legacy-mean-128",
        "paraphrase-multilingual-mpnet-base-v2",
        {**_X, "config_format": "legacy", "max_seq_length": 128, "seed": 41},
    ),
    Case(
        "xlmr-mean-normalized",
        "xlm-roberta-base-multilingual-en-ar-fr-de-es-tr-it",
        {**_X, "normalize": True, "max_seq_length": 512, "seed": 42},
    ),
    Case("xlmr-cls", "xlm-roberta-base", {**_X, "pooling": "cls", "seed": 43}),
    # FacebookAI/xlm-roberta-base: XLMRobertaForMaskedLM keys
    Case(
        "xlmr-plain-prefixed",
        "xlm-roberta-base",
        {**_X, **_PLAIN, "max_seq_length": 512, "seed": 44},
    ),
    Case(
        "xlmr-plain-no-tokenizer-config",
        "xlm-roberta-base",
        {**_X, **_PLAIN, "max_seq_length": None, "tokenizer_config": False, "seed": 46},
        reference_limit=ROBERTA_POSITIONS,
    ),
    Case(
        "xlmr-plain-no-model-max-length",
        "xlm-roberta-base",
        {**_X, **_PLAIN, "max_seq_length": None, "seed": 45},
        reference_limit=ROBERTA_POSITIONS,
    ),
]


@dataclass(frozen=True)
class Compared:
    case: Case
    ours: np.ndarray
    ours_encoded: list[Encoded]
    ours_batches: int
    encoder: Encoder
    tokenizer: Tokenizer
    reference: np.ndarray
    reference_ids: list[tuple[int, ...]]
    reference_max_seq_length: int
    reference_dimensions: int


def _load_ours(spec: ModelSpec, folder: Path) -> tuple[Tokenizer, Encoder]:
    tokenizer = load_tokenizer(spec, folder)
    assert not isinstance(tokenizer, ModelUnavailable), tokenizer
    encoder = NumpyEngine().load(spec, folder)
    assert not isinstance(encoder, ModelUnavailable), encoder
    return tokenizer, encoder


@pytest.fixture(scope="module", params=CASES, ids=[c.id for c in CASES])
def compared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Compared:
    case: Case = request.param
    folder = write_roberta_model(tmp_path_factory.mktemp(case.id), **case.factory)
    tokenizer, encoder = _load_ours(case.spec, folder)
    ours, encoded, batches = embed_like_the_server(tokenizer, encoder, TEXTS)

    model = reference_model(folder)
    reported = int(model.max_seq_length or 0)
    if case.reference_limit is not None:
        model.max_seq_length = case.reference_limit
    reference = model.encode(TEXTS, batch_size=32, convert_to_numpy=True)
    ids = reference_token_ids(model, TEXTS)
    return Compared(
        case=case,
        ours=ours,
        ours_encoded=encoded,
        ours_batches=batches,
        encoder=encoder,
        tokenizer=tokenizer,
        reference=np.asarray(reference, dtype=np.float32),
        reference_ids=ids,
        reference_max_seq_length=reported,
        reference_dimensions=int(model.get_embedding_dimension() or 0),
    )


def _worst(diff: np.ndarray) -> str:
    row = int(np.argmax(diff.max(axis=1)))
    return f"scaled abs diff {diff.max():.3g} at text {row}: {TEXTS[row][:60]!r}"


@pytest.mark.reference
def test_embeddings_match_sentence_transformers(compared: Compared) -> None:
    """Every vector equals sentence-transformers' within MAX_ABS_DIFF per component (scaled)."""
    assert compared.ours_batches > 1
    assert compared.ours.shape == compared.reference.shape
    diff = scaled_abs_diff(compared.ours, compared.reference)
    assert diff.max() < MAX_ABS_DIFF, _worst(diff)


@pytest.mark.reference
def test_token_ids_match_sentence_transformers(compared: Compared) -> None:
    """Each text becomes exactly the token ids sentence-transformers feeds its model."""
    mismatched = mismatched_ids(compared.ours_encoded, compared.reference_ids)
    assert not mismatched, [TEXTS[n][:40] for n in mismatched]


@pytest.mark.reference
def test_some_texts_are_cut_at_the_limit(compared: Compared) -> None:
    """The corpus reaches past every case's limit, so truncation is part of the comparison."""
    assert any(e.truncated for e in compared.ours_encoded)
    assert max(len(e.ids) for e in compared.ours_encoded) == compared.tokenizer.max_tokens


@pytest.mark.reference
def test_token_limit_is_sentence_transformers_within_the_position_table(
    compared: Compared,
) -> None:
    """sentence-transformers' max_seq_length, but never past the last position row (512)."""
    expected = min(compared.reference_max_seq_length, ROBERTA_POSITIONS)
    assert compared.tokenizer.max_tokens == expected


@pytest.mark.reference
def test_dimensions_match_sentence_transformers(compared: Compared) -> None:
    assert compared.encoder.dimensions == compared.reference_dimensions


# --- the token limit of a repo that states none -------------------------------------------------


@pytest.mark.reference
@pytest.mark.parametrize("flavour", ["roberta", "xlm-roberta"])
def test_sentence_transformers_runs_past_the_position_table_where_we_stop(
    flavour: str, tmp_path: Path
) -> None:
    """Without model_max_length, sentence-transformers allows max_position_embeddings (514)
    tokens, and its model fails on anything past 512; we stop at 512."""
    folder = write_roberta_model(
        tmp_path, flavour=flavour, layout="transformers", max_seq_length=None
    )
    model = reference_model(folder)
    assert model.max_seq_length == 514
    with pytest.raises((IndexError, RuntimeError)):
        model.encode(["word " * 600])
    tokenizer, _ = _load_ours(_SPECS[f"{flavour}-base"], folder)
    assert tokenizer.max_tokens == ROBERTA_POSITIONS


# --- positions ---------------------------------------------------------------------------------


@pytest.mark.reference
def test_positions_equal_transformers_on_a_padded_batch() -> None:
    """make_positions gives create_position_ids_from_input_ids' numbers, whatever id pads."""
    import torch
    from transformers.models.roberta.modeling_roberta import RobertaEmbeddings

    padding_idx = 1
    rows = [[0, 5, 6, 7, 2], [0, 9, 2], [0, 1, 8, 1, 2], [0, 2]]  # row 3 has "<pad>" as text
    ids, mask = pad(rows)  # our batcher pads with 0
    theirs_ids = np.where(mask > 0, ids, padding_idx)  # transformers pads with pad_token_id
    expected = RobertaEmbeddings.create_position_ids_from_input_ids(
        torch.from_numpy(theirs_ids), padding_idx
    ).numpy()
    ours = NumpyOps().make_positions(ids, mask, padding_idx)
    np.testing.assert_array_equal(ours, expected)
    np.testing.assert_array_equal(NumpyOps().make_positions(theirs_ids, mask, padding_idx), ours)


# --- padding ------------------------------------------------------------------------------------

_MIXED = [
    "",
    "a",
    "The quick brown fox jumps over the lazy dog.",
    "你好世界",
    "😀",
    "token " * 300,
    "   ",
    "a <pad> b",
    "The committee reviewed the proposal carefully. " * 6,
    "مرحبا بالعالم",
]


@pytest.fixture(scope="module", params=["roberta", "xlm-roberta"])
def small_model(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Tokenizer, Encoder]:
    flavour = request.param
    folder = write_roberta_model(
        tmp_path_factory.mktemp(flavour), flavour=flavour, max_seq_length=512, seed=50
    )
    spec = _SPECS["roberta-base" if flavour == "roberta" else "xlm-roberta-base"]
    return _load_ours(spec, folder)


def _rows(tokenizer: Tokenizer, texts: Sequence[str]) -> list[tuple[int, ...]]:
    return [e.ids for e in tokenizer.encode(texts)]


def test_text_alone_equals_text_in_mixed_length_batch(
    small_model: tuple[Tokenizer, Encoder],
) -> None:
    """A text embeds the same alone as inside one right-padded batch of very different lengths:
    positions count real tokens only, and pads are never attended to."""
    tokenizer, encoder = small_model
    rows = _rows(tokenizer, _MIXED)
    together = encoder.embed(*pad(rows))
    alone = np.concatenate([encoder.embed(*pad([row])) for row in rows])
    assert np.abs(alone - together).max() < BATCH_INVARIANCE


def test_the_id_that_pads_does_not_matter(small_model: tuple[Tokenizer, Encoder]) -> None:
    """Our batcher pads with id 0 (<s>), RoBERTa with 1 (<pad>): the vectors are the same."""
    tokenizer, encoder = small_model
    ids, mask = pad(_rows(tokenizer, _MIXED))
    as_roberta_pads = np.where(mask > 0, ids, 1)
    assert (
        np.abs(encoder.embed(ids, mask) - encoder.embed(as_roberta_pads, mask)).max()
        < BATCH_INVARIANCE
    )


def test_the_numpy_engine_runs_both_families() -> None:
    assert {Family.ROBERTA, Family.XLM_ROBERTA} <= NumpyEngine().families
