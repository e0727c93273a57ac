"""Gemma 3's config.json readings, without a reference library (tests/parity checks them
against transformers' Gemma3TextConfig)."""

from __future__ import annotations

from typing import Any

import pytest

from domain.architectures.gemma3 import Gemma3Config, LayerType

_S, _F = LayerType.SLIDING, LayerType.FULL
# google/embeddinggemma-300m's config.json (tests/model_factory_gemma3.py says which keys are
# confirmed)
_EMBEDDINGGEMMA: dict[str, Any] = {
    "_sliding_window_pattern": 6,
    "architectures": ["Gemma3TextModel"],
    "attention_bias": False,
    "attn_logit_softcapping": None,
    "final_logit_softcapping": None,
    "head_dim": 256,
    "hidden_activation": "gelu_pytorch_tanh",
    "hidden_size": 768,
    "intermediate_size": 1152,
    "layer_types": [_S.value] * 5 + [_F.value] + [_S.value] * 5 + [_F.value],
    "max_position_embeddings": 2048,
    "model_type": "gemma3_text",
    "num_attention_heads": 3,
    "num_hidden_layers": 12,
    "num_key_value_heads": 1,
    "query_pre_attn_scalar": 256,
    "rms_norm_eps": 1e-06,
    "rope_local_base_freq": 10000.0,
    "rope_scaling": None,
    "rope_theta": 1000000.0,
    "sliding_window": 512,
    "use_bidirectional_attention": True,
    "vocab_size": 262144,
}


def test_embeddinggemma_reads_with_its_window_halved_and_two_rotary_bases() -> None:
    """sliding_window 512 is keys within 256 positions; full layers rotate with rope_theta,
    sliding ones with rope_local_base_freq; scores scale by query_pre_attn_scalar ** -0.5."""
    cfg = Gemma3Config.from_json(_EMBEDDINGGEMMA)
    assert cfg.window == 257
    assert cfg.rope_theta == {_F: 1_000_000.0, _S: 10_000.0}
    assert cfg.scale == 256**-0.5
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim) == (3, 1, 256)
    assert cfg.layer_types.count(_F) == 2
    assert cfg.max_tokens == 2048


def test_transformers_5_rope_parameters_are_read_per_layer_type() -> None:
    """What transformers 5 writes instead of rope_theta and rope_local_base_freq."""
    raw = {k: v for k, v in _EMBEDDINGGEMMA.items() if not k.startswith("rope_")}
    raw["rope_parameters"] = {
        "full_attention": {"rope_type": "default", "rope_theta": 5.0},
        "sliding_attention": {"rope_type": "default", "rope_theta": 7.0},
    }
    assert Gemma3Config.from_json(raw).rope_theta == {_F: 5.0, _S: 7.0}


def test_without_layer_types_every_sixth_layer_is_full() -> None:
    """Gemma3TextConfig's fill-in, from sliding_window_pattern (6 unless written)."""
    raw = {k: v for k, v in _EMBEDDINGGEMMA.items() if k != "layer_types"}
    assert Gemma3Config.from_json(raw).layer_types == (_S,) * 5 + (_F,) + (_S,) * 5 + (_F,)
    three = Gemma3Config.from_json({**raw, "sliding_window_pattern": 3}).layer_types
    assert three == (_S, _S, _F) * 4


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"model_type": "gemma3"}, "model_type"),
        ({"use_bidirectional_attention": False}, "causal"),
        ({"hidden_activation": "gelu"}, "hidden_activation"),
        ({"attn_logit_softcapping": 50.0}, "softcapping"),
        ({"attention_bias": True}, "attention_bias"),
        ({"rope_scaling": {"rope_type": "linear", "factor": 8.0}}, "rope_scaling"),
        (
            {"rope_parameters": {"full_attention": {"rope_type": "yarn", "factor": 4.0}}},
            "rope_type",
        ),
        ({"rope_parameters": {"rope_type": "default", "rope_theta": 1.0}}, "per layer type"),
        ({"layer_types": ["chunked_attention"] * 12}, "layer_types"),
        ({"layer_types": ["full_attention"]}, "layer_types"),
        ({"num_key_value_heads": 2}, "num_key_value_heads"),
        ({"sliding_window": None}, "sliding_window"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_gemma3_configs_this_forward_pass_cannot_run_are_refused(
    change: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        Gemma3Config.from_json({**_EMBEDDINGGEMMA, **change})
