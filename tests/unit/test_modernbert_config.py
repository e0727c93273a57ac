"""ModernBERT's config.json, read in the hub's spelling and in transformers 5's, and the variants
this forward pass does not run refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from domain.architectures.modernbert import GLOBAL, LOCAL, ModernBertConfig

# gte-modernbert-base's keys that matter, at its sizes (the hub's spelling)
_HUB: dict[str, Any] = {
    "architectures": ["ModernBertModel"],
    "model_type": "modernbert",
    "vocab_size": 50368,
    "hidden_size": 768,
    "num_hidden_layers": 22,
    "num_attention_heads": 12,
    "intermediate_size": 1152,
    "max_position_embeddings": 8192,
    "hidden_activation": "gelu",
    "global_attn_every_n_layers": 3,
    "global_rope_theta": 160000.0,
    "local_rope_theta": 10000.0,
    "local_attention": 128,
    "layer_norm_eps": 1e-05,
    "norm_eps": 1e-05,
    "attention_bias": False,
    "mlp_bias": False,
    "norm_bias": False,
}


def test_the_hub_spelling_puts_a_global_layer_first_and_every_third() -> None:
    """Layers 0, 3, ..., 21 are global with base 160000; the rest local with base 10000 and a
    window reaching 64 tokens each way."""
    cfg = ModernBertConfig.from_json(_HUB)
    globals_ = [n for n, kind in enumerate(cfg.layer_types) if kind == GLOBAL]
    assert globals_ == list(range(0, 22, 3))
    assert (cfg.base(0), cfg.window(0)) == (160000.0, None)
    assert (cfg.base(1), cfg.window(1)) == (10000.0, 65)


def test_transformers_spelling_reads_layer_types_and_rope_parameters_over_the_old_keys() -> None:
    """transformers 5 writes layer_types and a rope_theta per layer type; those win."""
    raw = {
        **_HUB,
        "layer_types": [LOCAL, GLOBAL] * 11,
        "rope_parameters": {
            GLOBAL: {"rope_type": "default", "rope_theta": 5.0},
            LOCAL: {"rope_type": "default", "rope_theta": 7.0},
        },
    }
    cfg = ModernBertConfig.from_json(raw)
    assert cfg.layer_types[:2] == (LOCAL, GLOBAL)
    assert (cfg.base(0), cfg.base(1)) == (7.0, 5.0)


def test_absent_keys_take_transformers_defaults() -> None:
    """No attention pattern, bases or window: a global layer every 3, 160000 / 10000, 128."""
    left_out = {
        "global_attn_every_n_layers",
        "global_rope_theta",
        "local_rope_theta",
        "local_attention",
        "norm_eps",
    }
    raw = {k: v for k, v in _HUB.items() if k not in left_out}
    cfg = ModernBertConfig.from_json(raw)
    assert cfg == ModernBertConfig.from_json(_HUB)


@pytest.mark.parametrize(
    "change",
    [
        {"model_type": "bert"},
        {"hidden_activation": "silu"},
        {"attention_bias": True},
        {"mlp_bias": True},
        {"norm_bias": True},
        {"rope_scaling": {"rope_type": "linear", "factor": 2.0}},
        {"rope_parameters": {GLOBAL: {"rope_type": "yarn", "rope_theta": 1.0}}},
        {"rope_parameters": {"rope_type": "default", "rope_theta": 1.0}},
        {"layer_types": [GLOBAL] * 3},
        {"layer_types": ["chunked_attention"] * 22},
        {"global_attn_every_n_layers": 0},
        {"num_attention_heads": 7},
    ],
    ids=lambda change: next(iter(change)),
)
def test_configs_this_forward_pass_cannot_run_are_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"."):
        ModernBertConfig.from_json({**_HUB, **change})
