"""NomicBERT (Nussbaum et al. 2024, nomic-embed-text) as a sentence encoder: BERT's post-LN
layers with rotary positions instead of a position table, a SwiGLU MLP, and no biases.

As transformers' NomicBertModel (models/nomic_bert) computes it:
- embeddings are words plus token type 0, then LayerNorm (`emb_ln`); no positions are added:
  each layer rotates its queries and keys instead (rotate-half form, positions 0..T-1);
- each layer is post-norm: x = norm1(x + attention(x)); x = norm2(x + mlp(x));
- the MLP is SwiGLU: fc2(fc11(x) · silu(fc12(x))), fc11 the up and fc12 the gate projection
  (transformers' conversion_mapping.py "nomic_bert" entry);
- queries, keys and values come from one fused `attn.Wqkv` [3·H, H], split here at load.

The published repos (nomic-ai/nomic-embed-text-v1.5, Snowflake/snowflake-arctic-embed-m-long)
write config.json with the names of Nomic's own NomicBertConfig (GPT-2 style: n_embd, n_layer,
n_head, n_inner, n_positions, layer_norm_epsilon, activation_function, rotary_emb_*, and one
flag per bias); transformers' NomicBertConfig writes BERT's names (hidden_size, ...,
rope_parameters). Both are read. Nomic's variants that neither published repo uses, and that
transformers 5.24 does not implement (so no reference checks them), are refused by name:
pre-norm and parallel blocks, RMSNorm, causal attention, interleaved rotary, dynamic NTK
rotary scaling, mixture-of-experts layers (nomic-embed-text-v2-moe), biases.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from domain.architectures.checkpoint import CheckpointTensors
from domain.ops import Array, Linear, Norm, Ops, T
from domain.sentence_head import SentenceHead, sentence_vector

__all__ = [
    "NomicBertConfig",
    "NomicBertModel",
    "NomicBertWeights",
    "load_nomic_bert_weights",
    "nomic_bert_sentence_embedding",
]

# Nomic's flags whose other value is a forward pass this module does not compute: the name,
# and the value the published repos (and transformers' NomicBertModel) have
_FIXED_FLAGS = (
    ("prenorm", False),
    ("parallel_block", False),
    ("use_rms_norm", False),
    ("causal", False),
    ("rotary_emb_interleaved", False),
    ("rotary_scaling_factor", None),  # dynamic NTK scaling past max_trained_positions
    ("qkv_proj_bias", False),  # Wqkv and out_proj
    ("mlp_fc1_bias", False),  # fc11 and fc12
    ("mlp_fc2_bias", False),
    ("scale_attn_weights", True),  # scores by 1/sqrt(HD)
    ("scale_attn_by_inverse_layer_idx", False),
)
# nomic-embed-text-v2-moe's keys: a positive value puts experts in some layers
_MOE_KEYS = ("moe_every_n_layers", "num_experts")
# what an absent rotary base means: Nomic's and transformers' NomicBertConfig default
_DEFAULT_BASE = 1000.0


def _value(raw: Mapping[str, Any], legacy: str, current: str, default: Any = None) -> Any:
    """A setting under Nomic's name, else under transformers' name, else `default`."""
    if raw.get(legacy) is not None:
        return raw[legacy]
    if raw.get(current) is not None:
        return raw[current]
    return default


@dataclass(frozen=True, slots=True)
class NomicBertConfig:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int  # n_positions: the most tokens the repo says it reads
    type_vocab_size: int
    layer_norm_eps: float
    rotary_base: float
    rotary_dims: int  # of each head's HD; rotary_emb_fraction · HD, the rest passes unrotated

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> NomicBertConfig:
        """Read config.json in either spelling; refuse the variants not implemented here."""
        model_type = raw.get("model_type")
        if model_type != "nomic_bert":
            msg = f"config.json's model_type {model_type!r} is not NomicBERT"
            raise ValueError(msg)
        _refuse_variants(raw)
        hidden = int(_value(raw, "n_embd", "hidden_size"))
        heads = int(_value(raw, "n_head", "num_attention_heads"))
        if hidden % heads or int(raw.get("head_dim") or hidden // heads) != hidden // heads:
            msg = "the heads must split hidden_size evenly (head_dim = hidden_size / heads)"
            raise ValueError(msg)
        fraction = float(raw.get("rotary_emb_fraction", 1.0))
        rotary_dims = int(hidden // heads * fraction)
        if not 0 < fraction <= 1 or rotary_dims % 2:
            msg = f"rotary_emb_fraction {fraction} is not supported (rotary on an even part)"
            raise ValueError(msg)
        return cls(
            vocab_size=int(raw["vocab_size"]),
            hidden_size=hidden,
            num_hidden_layers=int(_value(raw, "n_layer", "num_hidden_layers")),
            num_attention_heads=heads,
            # Nomic's config leaves n_inner null for GPT-2's 4 x n_embd (unconfirmed: both
            # published repos give it, 3072)
            intermediate_size=int(_value(raw, "n_inner", "intermediate_size", 4 * hidden)),
            max_position_embeddings=int(_value(raw, "n_positions", "max_position_embeddings")),
            type_vocab_size=int(raw.get("type_vocab_size", 2)),
            layer_norm_eps=float(_value(raw, "layer_norm_epsilon", "layer_norm_eps", 1e-12)),
            rotary_base=_rotary_base(raw),
            rotary_dims=rotary_dims,
        )

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads


def _refuse_variants(raw: Mapping[str, Any]) -> None:
    act = _value(raw, "activation_function", "hidden_act", "swiglu")
    if act not in {"swiglu", "silu"}:  # Nomic's name for the gated MLP, transformers' for its gate
        msg = f"activation {act!r} is not supported (only SwiGLU)"
        raise ValueError(msg)
    for key, expected in _FIXED_FLAGS:
        if key in raw and raw[key] != expected:
            msg = f"{key} {raw[key]!r} is not supported (only {expected!r})"
            raise ValueError(msg)
    for key in _MOE_KEYS:
        if (raw.get(key) or 0) > 0:
            msg = f"{key} {raw[key]!r}: mixture-of-experts layers are not supported"
            raise ValueError(msg)


def _rotary_base(raw: Mapping[str, Any]) -> float:
    if raw.get("rotary_emb_base") is not None:
        return float(raw["rotary_emb_base"])
    rope = raw.get("rope_parameters") or {}
    if rope.get("rope_type", "default") != "default":
        msg = f"rope_type {rope['rope_type']!r} is not supported (only 'default')"
        raise ValueError(msg)
    return float(rope.get("rope_theta", raw.get("rope_theta", _DEFAULT_BASE)))


@dataclass(frozen=True, slots=True)
class NomicBertEmbeddings:
    word_embeddings: Array  # [V,H]
    token_type_embeddings: Array | None  # [TV,H]; None where type_vocab_size is 0
    emb_ln: Norm


@dataclass(frozen=True, slots=True)
class NomicBertAttention:
    query: Linear  # Wqkv's first third
    key: Linear
    value: Linear
    out_proj: Linear


@dataclass(frozen=True, slots=True)
class NomicBertMlp:
    fc11: Linear  # up
    fc12: Linear  # gate
    fc2: Linear  # down


@dataclass(frozen=True, slots=True)
class NomicBertLayer:
    attn: NomicBertAttention
    norm1: Norm
    mlp: NomicBertMlp
    norm2: Norm


@dataclass(frozen=True, slots=True)
class NomicBertWeights:
    embeddings: NomicBertEmbeddings
    layers: tuple[NomicBertLayer, ...]


@dataclass(frozen=True, slots=True)
class NomicBertModel:
    config: NomicBertConfig
    weights: NomicBertWeights
    head: SentenceHead

    @property
    def dimensions(self) -> int:
        return self.head.width(self.config.hidden_size)

    @property
    def max_tokens(self) -> int:
        return self.config.max_position_embeddings


# --- forward pass, in order -------------------------------------------------------------------


def nomic_bert_embeddings(ops: Ops[T], ids: T, w: NomicBertEmbeddings, cfg: NomicBertConfig) -> T:
    x = ops.embedding(w.word_embeddings, ids)  # [B,T] -> [B,T,H]; no position table: rotary
    if w.token_type_embeddings is not None:
        x = ops.add(x, w.token_type_embeddings[0])  # one sentence per input: every token type 0
    return ops.layer_norm(x, w.emb_ln, cfg.layer_norm_eps)


def self_attention(ops: Ops[T], x: T, mask: T, w: NomicBertAttention, cfg: NomicBertConfig) -> T:
    heads, base = cfg.num_attention_heads, cfg.rotary_base
    dims = None if cfg.rotary_dims == cfg.head_dim else cfg.rotary_dims
    # positions enter here alone, as rotations of q and k: scores depend on offsets, so right
    # padding moves no real token
    q = ops.rotary(ops.linear(x, w.query), heads, base, dims)  # [B,T,H]
    k = ops.rotary(ops.linear(x, w.key), heads, base, dims)  # [B,T,H]
    ctx = ops.attention(q, k, ops.linear(x, w.value), mask, heads)  # pads never read
    return ops.linear(ctx, w.out_proj)  # [B,T,H]


def swiglu(ops: Ops[T], x: T, w: NomicBertMlp) -> T:
    gate = ops.silu(ops.linear(x, w.fc12))  # [B,T,H] -> [B,T,I]
    return ops.linear(ops.mul(ops.linear(x, w.fc11), gate), w.fc2)  # [B,T,I] -> [B,T,H]


def nomic_bert_layer(ops: Ops[T], x: T, mask: T, w: NomicBertLayer, cfg: NomicBertConfig) -> T:
    eps = cfg.layer_norm_eps
    x = ops.layer_norm(ops.add(x, self_attention(ops, x, mask, w.attn, cfg)), w.norm1, eps)
    return ops.layer_norm(ops.add(x, swiglu(ops, x, w.mlp)), w.norm2, eps)  # post-LN, as BERT


def nomic_bert_sentence_embedding(ops: Ops[T], ids: T, mask: T, model: NomicBertModel) -> T:
    cfg, w = model.config, model.weights
    x = nomic_bert_embeddings(ops, ids, w.embeddings, cfg)  # [B,T,H]
    for layer in w.layers:
        x = nomic_bert_layer(ops, x, mask, layer, cfg)  # [B,T,H] -> [B,T,H]
    return sentence_vector(ops, x, mask, model.head)  # [B,D]


# --- loading ------------------------------------------------------------------------------------


def load_nomic_bert_weights(
    raw: Mapping[str, np.ndarray[Any, Any]], cfg: NomicBertConfig
) -> NomicBertWeights:
    """NomicBertModel's tensors under the checkpoint's own names (emb_ln, encoder.layers.N.attn
    .Wqkv, ...), which transformers also writes back when it saves one."""
    t, h, i = CheckpointTensors(raw), cfg.hidden_size, cfg.intermediate_size
    types = cfg.type_vocab_size
    embeddings = NomicBertEmbeddings(
        word_embeddings=t.get("embeddings.word_embeddings.weight", (cfg.vocab_size, h)),
        token_type_embeddings=(
            t.get("embeddings.token_type_embeddings.weight", (types, h)) if types else None
        ),
        emb_ln=t.norm("emb_ln", h),
    )
    layers = []
    for n in range(cfg.num_hidden_layers):
        p = f"encoder.layers.{n}"
        q, k, v = np.split(t.get(f"{p}.attn.Wqkv.weight", (3 * h, h)), 3)  # [3H,H] -> 3 x [H,H]
        attn = NomicBertAttention(
            query=_unbiased(q),
            key=_unbiased(k),
            value=_unbiased(v),
            out_proj=t.projection(f"{p}.attn.out_proj.weight", h, h),
        )
        mlp = NomicBertMlp(
            fc11=t.projection(f"{p}.mlp.fc11.weight", i, h),
            fc12=t.projection(f"{p}.mlp.fc12.weight", i, h),
            fc2=t.projection(f"{p}.mlp.fc2.weight", h, i),
        )
        layers.append(NomicBertLayer(attn, t.norm(f"{p}.norm1", h), mlp, t.norm(f"{p}.norm2", h)))
    return NomicBertWeights(embeddings, tuple(layers))


def _unbiased(weight: Array) -> Linear:
    return Linear(np.ascontiguousarray(weight), np.zeros(weight.shape[0], dtype=np.float32))
