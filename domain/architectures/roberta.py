"""RoBERTa (Liu et al. 2019) and XLM-RoBERTa (Conneau et al. 2019) as sentence encoders.

Both are BERT's post-LN encoder with other embeddings: positions numbered as fairseq numbers
them (from padding_idx + 1, pads left at padding_idx) and a single token type. XLM-RoBERTa
differs only in its vocabulary, so one definition serves both `model_type`s. The checkpoint keys
are BertModel's, bare (sentence-transformers saves) or under `roberta.` beside an `lm_head.*`
(the FacebookAI repos, saved as RobertaForMaskedLM).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from domain.architectures.bert import (
    BertConfig,
    BertEmbeddings,
    BertWeights,
    bert_encoder,
    load_bert_weights,
)
from domain.ops import Ops, T
from domain.sentence_head import SentenceHead, sentence_vector

__all__ = [
    "ROBERTA_MODEL_TYPES",
    "RobertaConfig",
    "RobertaModel",
    "load_roberta_weights",
    "roberta_sentence_embedding",
]

ROBERTA_MODEL_TYPES = frozenset({"roberta", "xlm-roberta"})


@dataclass(frozen=True, slots=True)
class RobertaConfig:
    encoder: BertConfig
    padding_idx: int  # config.json's pad_token_id: the position row below the first token's

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> RobertaConfig:
        model_type = raw.get("model_type")
        if model_type not in ROBERTA_MODEL_TYPES:
            msg = f"config.json's model_type {model_type!r} is not RoBERTa or XLM-RoBERTa"
            raise ValueError(msg)
        pad = raw.get("pad_token_id", 1)  # transformers' RobertaConfig default
        if not isinstance(pad, int) or pad < 0:
            msg = f"pad_token_id {pad!r} is not a token id: RoBERTa numbers positions after it"
            raise ValueError(msg)
        cfg = cls(encoder=BertConfig.from_json(raw), padding_idx=pad)
        if cfg.max_tokens < 1:
            msg = "max_position_embeddings leaves no position after padding_idx"
            raise ValueError(msg)
        return cfg

    @property
    def max_tokens(self) -> int:
        """Tokens the position table holds: the first sits at padding_idx + 1 (514 rows, 512)."""
        return self.encoder.max_position_embeddings - self.padding_idx - 1


@dataclass(frozen=True, slots=True)
class RobertaModel:
    config: RobertaConfig
    weights: BertWeights
    head: SentenceHead

    @property
    def dimensions(self) -> int:
        return self.head.width(self.config.encoder.hidden_size)

    @property
    def max_tokens(self) -> int:
        return self.config.max_tokens


# --- forward pass, in order -------------------------------------------------------------------


def roberta_embeddings(ops: Ops[T], ids: T, mask: T, w: BertEmbeddings, cfg: RobertaConfig) -> T:
    x = ops.embedding(w.word_embeddings, ids)  # [B,T] -> [B,T,H]
    # fairseq numbering: real tokens from padding_idx + 1, so right-padding shifts no one
    positions = ops.make_positions(ids, mask, cfg.padding_idx)  # [B,T]
    x = ops.add(x, ops.embedding(w.position_embeddings, positions))
    x = ops.add(x, w.token_type_embeddings[0])  # a type vocabulary of one: no token types
    return ops.layer_norm(x, w.norm, cfg.encoder.layer_norm_eps)


def roberta_sentence_embedding(ops: Ops[T], ids: T, mask: T, model: RobertaModel) -> T:
    cfg, w = model.config, model.weights
    x = roberta_embeddings(ops, ids, mask, w.embeddings, cfg)  # [B,T,H]
    x = bert_encoder(ops, x, mask, w.layers, cfg.encoder)  # BERT's post-LN layers, unchanged
    return sentence_vector(ops, x, mask, model.head)  # [B,D]


# --- loading ------------------------------------------------------------------------------------


def load_roberta_weights(
    raw: Mapping[str, np.ndarray[Any, Any]], cfg: RobertaConfig
) -> BertWeights:
    """BertModel's tensors, with or without the `roberta.` prefix; `lm_head.*` is not read."""
    bare = {key.removeprefix("roberta."): tensor for key, tensor in raw.items()}
    return load_bert_weights(bare, cfg.encoder)
