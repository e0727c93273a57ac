"""Qwen3 (Qwen team 2025) as a sentence encoder: a causal decoder whose last token's final
state is the sentence vector (Qwen3-Embedding).

As in transformers' Qwen3Model:
- pre-norm layers (RMSNorm before attention and before the MLP, residual around each), and a
  final RMSNorm over the last layer's output;
- attention is causal and grouped-query (num_key_value_heads key/value heads shared among the
  query heads), with head_dim its own config key (not hidden_size / heads); each query and key
  head is RMS-normed over head_dim (q_norm, k_norm) before the rotary turn, rope_theta its base;
- the MLP is SwiGLU: down(silu(gate(x)) * up(x)); no layer has biases unless attention_bias;
- with use_sliding_window, the layers from max_window_layers on (or those layer_types names
  "sliding_attention") see only keys fewer than sliding_window positions back.

Qwen3-Embedding pads on the left; the server's batches are right-padded. Under the causal mask
a real token never reads a pad on its right, and rotary scores depend on offsets alone, so the
last real token's state is the same either way (checked against sentence-transformers with the
repo's left padding, tests/parity/test_qwen3_parity.py). lm_head (Qwen3ForCausalLM's) is never
read: the sentence vector is pooled from the final norm's output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from domain.architectures.checkpoint import CheckpointTensors
from domain.ops import Array, Linear, Ops, T
from domain.sentence_head import SentenceHead, sentence_vector

__all__ = [
    "Qwen3Attention",
    "Qwen3Config",
    "Qwen3Layer",
    "Qwen3Mlp",
    "Qwen3Model",
    "Qwen3Weights",
    "load_qwen3_weights",
    "qwen3_sentence_embedding",
]

_DEFAULT_THETA = 10_000.0  # transformers' RotaryEmbeddingConfigMixin.default_theta
_SLIDING = "sliding_attention"
_FULL = "full_attention"


def _rope_theta(raw: Mapping[str, Any]) -> float:
    """The rotary base: transformers 5's rope_parameters, else 4.x's rope_theta (and a
    rope_scaling, which must be plain rotary too)."""
    params = raw.get("rope_parameters") or raw.get("rope_scaling") or {}
    if not isinstance(params, dict):
        msg = "rope_parameters is not an object"
        raise ValueError(msg)  # noqa: TRY004 - a malformed config, reported as a load failure
    kind = params.get("rope_type", params.get("type", "default"))
    if kind != "default":
        msg = f"rope_type {kind!r} is not supported (only plain rotary, 'default')"
        raise ValueError(msg)
    if float(params.get("partial_rotary_factor", 1.0)) != 1.0:
        msg = "partial_rotary_factor is not supported (rotary over the whole head only)"
        raise ValueError(msg)
    return float(params.get("rope_theta", raw.get("rope_theta", _DEFAULT_THETA)))


def _windows(raw: Mapping[str, Any], layers: int) -> tuple[int | None, ...]:
    """Each layer's sliding window (None: it attends to every earlier key), as Qwen3Config's
    __post_init__ derives layer_types: sliding only with use_sliding_window."""
    window = raw.get("sliding_window") if raw.get("use_sliding_window", False) else None
    types = raw.get("layer_types")
    if types is None:
        first = int(raw.get("max_window_layers", 28))
        types = [_SLIDING if window is not None and n >= first else _FULL for n in range(layers)]
    if len(types) != layers or not set(types) <= {_SLIDING, _FULL}:
        msg = f"layer_types must name {layers} layers, each {_FULL!r} or {_SLIDING!r}"
        raise ValueError(msg)
    if _SLIDING in types and (window is None or int(window) < 1):
        msg = "layer_types names sliding layers but use_sliding_window gives no sliding_window"
        raise ValueError(msg)
    return tuple(int(window) if t == _SLIDING else None for t in types)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Qwen3Config:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    max_position_embeddings: int
    attention_bias: bool
    windows: tuple[int | None, ...]  # per layer: its sliding window, None where it has none

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Qwen3Config:
        """Read config.json; refuse the variants this forward pass does not implement."""
        model_type = raw.get("model_type")
        if model_type != "qwen3":
            msg = f"config.json's model_type {model_type!r} is not Qwen3"
            raise ValueError(msg)
        act = raw.get("hidden_act", "silu")
        if act != "silu":
            msg = f"hidden_act {act!r} is not supported (only SwiGLU's 'silu')"
            raise ValueError(msg)
        heads = int(raw["num_attention_heads"])
        layers = int(raw["num_hidden_layers"])
        cfg = cls(
            vocab_size=int(raw["vocab_size"]),
            hidden_size=int(raw["hidden_size"]),
            intermediate_size=int(raw["intermediate_size"]),
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=int(raw.get("num_key_value_heads") or heads),
            head_dim=int(raw.get("head_dim") or int(raw["hidden_size"]) // heads),
            rms_norm_eps=float(raw.get("rms_norm_eps", 1e-6)),
            rope_theta=_rope_theta(raw),
            max_position_embeddings=int(raw.get("max_position_embeddings", 32768)),
            attention_bias=bool(raw.get("attention_bias", False)),
            windows=_windows(raw, layers),
        )
        if cfg.num_attention_heads % cfg.num_key_value_heads:
            msg = "num_attention_heads must be a multiple of num_key_value_heads"
            raise ValueError(msg)
        if cfg.head_dim % 2:
            msg = f"head_dim {cfg.head_dim} is odd: rotary turns pairs"
            raise ValueError(msg)
        return cfg

    @property
    def max_tokens(self) -> int:
        return self.max_position_embeddings


@dataclass(frozen=True, slots=True)
class Qwen3Attention:
    q_proj: Linear  # [NH·HD, H]
    k_proj: Linear  # [KVH·HD, H]
    v_proj: Linear  # [KVH·HD, H]
    o_proj: Linear  # [H, NH·HD]
    q_norm: Array  # [HD], one RMSNorm shared by every query head
    k_norm: Array  # [HD]


@dataclass(frozen=True, slots=True)
class Qwen3Mlp:
    gate_proj: Linear  # [I, H]
    up_proj: Linear  # [I, H]
    down_proj: Linear  # [H, I]


@dataclass(frozen=True, slots=True)
class Qwen3Layer:
    input_layernorm: Array  # [H]
    self_attn: Qwen3Attention
    post_attention_layernorm: Array  # [H]
    mlp: Qwen3Mlp


@dataclass(frozen=True, slots=True)
class Qwen3Weights:
    embed_tokens: Array  # [V,H]
    layers: tuple[Qwen3Layer, ...]
    norm: Array  # [H]


@dataclass(frozen=True, slots=True)
class Qwen3Model:
    config: Qwen3Config
    weights: Qwen3Weights
    head: SentenceHead

    @property
    def dimensions(self) -> int:
        return self.head.width(self.config.hidden_size)

    @property
    def max_tokens(self) -> int:
        return self.config.max_tokens


# --- forward pass, in order -------------------------------------------------------------------


def qwen3_attention(  # noqa: PLR0913 - the block, its input and the layer's facts
    ops: Ops[T], x: T, mask: T, w: Qwen3Attention, cfg: Qwen3Config, *, window: int | None
) -> T:
    nh, kvh, eps = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.rms_norm_eps
    q = ops.rms_norm(ops.linear(x, w.q_proj), w.q_norm, eps, groups=nh)  # [B,T,NH·HD]
    k = ops.rms_norm(ops.linear(x, w.k_proj), w.k_norm, eps, groups=kvh)  # [B,T,KVH·HD]
    v = ops.linear(x, w.v_proj)  # [B,T,KVH·HD]
    # heads are normed first, then turned: the norm sees the unrotated head, as in transformers
    q = ops.rotary(q, nh, cfg.rope_theta)
    k = ops.rotary(k, kvh, cfg.rope_theta)
    a = ops.attention(q, k, v, mask, nh, causal=True, kv_heads=kvh, window=window)
    return ops.linear(a, w.o_proj)  # [B,T,NH·HD] -> [B,T,H]


def qwen3_mlp(ops: Ops[T], x: T, w: Qwen3Mlp) -> T:
    gate = ops.silu(ops.linear(x, w.gate_proj))  # [B,T,H] -> [B,T,I]
    return ops.linear(ops.mul(gate, ops.linear(x, w.up_proj)), w.down_proj)  # SwiGLU -> [B,T,H]


def qwen3_layer(  # noqa: PLR0913 - the block, its input and the layer's facts
    ops: Ops[T], x: T, mask: T, w: Qwen3Layer, cfg: Qwen3Config, *, window: int | None
) -> T:
    eps = cfg.rms_norm_eps
    # pre-norm: each block reads a normed copy, the residual stream itself is never normed
    h = ops.rms_norm(x, w.input_layernorm, eps)
    x = ops.add(x, qwen3_attention(ops, h, mask, w.self_attn, cfg, window=window))
    h = ops.rms_norm(x, w.post_attention_layernorm, eps)
    return ops.add(x, qwen3_mlp(ops, h, w.mlp))  # [B,T,H]


def qwen3_sentence_embedding(ops: Ops[T], ids: T, mask: T, model: Qwen3Model) -> T:
    cfg, w = model.config, model.weights
    x = ops.embedding(w.embed_tokens, ids)  # [B,T] -> [B,T,H]; positions come from rotary
    for layer, window in zip(w.layers, cfg.windows, strict=True):
        x = qwen3_layer(ops, x, mask, layer, cfg, window=window)
    x = ops.rms_norm(x, w.norm, cfg.rms_norm_eps)  # the final norm, before pooling
    return sentence_vector(ops, x, mask, model.head)  # last token's state -> [B,D]


# --- loading ------------------------------------------------------------------------------------


def load_qwen3_weights(raw: Mapping[str, np.ndarray[Any, Any]], cfg: Qwen3Config) -> Qwen3Weights:
    """Qwen3Model's tensors, bare (`embed_tokens.weight`, `layers.N.…`, as sentence-transformers
    saves Qwen3-Embedding) or under `model.` beside Qwen3ForCausalLM's lm_head, never read."""
    t = CheckpointTensors(raw, lambda key: key.removeprefix("model."))
    h, i, hd = cfg.hidden_size, cfg.intermediate_size, cfg.head_dim
    q_width, kv_width = cfg.num_attention_heads * hd, cfg.num_key_value_heads * hd

    def linear(key: str, out: int, inp: int, *, bias: bool = False) -> Linear:
        return t.linear(key, out, inp) if bias else t.projection(f"{key}.weight", out, inp)

    layers = []
    for n in range(cfg.num_hidden_layers):
        p, b = f"layers.{n}", cfg.attention_bias
        attention = Qwen3Attention(
            q_proj=linear(f"{p}.self_attn.q_proj", q_width, h, bias=b),
            k_proj=linear(f"{p}.self_attn.k_proj", kv_width, h, bias=b),
            v_proj=linear(f"{p}.self_attn.v_proj", kv_width, h, bias=b),
            o_proj=linear(f"{p}.self_attn.o_proj", h, q_width, bias=b),
            q_norm=t.get(f"{p}.self_attn.q_norm.weight", (hd,)),
            k_norm=t.get(f"{p}.self_attn.k_norm.weight", (hd,)),
        )
        mlp = Qwen3Mlp(
            gate_proj=linear(f"{p}.mlp.gate_proj", i, h),
            up_proj=linear(f"{p}.mlp.up_proj", i, h),
            down_proj=linear(f"{p}.mlp.down_proj", h, i),
        )
        layers.append(
            Qwen3Layer(
                input_layernorm=t.get(f"{p}.input_layernorm.weight", (h,)),
                self_attn=attention,
                post_attention_layernorm=t.get(f"{p}.post_attention_layernorm.weight", (h,)),
                mlp=mlp,
            )
        )
    return Qwen3Weights(
        embed_tokens=t.get("embed_tokens.weight", (cfg.vocab_size, h)),
        layers=tuple(layers),
        norm=t.get("norm.weight", (h,)),
    )
