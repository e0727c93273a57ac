"""BERT (Devlin et al. 2018) as a sentence encoder: embeddings, post-LN encoder, pooling head.

Weights are named after the checkpoint keys of transformers' BertModel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from domain.architectures.checkpoint import CheckpointTensors
from domain.ops import Array, Linear, Norm, Ops, T
from domain.sentence_head import SentenceHead, sentence_vector

__all__ = [
    "BertAttention",
    "BertConfig",
    "BertEmbeddings",
    "BertLayer",
    "BertModel",
    "BertWeights",
    "bert_encoder",
    "bert_sentence_embedding",
    "load_bert_weights",
]


@dataclass(frozen=True, slots=True)
class BertConfig:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> BertConfig:
        """Read config.json; refuse the variants this forward pass does not implement."""
        act = raw.get("hidden_act", "gelu")
        if act != "gelu":
            msg = f"hidden_act {act!r} is not supported (only exact 'gelu')"
            raise ValueError(msg)
        pos = raw.get("position_embedding_type", "absolute")
        if pos != "absolute":
            msg = f"position_embedding_type {pos!r} is not supported"
            raise ValueError(msg)
        cfg = cls(
            vocab_size=int(raw["vocab_size"]),
            hidden_size=int(raw["hidden_size"]),
            num_hidden_layers=int(raw["num_hidden_layers"]),
            num_attention_heads=int(raw["num_attention_heads"]),
            intermediate_size=int(raw["intermediate_size"]),
            max_position_embeddings=int(raw["max_position_embeddings"]),
            type_vocab_size=int(raw.get("type_vocab_size", 2)),
            layer_norm_eps=float(raw.get("layer_norm_eps", 1e-12)),
        )
        if cfg.hidden_size % cfg.num_attention_heads:
            msg = "hidden_size must be a multiple of num_attention_heads"
            raise ValueError(msg)
        return cfg


@dataclass(frozen=True, slots=True)
class BertEmbeddings:
    word_embeddings: Array  # [V,H]
    position_embeddings: Array  # [P,H]
    token_type_embeddings: Array  # [TV,H]
    norm: Norm


@dataclass(frozen=True, slots=True)
class BertAttention:
    query: Linear
    key: Linear
    value: Linear
    output: Linear


@dataclass(frozen=True, slots=True)
class BertLayer:
    attention: BertAttention
    attention_norm: Norm
    intermediate: Linear
    output: Linear
    output_norm: Norm


@dataclass(frozen=True, slots=True)
class BertWeights:
    embeddings: BertEmbeddings
    layers: tuple[BertLayer, ...]


@dataclass(frozen=True, slots=True)
class BertModel:
    config: BertConfig
    weights: BertWeights
    head: SentenceHead

    @property
    def dimensions(self) -> int:
        return self.head.width(self.config.hidden_size)

    @property
    def max_tokens(self) -> int:
        return self.config.max_position_embeddings


# --- forward pass, in order -------------------------------------------------------------------


def bert_embeddings(ops: Ops[T], ids: T, w: BertEmbeddings, cfg: BertConfig) -> T:
    x = ops.embedding(w.word_embeddings, ids)  # [B,T] -> [B,T,H]
    x = ops.add(x, ops.embedding(w.position_embeddings, ops.positions(ids)))
    x = ops.add(x, w.token_type_embeddings[0])  # one sentence per input: every token is type 0
    return ops.layer_norm(x, w.norm, cfg.layer_norm_eps)


# `bias` [1,NH,T,T]: a score bias every layer shares (MPNet's relative positions); BERT has none


def self_attention(  # noqa: PLR0913 - the block's inputs, weights, config and shared bias
    ops: Ops[T], x: T, mask: T, w: BertAttention, cfg: BertConfig, *, bias: T | None = None
) -> T:
    q, k, v = ops.linear(x, w.query), ops.linear(x, w.key), ops.linear(x, w.value)  # [B,T,H]
    ctx = ops.attention(q, k, v, mask, cfg.num_attention_heads, bias=bias)  # pads never read
    return ops.linear(ctx, w.output)  # [B,T,H]


def bert_layer(  # noqa: PLR0913 - the block's inputs, weights, config and shared bias
    ops: Ops[T], x: T, mask: T, w: BertLayer, cfg: BertConfig, *, bias: T | None = None
) -> T:
    a = self_attention(ops, x, mask, w.attention, cfg, bias=bias)  # [B,T,H] -> [B,T,H]
    x = ops.layer_norm(ops.add(x, a), w.attention_norm, cfg.layer_norm_eps)  # post-LN: add, norm
    h = ops.gelu_erf(ops.linear(x, w.intermediate))  # [B,T,H] -> [B,T,I]
    return ops.layer_norm(ops.add(x, ops.linear(h, w.output)), w.output_norm, cfg.layer_norm_eps)


def bert_encoder(  # noqa: PLR0913 - the block's inputs, weights, config and shared bias
    ops: Ops[T],
    x: T,
    mask: T,
    layers: Sequence[BertLayer],
    cfg: BertConfig,
    *,
    bias: T | None = None,
) -> T:
    for layer in layers:
        x = bert_layer(ops, x, mask, layer, cfg, bias=bias)  # [B,T,H] -> [B,T,H]
    return x


def bert_sentence_embedding(ops: Ops[T], ids: T, mask: T, model: BertModel) -> T:
    cfg, w = model.config, model.weights
    x = bert_embeddings(ops, ids, w.embeddings, cfg)  # [B,T,H]
    x = bert_encoder(ops, x, mask, w.layers, cfg)  # [B,T,H]
    return sentence_vector(ops, x, mask, model.head)  # [B,D]


# --- loading ------------------------------------------------------------------------------------


def _canonical(key: str) -> str:
    """Old TF-converted checkpoints (bert-base-uncased) name LayerNorm parameters gamma/beta."""
    key = key.removeprefix("bert.")
    if key.endswith(".gamma"):
        return key[: -len("gamma")] + "weight"
    if key.endswith(".beta"):
        return key[: -len("beta")] + "bias"
    return key


def load_bert_weights(raw: Mapping[str, np.ndarray[Any, Any]], cfg: BertConfig) -> BertWeights:
    """Build the weights from checkpoint tensors, with or without the `bert.` prefix."""
    t, h, i = CheckpointTensors(raw, _canonical), cfg.hidden_size, cfg.intermediate_size
    embeddings = BertEmbeddings(
        word_embeddings=t.get("embeddings.word_embeddings.weight", (cfg.vocab_size, h)),
        position_embeddings=t.get(
            "embeddings.position_embeddings.weight", (cfg.max_position_embeddings, h)
        ),
        token_type_embeddings=t.get(
            "embeddings.token_type_embeddings.weight", (cfg.type_vocab_size, h)
        ),
        norm=t.norm("embeddings.LayerNorm", h),
    )
    layers = []
    for n in range(cfg.num_hidden_layers):
        p = f"encoder.layer.{n}"
        attention = BertAttention(
            query=t.linear(f"{p}.attention.self.query", h, h),
            key=t.linear(f"{p}.attention.self.key", h, h),
            value=t.linear(f"{p}.attention.self.value", h, h),
            output=t.linear(f"{p}.attention.output.dense", h, h),
        )
        layers.append(
            BertLayer(
                attention=attention,
                attention_norm=t.norm(f"{p}.attention.output.LayerNorm", h),
                intermediate=t.linear(f"{p}.intermediate.dense", i, h),
                output=t.linear(f"{p}.output.dense", h, i),
                output_norm=t.norm(f"{p}.output.LayerNorm", h),
            )
        )
    return BertWeights(embeddings=embeddings, layers=tuple(layers))
