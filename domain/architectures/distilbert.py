"""DistilBERT (Sanh et al. 2019) as a sentence encoder: BERT's post-LN layers, fewer of them.

What differs from BERT is the embeddings (no token types) and the checkpoint's names:
transformers' DistilBertModel calls hidden_size `dim`, the FFN width `hidden_dim`, and stores
each layer as `transformer.layer.N.{attention.q_lin, ..., sa_layer_norm, ffn.lin1, ...}`.
Its LayerNorm eps is fixed at 1e-12 in code, not in config.json. The keys are bare (the
sentence-transformers repos) or under `distilbert.` beside a prediction head
(DistilBertForMaskedLM).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from domain.architectures.bert import BertAttention, BertConfig, BertLayer, bert_encoder
from domain.architectures.checkpoint import CheckpointTensors
from domain.ops import Array, Norm, Ops, T
from domain.sentence_head import SentenceHead, sentence_vector

__all__ = [
    "DistilBertConfig",
    "DistilBertEmbeddings",
    "DistilBertModel",
    "DistilBertWeights",
    "distilbert_sentence_embedding",
    "load_distilbert_weights",
]

_LAYER_NORM_EPS = 1e-12  # transformers' DistilBERT hard-codes it


@dataclass(frozen=True, slots=True)
class DistilBertConfig:
    encoder: BertConfig  # config.json in BERT's terms: dim -> hidden_size, n_layers -> ...

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> DistilBertConfig:
        """Read config.json; refuse the variants this forward pass does not implement."""
        model_type = raw.get("model_type")
        if model_type != "distilbert":
            msg = f"config.json's model_type {model_type!r} is not DistilBERT"
            raise ValueError(msg)
        act = raw.get("activation", "gelu")
        if act != "gelu":
            msg = f"activation {act!r} is not supported (only exact 'gelu')"
            raise ValueError(msg)
        if raw.get("sinusoidal_pos_embds", False):
            msg = "sinusoidal_pos_embds is not supported (only learned positions)"
            raise ValueError(msg)
        encoder = BertConfig(
            vocab_size=int(raw["vocab_size"]),
            hidden_size=int(raw["dim"]),
            num_hidden_layers=int(raw["n_layers"]),
            num_attention_heads=int(raw["n_heads"]),
            intermediate_size=int(raw["hidden_dim"]),
            max_position_embeddings=int(raw.get("max_position_embeddings", 512)),
            type_vocab_size=0,  # no token types
            layer_norm_eps=_LAYER_NORM_EPS,
        )
        if encoder.hidden_size % encoder.num_attention_heads:
            msg = "dim must be a multiple of n_heads"
            raise ValueError(msg)
        return cls(encoder)

    @property
    def max_tokens(self) -> int:
        return self.encoder.max_position_embeddings


@dataclass(frozen=True, slots=True)
class DistilBertEmbeddings:
    word_embeddings: Array  # [V,H]
    position_embeddings: Array  # [P,H]
    norm: Norm


@dataclass(frozen=True, slots=True)
class DistilBertWeights:
    embeddings: DistilBertEmbeddings
    layers: tuple[BertLayer, ...]


@dataclass(frozen=True, slots=True)
class DistilBertModel:
    config: DistilBertConfig
    weights: DistilBertWeights
    head: SentenceHead

    @property
    def dimensions(self) -> int:
        return self.head.width(self.config.encoder.hidden_size)

    @property
    def max_tokens(self) -> int:
        return self.config.max_tokens


# --- forward pass, in order -------------------------------------------------------------------


def distilbert_embeddings(ops: Ops[T], ids: T, w: DistilBertEmbeddings) -> T:
    x = ops.embedding(w.word_embeddings, ids)  # [B,T] -> [B,T,H]
    x = ops.add(x, ops.embedding(w.position_embeddings, ops.positions(ids)))  # no token types
    return ops.layer_norm(x, w.norm, _LAYER_NORM_EPS)


def distilbert_sentence_embedding(ops: Ops[T], ids: T, mask: T, model: DistilBertModel) -> T:
    cfg, w = model.config, model.weights
    x = distilbert_embeddings(ops, ids, w.embeddings)  # [B,T,H]
    x = bert_encoder(ops, x, mask, w.layers, cfg.encoder)  # BERT's post-LN layers, unchanged
    return sentence_vector(ops, x, mask, model.head)  # [B,D]


# --- loading ------------------------------------------------------------------------------------


def load_distilbert_weights(
    raw: Mapping[str, np.ndarray[Any, Any]], cfg: DistilBertConfig
) -> DistilBertWeights:
    """DistilBertModel's tensors, with or without the `distilbert.` prefix."""
    t = CheckpointTensors(raw, lambda key: key.removeprefix("distilbert."))
    e, h, i = cfg.encoder, cfg.encoder.hidden_size, cfg.encoder.intermediate_size
    embeddings = DistilBertEmbeddings(
        word_embeddings=t.get("embeddings.word_embeddings.weight", (e.vocab_size, h)),
        position_embeddings=t.get(
            "embeddings.position_embeddings.weight", (e.max_position_embeddings, h)
        ),
        norm=t.norm("embeddings.LayerNorm", h),
    )
    layers = []
    for n in range(e.num_hidden_layers):
        p = f"transformer.layer.{n}"
        attention = BertAttention(
            query=t.linear(f"{p}.attention.q_lin", h, h),
            key=t.linear(f"{p}.attention.k_lin", h, h),
            value=t.linear(f"{p}.attention.v_lin", h, h),
            output=t.linear(f"{p}.attention.out_lin", h, h),
        )
        layers.append(
            BertLayer(
                attention=attention,
                attention_norm=t.norm(f"{p}.sa_layer_norm", h),
                intermediate=t.linear(f"{p}.ffn.lin1", i, h),
                output=t.linear(f"{p}.ffn.lin2", h, i),
                output_norm=t.norm(f"{p}.output_layer_norm", h),
            )
        )
    return DistilBertWeights(embeddings=embeddings, layers=tuple(layers))
