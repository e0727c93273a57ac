"""DistilBERT's and MPNet's config.json readings, without a reference library."""

from __future__ import annotations

from typing import Any

import pytest

from domain.architectures.distilbert import DistilBertConfig
from domain.architectures.mpnet import MPNetConfig

# sentence-transformers/msmarco-distilbert-base-v4's config.json, as published
_DISTILBERT: dict[str, Any] = {
    "model_type": "distilbert",
    "activation": "gelu",
    "dim": 768,
    "hidden_dim": 3072,
    "n_heads": 12,
    "n_layers": 6,
    "max_position_embeddings": 512,
    "sinusoidal_pos_embds": False,
    "vocab_size": 30522,
}
# sentence-transformers/all-mpnet-base-v2's config.json, as published
_MPNET: dict[str, Any] = {
    "model_type": "mpnet",
    "hidden_act": "gelu",
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "max_position_embeddings": 514,
    "relative_attention_num_buckets": 32,
    "layer_norm_eps": 1e-5,
    "vocab_size": 30527,
    "pad_token_id": 1,
}


def test_distilbert_reads_as_bert_with_its_own_names_and_fixed_eps() -> None:
    """dim, n_layers, n_heads, hidden_dim are BERT's sizes; LayerNorm eps is 1e-12 in code."""
    encoder = DistilBertConfig.from_json(_DISTILBERT).encoder
    assert (encoder.hidden_size, encoder.num_hidden_layers, encoder.num_attention_heads) == (
        768,
        6,
        12,
    )
    assert (encoder.intermediate_size, encoder.layer_norm_eps) == (3072, 1e-12)
    assert DistilBertConfig.from_json(_DISTILBERT).max_tokens == 512


@pytest.mark.parametrize(
    "change",
    [
        {"model_type": "bert"},
        {"activation": "relu"},
        {"sinusoidal_pos_embds": True},
        {"dim": 770},
    ],
    ids=["not-distilbert", "relu", "sinusoidal-positions", "heads-do-not-divide"],
)
def test_distilbert_configs_this_forward_pass_cannot_run_are_refused(
    change: dict[str, Any],
) -> None:
    with pytest.raises(ValueError, match=r"model_type|activation|sinusoidal|multiple"):
        DistilBertConfig.from_json({**_DISTILBERT, **change})


def test_an_mpnet_514_row_position_table_holds_512_tokens() -> None:
    """Positions start at padding_idx + 1 = 2, as RoBERTa's."""
    assert MPNetConfig.from_json(_MPNET).max_tokens == 512


@pytest.mark.parametrize(
    "change",
    [
        {"model_type": "roberta"},
        {"hidden_act": "relu"},
        {"relative_attention_num_buckets": 16},
        {"max_position_embeddings": 2},
    ],
    ids=["not-mpnet", "relu", "fewer-buckets-than-read", "no-room-after-padding-idx"],
)
def test_mpnet_configs_this_forward_pass_cannot_run_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"model_type|hidden_act|buckets|position"):
        MPNetConfig.from_json({**_MPNET, **change})
