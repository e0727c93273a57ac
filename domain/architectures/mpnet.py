"""MPNet (Song et al. 2020) as a sentence encoder: BERT's post-LN layers plus a relative
position bias on every layer's attention scores.

As in transformers' MPNetModel:
- embeddings are words plus absolute positions numbered as RoBERTa numbers them, from
  padding_idx + 1 (padding_idx is 1 in code, whatever config.json says), with no token types;
- every layer adds one shared bias to its scaled attention scores, per head, looked up by the
  key's offset from the query (j - i) in T5-style buckets: offsets within ±7 get a bucket each,
  larger ones share logarithmically wider buckets up to ±128, past which all share the last.
  transformers always computes 32 buckets over a distance of 128 (MPNetEncoder's
  compute_position_bias defaults), reading rows of `encoder.relative_attention_bias`.

Since the bucket depends on the offset alone and is constant past ±128, the loader folds the
bucket lookup into the weights once: `position_bias` holds each head's bias for every offset in
[-128, 128], and the forward pass gathers from it by clipped offset (ops.offset_bias), so every
engine reads the same table, the graphs keep dynamic lengths, and no engine recomputes a
logarithm whose float32 rounding decides a bucket.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from domain.architectures.bert import BertAttention, BertConfig, BertLayer, bert_encoder
from domain.architectures.checkpoint import CheckpointTensors
from domain.ops import Array, Norm, Ops, T
from domain.sentence_head import SentenceHead, sentence_vector

__all__ = [
    "MAX_DISTANCE",
    "NUM_BUCKETS",
    "PADDING_IDX",
    "MPNetConfig",
    "MPNetModel",
    "MPNetWeights",
    "load_mpnet_weights",
    "mpnet_sentence_embedding",
    "relative_position_bucket",
]

PADDING_IDX = 1  # MPNetEmbeddings.padding_idx, fixed in code
NUM_BUCKETS = 32  # compute_position_bias's default, which MPNetEncoder never overrides
MAX_DISTANCE = 128  # relative_position_bucket's default: offsets this far share the last bucket


@dataclass(frozen=True, slots=True)
class MPNetConfig:
    encoder: BertConfig
    relative_attention_num_buckets: int  # rows of the bias table; NUM_BUCKETS of them are read

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> MPNetConfig:
        model_type = raw.get("model_type")
        if model_type != "mpnet":
            msg = f"config.json's model_type {model_type!r} is not MPNet"
            raise ValueError(msg)
        buckets = int(raw.get("relative_attention_num_buckets", NUM_BUCKETS))
        if buckets < NUM_BUCKETS:
            msg = f"relative_attention_num_buckets {buckets} is fewer than the {NUM_BUCKETS} read"
            raise ValueError(msg)
        cfg = cls(encoder=BertConfig.from_json(raw), relative_attention_num_buckets=buckets)
        if cfg.max_tokens < 1:
            msg = "max_position_embeddings leaves no position after padding_idx"
            raise ValueError(msg)
        return cfg

    @property
    def max_tokens(self) -> int:
        """Tokens the position table holds: the first sits at padding_idx + 1 (514 rows, 512)."""
        return self.encoder.max_position_embeddings - PADDING_IDX - 1


@dataclass(frozen=True, slots=True)
class MPNetEmbeddings:
    word_embeddings: Array  # [V,H]
    position_embeddings: Array  # [P,H]
    norm: Norm


@dataclass(frozen=True, slots=True)
class MPNetWeights:
    embeddings: MPNetEmbeddings
    layers: tuple[BertLayer, ...]
    # [2·MAX_DISTANCE+1, NH]: row MAX_DISTANCE + (j - i) is each head's bias for key j of query
    # i, the relative_attention_bias row of that offset's bucket
    position_bias: Array


@dataclass(frozen=True, slots=True)
class MPNetModel:
    config: MPNetConfig
    weights: MPNetWeights
    head: SentenceHead

    @property
    def dimensions(self) -> int:
        return self.head.width(self.config.encoder.hidden_size)

    @property
    def max_tokens(self) -> int:
        return self.config.max_tokens


# --- forward pass, in order -------------------------------------------------------------------


def mpnet_embeddings(ops: Ops[T], ids: T, mask: T, w: MPNetEmbeddings, cfg: MPNetConfig) -> T:
    x = ops.embedding(w.word_embeddings, ids)  # [B,T] -> [B,T,H]
    # RoBERTa's numbering: real tokens from padding_idx + 1, so right-padding shifts no one
    positions = ops.make_positions(ids, mask, PADDING_IDX)  # [B,T]
    x = ops.add(x, ops.embedding(w.position_embeddings, positions))  # no token types
    return ops.layer_norm(x, w.norm, cfg.encoder.layer_norm_eps)


def mpnet_sentence_embedding(ops: Ops[T], ids: T, mask: T, model: MPNetModel) -> T:
    cfg, w = model.config, model.weights
    x = mpnet_embeddings(ops, ids, mask, w.embeddings, cfg)  # [B,T,H]
    # one bias for every layer, by the raw offset of key from query: pads do not shift it
    bias = ops.offset_bias(ids, w.position_bias)  # [1,NH,T,T]
    x = bert_encoder(ops, x, mask, w.layers, cfg.encoder, bias=bias)  # BERT's layers, biased scores
    return sentence_vector(ops, x, mask, model.head)  # [B,D]


# --- the bucket of an offset --------------------------------------------------------------------


def relative_position_bucket(offsets: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The bucket of each key offset j - i, in float32 as transformers computes it (the cut
    between two wide buckets falls where float32's log puts it)."""
    half = NUM_BUCKETS // 2  # keys before and keys after the query get a half each
    exact = half // 2  # offsets nearer than this get a bucket of their own
    n = -offsets
    ahead = np.where(n < 0, half, 0)
    n = np.abs(n)
    ratio = np.maximum(n, 1).astype(np.float32) / np.float32(exact)  # below `exact`: unused
    scale = np.float32(math.log(MAX_DISTANCE / exact))
    wide = exact + (np.log(ratio) / scale * np.float32(half - exact)).astype(np.int64)
    return ahead + np.where(n < exact, n, np.minimum(wide, half - 1))


# --- loading ------------------------------------------------------------------------------------


def load_mpnet_weights(raw: Mapping[str, np.ndarray[Any, Any]], cfg: MPNetConfig) -> MPNetWeights:
    """MPNetModel's tensors, with or without the `mpnet.` prefix (MPNetForMaskedLM's)."""
    t = CheckpointTensors(raw, lambda key: key.removeprefix("mpnet."))
    e, h, i = cfg.encoder, cfg.encoder.hidden_size, cfg.encoder.intermediate_size
    embeddings = MPNetEmbeddings(
        word_embeddings=t.get("embeddings.word_embeddings.weight", (e.vocab_size, h)),
        position_embeddings=t.get(
            "embeddings.position_embeddings.weight", (e.max_position_embeddings, h)
        ),
        norm=t.norm("embeddings.LayerNorm", h),
    )
    layers = []
    for n in range(e.num_hidden_layers):
        p = f"encoder.layer.{n}"
        attention = BertAttention(
            query=t.linear(f"{p}.attention.attn.q", h, h),
            key=t.linear(f"{p}.attention.attn.k", h, h),
            value=t.linear(f"{p}.attention.attn.v", h, h),
            output=t.linear(f"{p}.attention.attn.o", h, h),
        )
        layers.append(
            BertLayer(
                attention=attention,
                attention_norm=t.norm(f"{p}.attention.LayerNorm", h),
                intermediate=t.linear(f"{p}.intermediate.dense", i, h),
                output=t.linear(f"{p}.output.dense", h, i),
                output_norm=t.norm(f"{p}.output.LayerNorm", h),
            )
        )
    table = t.get(
        "encoder.relative_attention_bias.weight",
        (cfg.relative_attention_num_buckets, e.num_attention_heads),
    )
    offsets = np.arange(-MAX_DISTANCE, MAX_DISTANCE + 1, dtype=np.int64)
    position_bias = np.ascontiguousarray(table[relative_position_bucket(offsets)])
    return MPNetWeights(embeddings, tuple(layers), position_bias)
