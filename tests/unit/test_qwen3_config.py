"""Qwen3's config.json readings: the published keys, transformers 5's, and the refusals."""

from __future__ import annotations

from typing import Any

import pytest

from domain.architectures.qwen3 import Qwen3Config

# Qwen/Qwen3-Embedding-0.6B's config.json, as tests/model_factory_qwen3.py reconstructs it
PUBLISHED: dict[str, Any] = {
    "architectures": ["Qwen3ForCausalLM"],
    "attention_bias": False,
    "head_dim": 128,
    "hidden_act": "silu",
    "hidden_size": 1024,
    "intermediate_size": 3072,
    "max_position_embeddings": 32768,
    "max_window_layers": 28,
    "model_type": "qwen3",
    "num_attention_heads": 16,
    "num_hidden_layers": 28,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 1000000,
    "sliding_window": None,
    "use_sliding_window": False,
    "vocab_size": 151669,
}


def test_published_config_reads_as_grouped_query_attention_with_its_own_head_dim() -> None:
    """16 query heads over 8 key/value heads of 128, beside a hidden size of 1024."""
    cfg = Qwen3Config.from_json(PUBLISHED)
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim) == (16, 8, 128)
    assert cfg.rope_theta == 1e6
    assert cfg.windows == (None,) * 28
    assert cfg.max_tokens == 32768


def test_transformers_5_rope_parameters_give_the_base() -> None:
    """transformers 5 saves the base inside rope_parameters, not as rope_theta."""
    raw = {k: v for k, v in PUBLISHED.items() if k not in {"rope_theta", "rope_scaling"}}
    raw["rope_parameters"] = {"rope_type": "default", "rope_theta": 5e5}
    assert Qwen3Config.from_json(raw).rope_theta == 5e5


def test_sliding_window_applies_from_max_window_layers_on() -> None:
    """With use_sliding_window, the layers from max_window_layers on slide, as Qwen3Config says."""
    raw = {**PUBLISHED, "num_hidden_layers": 4, "max_window_layers": 2}
    raw |= {"use_sliding_window": True, "sliding_window": 64}
    assert Qwen3Config.from_json(raw).windows == (None, None, 64, 64)
    # without use_sliding_window, a sliding_window value changes nothing
    assert Qwen3Config.from_json({**raw, "use_sliding_window": False}).windows == (None,) * 4


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "rope_type 'yarn'"),
        ({"hidden_act": "gelu"}, "hidden_act 'gelu'"),
        ({"model_type": "qwen2"}, "not Qwen3"),
        ({"num_key_value_heads": 5}, "multiple of num_key_value_heads"),
        ({"layer_types": ["sliding_attention"] * 28}, "no sliding_window"),
        ({"rope_parameters": {"rope_theta": 1e6, "partial_rotary_factor": 0.5}}, "partial"),
    ],
)
def test_variants_not_implemented_are_refused(change: dict[str, Any], words: str) -> None:
    """A config this forward pass would misread is refused with a reason, never run."""
    with pytest.raises(ValueError, match=words):
        Qwen3Config.from_json({**PUBLISHED, **change})
