"""Gemma 3 as a bidirectional sentence encoder (EmbeddingGemma): transformers' Gemma3TextModel
with `use_bidirectional_attention`, pooled by sentence-transformers.

As in transformers' modeling_gemma3:
- the token table is scaled by sqrt(hidden_size), a float32 scalar in float32 weights; the loader
  folds it into the table, the same one rounding per element as the model's multiply;
- every norm is an RMSNorm that scales by (1 + weight); the loader folds the 1 in, the same
  float32 sum transformers forms before it multiplies;
- each layer normalises before AND after each of its two blocks (four norms), adding the
  normalised block output to the residual;
- attention has grouped key/value heads, head_dim of its own (not hidden / heads), RMSNorm on each
  query and key head, rotary positions with one base on sliding layers (rope_local_base_freq) and
  another on full ones (rope_theta), and scores scaled by query_pre_attn_scalar ** -0.5;
- bidirectional: a full layer attends to every real token; a sliding layer to the keys within
  |i - j| < sliding_window // 2 + 1 (Gemma3TextConfig halves the window it reads from
  config.json, and the mask is the union of the causal window and that symmetric one);
- the MLP is GeGLU with GELU's tanh approximation: down(gelu_tanh(gate(x)) * up(x)).

No projection has a bias (attention_bias true is refused), nor do scores get softcapped
(attn_logit_softcapping is refused): the published encoder uses neither.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from domain.architectures.checkpoint import CheckpointTensors
from domain.ops import Array, Linear, Ops, T
from domain.sentence_head import SentenceHead, sentence_vector

__all__ = [
    "Gemma3Attention",
    "Gemma3Config",
    "Gemma3Layer",
    "Gemma3Model",
    "Gemma3Weights",
    "LayerType",
    "gemma3_sentence_embedding",
    "load_gemma3_weights",
]

# Gemma3TextConfig's defaults, for the keys a config.json may leave out
_DEFAULT_THETA = 1_000_000.0  # full layers' rope_theta
_DEFAULT_LOCAL_THETA = 10_000.0  # sliding layers' rope_local_base_freq
_DEFAULT_PATTERN = 6  # sliding_window_pattern: every sixth layer is full
_ACTIVATION = "gelu_pytorch_tanh"


class LayerType(enum.StrEnum):
    """config.json's layer_types values."""

    SLIDING = "sliding_attention"
    FULL = "full_attention"


@dataclass(frozen=True, slots=True)
class Gemma3Config:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float
    scale: float  # query_pre_attn_scalar ** -0.5
    window: int  # a sliding layer's keys: |i - j| < window
    layer_types: tuple[LayerType, ...]  # one per layer
    rope_theta: Mapping[LayerType, float]  # rotary base per layer type
    max_position_embeddings: int

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Gemma3Config:
        """Read config.json; refuse the variants this forward pass does not implement."""
        _refuse_variants(raw)
        heads = int(raw["num_attention_heads"])
        kv_heads = int(raw.get("num_key_value_heads", 4))
        if kv_heads < 1 or heads % kv_heads:
            msg = f"num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}"
            raise ValueError(msg)
        layers = int(raw["num_hidden_layers"])
        layer_types = _layer_types(raw, layers)
        raw_window = raw.get("sliding_window", 4096)
        if raw_window is None and LayerType.SLIDING in layer_types:
            msg = "sliding layers need a sliding_window"
            raise ValueError(msg)
        return cls(
            vocab_size=int(raw["vocab_size"]),
            hidden_size=int(raw["hidden_size"]),
            intermediate_size=int(raw["intermediate_size"]),
            num_attention_heads=heads,
            num_key_value_heads=kv_heads,
            head_dim=int(raw.get("head_dim", 256)),
            rms_norm_eps=float(raw.get("rms_norm_eps", 1e-6)),
            scale=float(raw.get("query_pre_attn_scalar", 256)) ** -0.5,
            # Gemma3TextConfig reads a bidirectional model's window as this exclusive radius
            window=int(raw_window or 0) // 2 + 1,
            layer_types=layer_types,
            rope_theta=_rope_theta(raw),
            max_position_embeddings=int(raw.get("max_position_embeddings", 131_072)),
        )

    @property
    def max_tokens(self) -> int:
        return self.max_position_embeddings


def _refuse_variants(raw: Mapping[str, Any]) -> None:
    model_type = raw.get("model_type")
    if model_type != "gemma3_text":
        msg = f"config.json's model_type {model_type!r} is not Gemma 3's text model"
        raise ValueError(msg)
    if raw.get("use_bidirectional_attention") is not True:
        msg = "a causal Gemma 3 is not supported (only use_bidirectional_attention: true)"
        raise ValueError(msg)
    act = raw.get("hidden_activation", _ACTIVATION)
    if act != _ACTIVATION:
        msg = f"hidden_activation {act!r} is not supported (only {_ACTIVATION!r})"
        raise ValueError(msg)
    if raw.get("attn_logit_softcapping") is not None:
        msg = "attn_logit_softcapping is not supported"
        raise ValueError(msg)
    if raw.get("attention_bias", False):
        msg = "attention_bias is not supported (Gemma 3's projections have none)"
        raise ValueError(msg)
    if raw.get("rope_scaling") is not None:
        msg = "rope_scaling is not supported (only default rotary positions)"
        raise ValueError(msg)


def _layer_types(raw: Mapping[str, Any], layers: int) -> tuple[LayerType, ...]:
    """layer_types as written; else every sliding_window_pattern-th layer full, as
    Gemma3TextConfig fills it in."""
    written = raw.get("layer_types")
    if written is None:
        pattern = int(raw.get("sliding_window_pattern", _DEFAULT_PATTERN))
        return tuple(
            LayerType.SLIDING if (n + 1) % pattern else LayerType.FULL for n in range(layers)
        )
    known = {t.value for t in LayerType}
    if not isinstance(written, list) or any(t not in known for t in written):
        msg = f"layer_types {written!r} is not supported (only {', '.join(known)})"
        raise ValueError(msg)
    if len(written) != layers:
        msg = f"layer_types names {len(written)} layers, num_hidden_layers {layers}"
        raise ValueError(msg)
    return tuple(LayerType(t) for t in written)


def _rope_theta(raw: Mapping[str, Any]) -> Mapping[LayerType, float]:
    """Each layer type's rotary base: transformers 5's rope_parameters per layer type, else
    the published keys (rope_theta for full layers, rope_local_base_freq for sliding ones)."""
    params = raw.get("rope_parameters") or {}
    if not isinstance(params, dict) or not set(params) <= {t.value for t in LayerType}:
        msg = "rope_parameters is not supported unless given per layer type"
        raise ValueError(msg)
    fallback = {
        LayerType.FULL: float(raw.get("rope_theta", _DEFAULT_THETA)),
        LayerType.SLIDING: float(raw.get("rope_local_base_freq", _DEFAULT_LOCAL_THETA)),
    }
    bases = {}
    for kind in LayerType:
        given = params.get(kind.value) or {}
        rope_type = given.get("rope_type", "default")
        if rope_type != "default":
            msg = f"rope_type {rope_type!r} is not supported (only 'default')"
            raise ValueError(msg)
        if set(given) - {"rope_type", "rope_theta"}:
            msg = f"rope_parameters for {kind.value} sets more than rope_theta"
            raise ValueError(msg)
        bases[kind] = float(given.get("rope_theta", fallback[kind]))
    return bases


@dataclass(frozen=True, slots=True)
class Gemma3Attention:
    q_proj: Linear  # [NH·HD, H]
    k_proj: Linear  # [KVH·HD, H]
    v_proj: Linear  # [KVH·HD, H]
    o_proj: Linear  # [H, NH·HD]
    q_norm: Array  # [HD], 1 + weight
    k_norm: Array  # [HD], 1 + weight


@dataclass(frozen=True, slots=True)
class Gemma3Layer:
    self_attn: Gemma3Attention
    gate_proj: Linear  # [I, H]
    up_proj: Linear  # [I, H]
    down_proj: Linear  # [H, I]
    # [H] each, 1 + weight
    input_layernorm: Array
    post_attention_layernorm: Array
    pre_feedforward_layernorm: Array
    post_feedforward_layernorm: Array


@dataclass(frozen=True, slots=True)
class Gemma3Weights:
    embed_tokens: Array  # [V,H], times sqrt(H)
    layers: tuple[Gemma3Layer, ...]
    norm: Array  # [H], 1 + weight


@dataclass(frozen=True, slots=True)
class Gemma3Model:
    config: Gemma3Config
    weights: Gemma3Weights
    head: SentenceHead

    @property
    def dimensions(self) -> int:
        return self.head.width(self.config.hidden_size)

    @property
    def max_tokens(self) -> int:
        return self.config.max_tokens


# --- forward pass, in order -------------------------------------------------------------------


def self_attention(  # noqa: PLR0913 - the states, the mask and the facts about the layer
    ops: Ops[T], x: T, mask: T, w: Gemma3Attention, cfg: Gemma3Config, *, kind: LayerType
) -> T:
    nh, kvh, eps = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.rms_norm_eps
    base = cfg.rope_theta[kind]
    q = ops.rms_norm(ops.linear(x, w.q_proj), w.q_norm, eps, groups=nh)  # [B,T,NH·HD], per head
    k = ops.rms_norm(ops.linear(x, w.k_proj), w.k_norm, eps, groups=kvh)  # [B,T,KVH·HD]
    v = ops.linear(x, w.v_proj)  # [B,T,KVH·HD]
    q, k = ops.rotary(q, nh, base), ops.rotary(k, kvh, base)  # after the norm, as transformers
    window = cfg.window if kind is LayerType.SLIDING else None
    a = ops.attention(q, k, v, mask, nh, kv_heads=kvh, window=window, scale=cfg.scale)
    return ops.linear(a, w.o_proj)  # [B,T,NH·HD] -> [B,T,H]


def mlp(ops: Ops[T], x: T, w: Gemma3Layer) -> T:
    gate = ops.gelu_tanh(ops.linear(x, w.gate_proj))  # [B,T,H] -> [B,T,I]
    return ops.linear(ops.mul(gate, ops.linear(x, w.up_proj)), w.down_proj)  # -> [B,T,H]


def gemma3_layer(  # noqa: PLR0913 - the states, the mask and the facts about the layer
    ops: Ops[T], x: T, mask: T, w: Gemma3Layer, cfg: Gemma3Config, *, kind: LayerType
) -> T:
    eps = cfg.rms_norm_eps
    normed = ops.rms_norm(x, w.input_layernorm, eps)  # [B,T,H]
    a = self_attention(ops, normed, mask, w.self_attn, cfg, kind=kind)
    # sandwich norms: each block's output is normed again before the residual add
    x = ops.add(x, ops.rms_norm(a, w.post_attention_layernorm, eps))
    h = mlp(ops, ops.rms_norm(x, w.pre_feedforward_layernorm, eps), w)
    return ops.add(x, ops.rms_norm(h, w.post_feedforward_layernorm, eps))


def gemma3_sentence_embedding(ops: Ops[T], ids: T, mask: T, model: Gemma3Model) -> T:
    cfg, w = model.config, model.weights
    x = ops.embedding(w.embed_tokens, ids)  # [B,T] -> [B,T,H], sqrt(H) folded in
    for layer, kind in zip(w.layers, cfg.layer_types, strict=True):
        x = gemma3_layer(ops, x, mask, layer, cfg, kind=kind)
    x = ops.rms_norm(x, w.norm, cfg.rms_norm_eps)
    return sentence_vector(ops, x, mask, model.head)  # [B,D]


# --- loading ------------------------------------------------------------------------------------


def _scale_weight(t: CheckpointTensors, key: str, size: int) -> Array:
    """A Gemma RMSNorm's weight as it scales: 1 + weight, summed in float32 as transformers."""
    return np.float32(1.0) + t.get(key, (size,))


def _table(t: CheckpointTensors, cfg: Gemma3Config) -> Array:
    table = t.get("embed_tokens.weight", (cfg.vocab_size, cfg.hidden_size))
    # transformers' embed_scale: hidden_size ** 0.5 as a float32 tensor, one multiply per element
    scale = np.float32(cfg.hidden_size**0.5)
    if table.flags.writeable:  # the table is ours (a copy out of the file): scale it in place
        table *= scale
        return table
    return table * scale


def load_gemma3_weights(
    raw: Mapping[str, np.ndarray[Any, Any]], cfg: Gemma3Config
) -> Gemma3Weights:
    """Gemma3TextModel's tensors, bare or under `model.` (Gemma3ForCausalLM's)."""
    t = CheckpointTensors(raw, lambda key: key.removeprefix("model."))
    h, i, hd = cfg.hidden_size, cfg.intermediate_size, cfg.head_dim
    q_width, kv_width = cfg.num_attention_heads * hd, cfg.num_key_value_heads * hd
    layers = []
    for n in range(len(cfg.layer_types)):
        p = f"layers.{n}"
        attention = Gemma3Attention(
            q_proj=t.projection(f"{p}.self_attn.q_proj.weight", q_width, h),
            k_proj=t.projection(f"{p}.self_attn.k_proj.weight", kv_width, h),
            v_proj=t.projection(f"{p}.self_attn.v_proj.weight", kv_width, h),
            o_proj=t.projection(f"{p}.self_attn.o_proj.weight", h, q_width),
            q_norm=_scale_weight(t, f"{p}.self_attn.q_norm.weight", hd),
            k_norm=_scale_weight(t, f"{p}.self_attn.k_norm.weight", hd),
        )
        layers.append(
            Gemma3Layer(
                self_attn=attention,
                gate_proj=t.projection(f"{p}.mlp.gate_proj.weight", i, h),
                up_proj=t.projection(f"{p}.mlp.up_proj.weight", i, h),
                down_proj=t.projection(f"{p}.mlp.down_proj.weight", h, i),
                input_layernorm=_scale_weight(t, f"{p}.input_layernorm.weight", h),
                post_attention_layernorm=_scale_weight(
                    t, f"{p}.post_attention_layernorm.weight", h
                ),
                pre_feedforward_layernorm=_scale_weight(
                    t, f"{p}.pre_feedforward_layernorm.weight", h
                ),
                post_feedforward_layernorm=_scale_weight(
                    t, f"{p}.post_feedforward_layernorm.weight", h
                ),
            )
        )
    return Gemma3Weights(_table(t, cfg), tuple(layers), _scale_weight(t, "norm.weight", h))
