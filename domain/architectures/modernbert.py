"""ModernBERT (Warner et al. 2024) as a sentence encoder: a pre-norm encoder with rotary
positions, GeGLU, and global attention every few layers, sliding-window attention between.

As in transformers' ModernBertModel:
- embeddings are the token rows alone (rotary carries the positions), then a LayerNorm;
- each layer is pre-norm, x + attn(norm(x)), then x + mlp(norm(x)), except that layer 0 reads
  its input unnormed (its attn_norm is an Identity: the embeddings' norm comes just before);
  a final_norm follows the last layer;
- attention projects q, k and v with one fused `Wqkv` [3H,H] (the loader splits it), rotates q
  and k by position, with global_rope_theta on global layers and local_rope_theta on local ones;
  a local layer reads only keys with |i - j| <= local_attention // 2
  (transformers' create_bidirectional_sliding_window_mask, with config.sliding_window
  = local_attention // 2);
- the MLP is a GeGLU: `Wi` [2I,H] gives an input half and a gate half (in that order), and
  Wo(gelu(input) · gate), with exact erf GELU for hidden_activation "gelu";
- no linear or LayerNorm has a bias in the published models (attention_bias, mlp_bias,
  norm_bias false); a config asking for one is refused.

The reference once unpadded its batches (flash attention over packed rows); transformers 5 pads
and masks as here. Either way pads are never read: right padding shifts no rotary angle and
masked keys get no weight, so a text embeds the same alone as in a padded batch.
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
    "GLOBAL",
    "LOCAL",
    "ModernBertConfig",
    "ModernBertModel",
    "ModernBertWeights",
    "bias_free_norm",
    "load_modernbert_weights",
    "modernbert_encoder",
    "modernbert_sentence_embedding",
]

GLOBAL = "full_attention"  # transformers' layer_types names
LOCAL = "sliding_attention"
# ModernBertConfig's defaults, where config.json leaves a key out
_GLOBAL_THETA, _LOCAL_THETA = 160_000.0, 10_000.0
_GLOBAL_EVERY = 3
_LOCAL_ATTENTION = 128
_BIAS_FLAGS = ("attention_bias", "mlp_bias", "norm_bias")


@dataclass(frozen=True, slots=True)
class ModernBertConfig:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    norm_eps: float
    local_attention: int  # the whole window: local layers reach half of it each way
    layer_types: tuple[str, ...]  # GLOBAL or LOCAL, per layer
    rope_theta: Mapping[str, float]  # the rotary base of each layer type

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ModernBertConfig:
        """Read config.json as the hub repos spell it (global_attn_every_n_layers,
        global_rope_theta, local_rope_theta) or as transformers 5 writes it (layer_types,
        rope_parameters per layer type); refuse what this forward pass does not implement."""
        _refuse_variants(raw)
        layers = int(raw["num_hidden_layers"])
        cfg = cls(
            vocab_size=int(raw["vocab_size"]),
            hidden_size=int(raw["hidden_size"]),
            num_hidden_layers=layers,
            num_attention_heads=int(raw["num_attention_heads"]),
            intermediate_size=int(raw["intermediate_size"]),
            max_position_embeddings=int(raw.get("max_position_embeddings", 8192)),
            # norm_eps is what transformers reads; the hub configs' layer_norm_eps is unused
            norm_eps=float(raw.get("norm_eps", 1e-5)),
            local_attention=int(raw.get("local_attention", _LOCAL_ATTENTION)),
            layer_types=_layer_types(raw, layers),
            rope_theta=_rope_theta(raw),
        )
        if cfg.hidden_size % cfg.num_attention_heads:
            msg = "hidden_size must be a multiple of num_attention_heads"
            raise ValueError(msg)
        if cfg.local_attention < 0:
            msg = f"local_attention {cfg.local_attention} is negative"
            raise ValueError(msg)
        return cfg

    def window(self, layer: int) -> int | None:
        """ops.attention's window (|i - j| < window) of a layer; None: a global layer."""
        if self.layer_types[layer] == GLOBAL:
            return None
        return self.local_attention // 2 + 1  # transformers' bound is |i - j| <= half

    def base(self, layer: int) -> float:
        return self.rope_theta[self.layer_types[layer]]


def _refuse_variants(raw: Mapping[str, Any]) -> None:
    model_type = raw.get("model_type")
    if model_type != "modernbert":
        msg = f"config.json's model_type {model_type!r} is not ModernBERT"
        raise ValueError(msg)
    act = raw.get("hidden_activation", "gelu")
    if act != "gelu":
        msg = f"hidden_activation {act!r} is not supported (only exact 'gelu')"
        raise ValueError(msg)
    for flag in _BIAS_FLAGS:
        if raw.get(flag, False):
            msg = f"{flag} true is not supported (the published models have no biases)"
            raise ValueError(msg)
    if raw.get("rope_scaling"):
        msg = "rope_scaling is not supported (only the default rotary embedding)"
        raise ValueError(msg)


def _layer_types(raw: Mapping[str, Any], layers: int) -> tuple[str, ...]:
    """layer_types as written, else global on every n-th layer from layer 0, as transformers
    derives it from global_attn_every_n_layers."""
    written = raw.get("layer_types")
    if written is None:
        every = int(raw.get("global_attn_every_n_layers", _GLOBAL_EVERY))
        if every < 1:
            msg = f"global_attn_every_n_layers {every} is not a positive count"
            raise ValueError(msg)
        return tuple(LOCAL if n % every else GLOBAL for n in range(layers))
    types = tuple(str(t) for t in written)
    if len(types) != layers or not set(types) <= {GLOBAL, LOCAL}:
        msg = f"layer_types {types!r} is not one of {GLOBAL!r} / {LOCAL!r} per layer"
        raise ValueError(msg)
    return types


def _rope_theta(raw: Mapping[str, Any]) -> Mapping[str, float]:
    """Each layer type's base: rope_parameters[type]["rope_theta"] where written, else
    global_rope_theta / local_rope_theta, else ModernBertConfig's defaults."""
    thetas = {
        GLOBAL: float(raw.get("global_rope_theta", _GLOBAL_THETA)),
        LOCAL: float(raw.get("local_rope_theta", _LOCAL_THETA)),
    }
    params = raw.get("rope_parameters") or {}
    if not set(params) <= {GLOBAL, LOCAL}:
        msg = f"rope_parameters keyed {sorted(params)!r} is not per layer type"
        raise ValueError(msg)
    for kind in (GLOBAL, LOCAL):
        kept = params.get(kind) or {}
        rope_type = kept.get("rope_type", "default")
        if rope_type != "default":
            msg = f"rope_type {rope_type!r} is not supported (only 'default')"
            raise ValueError(msg)
        if "rope_theta" in kept:
            thetas[kind] = float(kept["rope_theta"])
    return thetas


@dataclass(frozen=True, slots=True)
class ModernBertAttention:
    query: Linear  # the rows of Wqkv, split in three
    key: Linear
    value: Linear
    output: Linear  # Wo


@dataclass(frozen=True, slots=True)
class ModernBertMLP:
    input: Linear  # the first half of Wi's rows
    gate: Linear  # the second half
    output: Linear  # Wo


@dataclass(frozen=True, slots=True)
class ModernBertLayer:
    attn_norm: Norm | None  # None: layer 0, whose attn_norm is an Identity
    attn: ModernBertAttention
    mlp_norm: Norm
    mlp: ModernBertMLP


@dataclass(frozen=True, slots=True)
class ModernBertWeights:
    tok_embeddings: Array  # [V,H]
    norm: Norm  # the embeddings' LayerNorm
    layers: tuple[ModernBertLayer, ...]
    final_norm: Norm


@dataclass(frozen=True, slots=True)
class ModernBertModel:
    config: ModernBertConfig
    weights: ModernBertWeights
    head: SentenceHead

    @property
    def dimensions(self) -> int:
        return self.head.width(self.config.hidden_size)

    @property
    def max_tokens(self) -> int:
        return self.config.max_position_embeddings


# --- forward pass, in order -------------------------------------------------------------------


def modernbert_embeddings(ops: Ops[T], ids: T, w: ModernBertWeights, cfg: ModernBertConfig) -> T:
    x = ops.embedding(w.tok_embeddings, ids)  # [B,T] -> [B,T,H]; no position rows: rotary
    return ops.layer_norm(x, w.norm, cfg.norm_eps)


def self_attention(  # noqa: PLR0913 - the block's input, weights, config and layer index
    ops: Ops[T], x: T, mask: T, w: ModernBertAttention, cfg: ModernBertConfig, *, n: int
) -> T:
    heads, base = cfg.num_attention_heads, cfg.base(n)
    q, k, v = ops.linear(x, w.query), ops.linear(x, w.key), ops.linear(x, w.value)  # [B,T,H]
    q, k = ops.rotary(q, heads, base), ops.rotary(k, heads, base)  # the layer type's base
    ctx = ops.attention(q, k, v, mask, heads, window=cfg.window(n))  # local: a band of keys
    return ops.linear(ctx, w.output)  # [B,T,H]


def geglu(ops: Ops[T], x: T, w: ModernBertMLP) -> T:
    h = ops.mul(ops.gelu_erf(ops.linear(x, w.input)), ops.linear(x, w.gate))  # [B,T,I]
    return ops.linear(h, w.output)  # [B,T,I] -> [B,T,H]


def modernbert_layer(  # noqa: PLR0913 - the block's input, weights, config and layer index
    ops: Ops[T], x: T, mask: T, w: ModernBertLayer, cfg: ModernBertConfig, *, n: int
) -> T:
    h = x if w.attn_norm is None else ops.layer_norm(x, w.attn_norm, cfg.norm_eps)  # pre-norm
    x = ops.add(x, self_attention(ops, h, mask, w.attn, cfg, n=n))  # [B,T,H]
    return ops.add(x, geglu(ops, ops.layer_norm(x, w.mlp_norm, cfg.norm_eps), w.mlp))


def modernbert_encoder(
    ops: Ops[T], ids: T, mask: T, w: ModernBertWeights, cfg: ModernBertConfig
) -> T:
    x = modernbert_embeddings(ops, ids, w, cfg)  # [B,T,H]
    for n, layer in enumerate(w.layers):
        x = modernbert_layer(ops, x, mask, layer, cfg, n=n)  # [B,T,H] -> [B,T,H]
    return ops.layer_norm(x, w.final_norm, cfg.norm_eps)  # pre-norm layers leave it unnormed


def modernbert_sentence_embedding(ops: Ops[T], ids: T, mask: T, model: ModernBertModel) -> T:
    x = modernbert_encoder(ops, ids, mask, model.weights, model.config)  # [B,T,H]
    return sentence_vector(ops, x, mask, model.head)  # [B,D]


# --- loading ------------------------------------------------------------------------------------


def bias_free_norm(t: CheckpointTensors, key: str, size: int) -> Norm:
    """A LayerNorm stored without a bias (norm_bias false)."""
    return Norm(t.get(key, (size,)), np.zeros(size, dtype=np.float32))


def _rows(fused: Linear, parts: int) -> tuple[Linear, ...]:
    """A fused projection's `parts` equal row blocks, each a Linear of its own."""
    weights = np.split(fused.weight, parts, axis=0)
    biases = np.split(fused.bias, parts)
    return tuple(
        Linear(np.ascontiguousarray(w), np.ascontiguousarray(b))
        for w, b in zip(weights, biases, strict=True)
    )


def load_modernbert_weights(
    raw: Mapping[str, np.ndarray[Any, Any]], cfg: ModernBertConfig
) -> ModernBertWeights:
    """ModernBertModel's tensors, with or without the `model.` prefix (ModernBertForMaskedLM's,
    whose `head.*` and `decoder.*` are not read)."""
    t = CheckpointTensors(raw, lambda key: key.removeprefix("model."))
    h, i = cfg.hidden_size, cfg.intermediate_size
    layers = []
    for n in range(cfg.num_hidden_layers):
        p = f"layers.{n}"
        query, key, value = _rows(t.projection(f"{p}.attn.Wqkv.weight", 3 * h, h), 3)
        gate_input, gate = _rows(t.projection(f"{p}.mlp.Wi.weight", 2 * i, h), 2)
        layers.append(
            ModernBertLayer(
                attn_norm=bias_free_norm(t, f"{p}.attn_norm.weight", h) if n else None,
                attn=ModernBertAttention(
                    query, key, value, t.projection(f"{p}.attn.Wo.weight", h, h)
                ),
                mlp_norm=bias_free_norm(t, f"{p}.mlp_norm.weight", h),
                mlp=ModernBertMLP(gate_input, gate, t.projection(f"{p}.mlp.Wo.weight", h, i)),
            )
        )
    return ModernBertWeights(
        tok_embeddings=t.get("embeddings.tok_embeddings.weight", (cfg.vocab_size, h)),
        norm=bias_free_norm(t, "embeddings.norm.weight", h),
        layers=tuple(layers),
        final_norm=bias_free_norm(t, "final_norm.weight", h),
    )
