"""NomicBERT's config.json read in both spellings, its unimplemented variants refused by name,
and the repo description (width, token limit) from Nomic's names."""

from __future__ import annotations

from typing import Any

import pytest

from domain.architectures.nomic_bert import NomicBertConfig
from domain.errors import ModelUnavailable
from domain.models import Family, ModelSpec, PoolingMode
from domain.repo_configs import describe_repo

# nomic-embed-text-v1.5's config.json, the keys that matter
NOMIC: dict[str, Any] = {
    "architectures": ["NomicBertModel"],
    "auto_map": {"AutoModel": "nomic-ai/nomic-bert-2048--modeling_hf_nomic_bert.NomicBertModel"},
    "model_type": "nomic_bert",
    "activation_function": "swiglu",
    "n_embd": 768,
    "n_layer": 12,
    "n_head": 12,
    "n_inner": 3072,
    "n_positions": 8192,
    "max_trained_positions": 2048,
    "layer_norm_epsilon": 1e-12,
    "rotary_emb_base": 1000,
    "rotary_emb_fraction": 1.0,
    "rotary_emb_interleaved": False,
    "rotary_scaling_factor": None,
    "prenorm": False,
    "qkv_proj_bias": False,
    "mlp_fc1_bias": False,
    "mlp_fc2_bias": False,
    "type_vocab_size": 2,
    "vocab_size": 30528,
}
# the same model as transformers 5 writes its config.json
TRANSFORMERS: dict[str, Any] = {
    "architectures": ["NomicBertModel"],
    "model_type": "nomic_bert",
    "hidden_act": "silu",
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "head_dim": 64,
    "intermediate_size": 3072,
    "max_position_embeddings": 8192,
    "layer_norm_eps": 1e-12,
    "rope_parameters": {"rope_theta": 1000.0, "rope_type": "default"},
    "type_vocab_size": 2,
    "vocab_size": 30528,
}
EXPECTED = NomicBertConfig(
    vocab_size=30528,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=3072,
    max_position_embeddings=8192,
    type_vocab_size=2,
    layer_norm_eps=1e-12,
    rotary_base=1000.0,
    rotary_dims=64,
)


@pytest.mark.parametrize("raw", [NOMIC, TRANSFORMERS], ids=["nomic-names", "transformers-names"])
def test_both_spellings_read_as_one_config(raw: dict[str, Any]) -> None:
    """Nomic's GPT-style names and transformers' BERT-style names give the same settings."""
    assert NomicBertConfig.from_json(raw) == EXPECTED


def test_a_rotary_fraction_rotates_that_part_of_each_head() -> None:
    assert NomicBertConfig.from_json(NOMIC | {"rotary_emb_fraction": 0.5}).rotary_dims == 32


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"rotary_emb_interleaved": True}, "rotary_emb_interleaved"),
        ({"rotary_scaling_factor": 2}, "rotary_scaling_factor"),
        ({"prenorm": True}, "prenorm"),
        ({"parallel_block": True}, "parallel_block"),
        ({"use_rms_norm": True}, "use_rms_norm"),
        ({"causal": True}, "causal"),
        ({"qkv_proj_bias": True}, "qkv_proj_bias"),
        ({"mlp_fc1_bias": True}, "mlp_fc1_bias"),
        ({"mlp_fc2_bias": True}, "mlp_fc2_bias"),
        ({"moe_every_n_layers": 2, "num_experts": 8}, "mixture-of-experts"),
        ({"activation_function": "gelu"}, "SwiGLU"),
        ({"rotary_emb_fraction": 0.0}, "rotary_emb_fraction"),
        ({"model_type": "bert"}, "not NomicBERT"),
        ({"n_head": 5}, "heads"),
    ],
)
def test_a_variant_not_implemented_is_refused_by_name(change: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        NomicBertConfig.from_json(NOMIC | change)


def test_a_rope_type_other_than_default_is_refused() -> None:
    dynamic = TRANSFORMERS | {"rope_parameters": {"rope_type": "dynamic", "factor": 2.0}}
    with pytest.raises(ValueError, match="rope_type 'dynamic'"):
        NomicBertConfig.from_json(dynamic)


def test_the_repo_is_described_from_nomics_names() -> None:
    """Width n_embd, the limit max_seq_length under n_positions, the Pooling module's mode;
    the auto_map beside NomicBertModel runs as ours."""
    configs = {
        "config.json": NOMIC,
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {
                "idx": 1,
                "name": "1",
                "path": "1_Pooling",
                "type": "sentence_transformers.models.Pooling",
            },
        ],
        "1_Pooling/config.json": {"pooling_mode_mean_tokens": True},
        "sentence_bert_config.json": {"max_seq_length": 8192},
    }
    repo = "nomic-ai/nomic-embed-text-v1.5"
    described = describe_repo(repo, repo, "main", configs)
    assert described == ModelSpec(repo, repo, Family.NOMIC_BERT, 768, 8192, PoolingMode.MEAN)
    unbounded = describe_repo(repo, repo, "main", {"config.json": NOMIC})
    assert isinstance(unbounded, ModelSpec)
    assert unbounded.max_tokens == 8192  # n_positions, not BERT's default 512


def test_a_variant_is_refused_from_config_json_before_any_weight() -> None:
    """nomic-embed-text-v2-moe names NomicBertModel too: its experts are refused at describe."""
    repo = "nomic-ai/nomic-embed-text-v2-moe"
    moe = NOMIC | {"moe_every_n_layers": 2, "num_experts": 8}
    refused = describe_repo(repo, repo, "main", {"config.json": moe})
    assert isinstance(refused, ModelUnavailable)
    assert "mixture-of-experts" in refused.message
