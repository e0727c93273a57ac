"""RoBERTa's config.json reading and its position numbering, without a reference library."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from adapters.engines.numpy_ref import NumpyOps
from domain.architectures.roberta import RobertaConfig

_CONFIG: dict[str, Any] = {
    "model_type": "xlm-roberta",
    "vocab_size": 250002,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "layer_norm_eps": 1e-5,
    "pad_token_id": 1,
}


def test_a_514_row_position_table_holds_512_tokens() -> None:
    cfg = RobertaConfig.from_json(_CONFIG)
    assert (cfg.padding_idx, cfg.max_tokens) == (1, 512)
    assert cfg.encoder.type_vocab_size == 1


@pytest.mark.parametrize(
    "change",
    [{"model_type": "bert"}, {"pad_token_id": None}, {"max_position_embeddings": 2}],
    ids=["not-roberta", "no-pad-token", "no-room-after-padding-idx"],
)
def test_configs_this_forward_pass_cannot_run_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"model_type|pad_token_id|position"):
        RobertaConfig.from_json({**_CONFIG, **change})


def test_positions_start_after_padding_idx_and_skip_pads() -> None:
    ids = np.array([[0, 7, 8, 2, 0, 0], [0, 1, 9, 2, 0, 0], [0, 2, 0, 0, 0, 0]])
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]])
    expected = [[2, 3, 4, 5, 1, 1], [2, 1, 3, 4, 1, 1], [2, 3, 1, 1, 1, 1]]  # id 1 is <pad>
    np.testing.assert_array_equal(NumpyOps().make_positions(ids, mask, 1), expected)
