"""Cross-encoders: BERT, XLM-RoBERTa and ModernBERT reading a (query, document) pair, scoring it
as one logit.

transformers' BertForSequenceClassification, XLMRobertaForSequenceClassification and
ModernBertForSequenceClassification with one label, as sentence-transformers' CrossEncoder runs
them: the encoder we already have (domain/architectures/bert.py, roberta.py, modernbert.py), then
the classifier head each architecture defines, then CrossEncoder.predict's activation (sigmoid for
one label unless the repo names another). The forward gives both, [B,2]: the logit
(`raw_scores`) and the score.

Token types ride in the attention mask (docs/adr/0008-token-types-in-the-mask.md): a token of the
pair's second text (token type 1) is marked SECOND_TEXT instead of 1, so the graph inputs stay
`input_ids` and `attention_mask`. BERT looks its type rows up by mask value; XLM-RoBERTa has one
token type, and reads every mask value above 0 as a real token, as it reads a prompt's.

ModernBERT reads no token types (its tokenizer's pair template marks them, transformers drops
them): it pools the sequence (config.json's `classifier_pooling`, the first token or the mean of
every real token), then `head` (dense, `classifier_activation`, a bias-free LayerNorm) and
`classifier`.

Checkpoint keys are transformers': the encoder under `bert.` / `roberta.` / `model.`; BERT's
`bert.pooler.dense` (tanh) and `classifier`; XLM-RoBERTa's `classifier.dense`
(tanh) and `classifier.out_proj`; ModernBERT's `head.dense`, `head.norm` and `classifier`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from domain.architectures.bert import BertConfig, BertWeights, bert_encoder, load_bert_weights
from domain.architectures.checkpoint import CheckpointTensors
from domain.architectures.modernbert import (
    ModernBertConfig,
    ModernBertWeights,
    bias_free_norm,
    load_modernbert_weights,
    modernbert_encoder,
)
from domain.architectures.roberta import RobertaConfig, load_roberta_weights, roberta_embeddings
from domain.ops import Array, Linear, Norm, Ops, T
from domain.sentence_head import PROMPT_TOKEN

__all__ = [
    "SCORE_COLUMNS",
    "SECOND_TEXT",
    "BertCrossEncoder",
    "ClassifierHead",
    "ModernBertClassifier",
    "ModernBertCrossEncoder",
    "RobertaCrossEncoder",
    "ScoreActivation",
    "bert_pair_scores",
    "label_count",
    "load_bert_cross_encoder",
    "load_modernbert_cross_encoder",
    "load_roberta_cross_encoder",
    "modernbert_classifier",
    "modernbert_pair_scores",
    "roberta_pair_scores",
    "score_activation",
]

# the attention-mask value of a token of the pair's second text: token type 1, read as real
SECOND_TEXT = 3
# the forward's output columns: the classifier's logit, and the score CrossEncoder.predict gives
SCORE_COLUMNS = 2
_MASK_VALUES = SECOND_TEXT + 1  # 0 padding, 1 a token, PROMPT_TOKEN, SECOND_TEXT
_TORCH_ACTIVATIONS = {
    "torch.nn.modules.activation.Sigmoid": "sigmoid",
    "torch.nn.Sigmoid": "sigmoid",
    "torch.nn.modules.linear.Identity": "identity",
    "torch.nn.Identity": "identity",
    "torch.nn.modules.activation.Tanh": "tanh",
    "torch.nn.Tanh": "tanh",
}


# ModernBERT's `classifier_activation`, by transformers' ACT2FN name, and `classifier_pooling`
_HEAD_ACTIVATIONS = ("gelu", "gelu_pytorch_tanh", "silu", "tanh")
_HEAD_POOLING = ("cls", "mean")


class ScoreActivation(enum.StrEnum):
    """What CrossEncoder.predict applies to the logit, by the torch class it names."""

    SIGMOID = "sigmoid"  # its default for one label
    IDENTITY = "identity"
    TANH = "tanh"


def score_activation(
    config: Mapping[str, Any], sentence_transformers: Mapping[str, Any]
) -> ScoreActivation:
    """The activation as CrossEncoder finds it: config_sentence_transformers.json's
    `activation_fn` (`sentence_transformers`: that file's object, which CrossEncoder reads only
    from a repo with modules.json; {} otherwise), else config.json's
    `sentence_transformers.activation_fn`, else the legacy
    `sbert_ce_default_activation_function`, else sigmoid (one label). A path outside `torch.` is
    skipped, as CrossEncoder skips it without trust_remote_code; a torch class we do not run is
    refused (ValueError)."""
    nested = config.get("sentence_transformers")
    candidates = (
        sentence_transformers.get("activation_fn"),
        nested.get("activation_fn") if isinstance(nested, dict) else None,
        config.get("sbert_ce_default_activation_function"),
    )
    for path in candidates:
        if not isinstance(path, str) or not path.startswith("torch."):
            continue
        if path not in _TORCH_ACTIVATIONS:
            msg = f"the cross-encoder's activation_fn {path!r} is not supported"
            raise ValueError(msg)
        return ScoreActivation(_TORCH_ACTIVATIONS[path])
    return ScoreActivation.SIGMOID


def label_count(config: Mapping[str, Any]) -> int:
    """transformers' num_labels: as many as `id2label` names, else `num_labels`, else 2."""
    id2label = config.get("id2label")
    if isinstance(id2label, dict) and id2label:
        return len(id2label)
    value = config.get("num_labels", 2)
    return value if isinstance(value, int) and not isinstance(value, bool) else 2


@dataclass(frozen=True, slots=True)
class ClassifierHead:
    dense: Linear  # [H,H], then tanh: BERT's pooler, XLM-RoBERTa's classifier.dense
    out: Linear  # [1,H]: BERT's classifier, XLM-RoBERTa's classifier.out_proj
    activation: ScoreActivation


@dataclass(frozen=True, slots=True)
class BertCrossEncoder:
    config: BertConfig
    weights: BertWeights
    types_by_mask: Array  # [4,H]: the token-type row each attention-mask value stands for
    head: ClassifierHead

    @property
    def dimensions(self) -> int:
        return SCORE_COLUMNS

    @property
    def max_tokens(self) -> int:
        return self.config.max_position_embeddings


@dataclass(frozen=True, slots=True)
class RobertaCrossEncoder:
    config: RobertaConfig
    weights: BertWeights
    head: ClassifierHead

    @property
    def dimensions(self) -> int:
        return SCORE_COLUMNS

    @property
    def max_tokens(self) -> int:
        return self.config.max_tokens


@dataclass(frozen=True, slots=True)
class ModernBertClassifier:
    """config.json's description of ModernBertForSequenceClassification's head."""

    pooling: str  # "cls" or "mean"
    activation: str  # an ACT2FN name of _HEAD_ACTIVATIONS
    bias: bool  # classifier_bias: whether head.dense has one


@dataclass(frozen=True, slots=True)
class ModernBertHead:
    kind: ModernBertClassifier
    dense: Linear  # [H,H]: head.dense
    norm: Norm  # head.norm, without a bias (norm_bias false, as the encoder's)
    out: Linear  # [1,H]: classifier
    activation: ScoreActivation


@dataclass(frozen=True, slots=True)
class ModernBertCrossEncoder:
    config: ModernBertConfig
    weights: ModernBertWeights
    head: ModernBertHead

    @property
    def dimensions(self) -> int:
        return SCORE_COLUMNS

    @property
    def max_tokens(self) -> int:
        return self.config.max_position_embeddings


def modernbert_classifier(raw: Mapping[str, Any]) -> ModernBertClassifier:
    """The head config.json describes, with ModernBertConfig's defaults (cls, gelu, no bias);
    a pooling or activation this forward does not run is refused (ValueError)."""
    kind = ModernBertClassifier(
        pooling=str(raw.get("classifier_pooling", "cls")),
        activation=str(raw.get("classifier_activation", "gelu")),
        bias=bool(raw.get("classifier_bias", False)),
    )
    if kind.pooling not in _HEAD_POOLING:
        msg = f"classifier_pooling {kind.pooling!r} is not one of {_HEAD_POOLING!r}"
        raise ValueError(msg)
    if kind.activation not in _HEAD_ACTIVATIONS:
        msg = f"classifier_activation {kind.activation!r} is not one of {_HEAD_ACTIVATIONS!r}"
        raise ValueError(msg)
    return kind


# --- forward pass, in order -------------------------------------------------------------------


def _bert_pair_embeddings(ops: Ops[T], ids: T, mask: T, model: BertCrossEncoder) -> T:
    w, cfg = model.weights.embeddings, model.config
    x = ops.embedding(w.word_embeddings, ids)  # [B,T] -> [B,T,H]
    x = ops.add(x, ops.embedding(w.position_embeddings, ops.positions(ids)))
    # the mask value names the token type (SECOND_TEXT: type 1), so no third graph input
    x = ops.add(x, ops.embedding(model.types_by_mask, mask))  # [B,T] -> [B,T,H]
    return ops.layer_norm(x, w.norm, cfg.layer_norm_eps)


def _scores(ops: Ops[T], hidden: T, head: ClassifierHead) -> T:
    first = ops.token_at(hidden, 0)  # [B,T,H] -> [B,H]: [CLS] / <s>
    logit = ops.linear(ops.tanh(ops.linear(first, head.dense)), head.out)  # [B,H] -> [B,1]
    return ops.concat([logit, _activated(ops, logit, head.activation)])  # [B,2]


def _activated(ops: Ops[T], logit: T, activation: ScoreActivation) -> T:
    match activation:
        case ScoreActivation.SIGMOID:
            # sigmoid(x) = (1 + tanh(x/2)) / 2: the ops' tanh and two 1x1 linears, so every engine
            # runs it with no op of its own (within 1e-7 of torch's sigmoid in float32)
            half = ops.linear(logit, _scale(0.5, 0.0))
            return ops.linear(ops.tanh(half), _scale(0.5, 0.5))
        case ScoreActivation.TANH:
            return ops.tanh(logit)
        case ScoreActivation.IDENTITY:
            return ops.linear(logit, _scale(1.0, 0.0))  # a copy: the two columns stay apart


def _scale(factor: float, shift: float, width: int = 1) -> Linear:
    """x · factor + shift on each of `width` features (a diagonal)."""
    weight = np.diag(np.full(width, factor, np.float32))
    return Linear(weight, np.full(width, shift, np.float32))


def bert_pair_scores(ops: Ops[T], ids: T, mask: T, model: BertCrossEncoder) -> T:
    x = _bert_pair_embeddings(ops, ids, mask, model)  # [B,T,H]
    x = bert_encoder(ops, x, mask, model.weights.layers, model.config)  # [B,T,H]
    return _scores(ops, x, model.head)  # [B,2]


def roberta_pair_scores(ops: Ops[T], ids: T, mask: T, model: RobertaCrossEncoder) -> T:
    cfg = model.config
    x = roberta_embeddings(ops, ids, mask, model.weights.embeddings, cfg)  # one token type
    x = bert_encoder(ops, x, mask, model.weights.layers, cfg.encoder)  # [B,T,H]
    return _scores(ops, x, model.head)  # [B,2]


def modernbert_pair_scores(ops: Ops[T], ids: T, mask: T, model: ModernBertCrossEncoder) -> T:
    cfg, head = model.config, model.head
    x = modernbert_encoder(ops, ids, mask, model.weights, cfg)  # [B,T,H]
    cls = head.kind.pooling == "cls"
    pooled = ops.token_at(x, 0) if cls else _real_mean(ops, x, mask, cfg.hidden_size)  # [B,H]
    h = _head_activation(ops, ops.linear(pooled, head.dense), head.kind.activation)  # [B,H]
    logit = ops.linear(ops.layer_norm(h, head.norm, cfg.norm_eps), head.out)  # [B,H] -> [B,1]
    return ops.concat([logit, _activated(ops, logit, head.activation)])  # [B,2]


def _real_mean(ops: Ops[T], x: T, mask: T, hidden: int) -> T:
    """[B,T,H] -> [B,H]: the mean over every real token, as transformers weighs them (its mask
    is 0 / 1). ops.pool would weigh the document's tokens by their SECOND_TEXT mark; attention
    with zero queries and keys scores every real key (mask above 0) alike, so each of its rows
    is that mean, on every engine, with no op of its own."""
    zeros = ops.linear(x, _scale(0.0, 0.0, hidden))  # [B,T,H] of 0
    return ops.token_at(ops.attention(zeros, zeros, x, mask, 1), 0)


def _head_activation(ops: Ops[T], x: T, name: str) -> T:
    match name:
        case "gelu":  # ACT2FN's exact erf GELU
            return ops.gelu_erf(x)
        case "gelu_pytorch_tanh":
            return ops.gelu_tanh(x)
        case "silu":
            return ops.silu(x)
        case _:  # "tanh": modernbert_classifier admits nothing else
            return ops.tanh(x)


# --- loading ------------------------------------------------------------------------------------


def _head(
    t: CheckpointTensors, dense: str, out: str, hidden: int, activation: ScoreActivation
) -> ClassifierHead:
    return ClassifierHead(t.linear(dense, hidden, hidden), t.linear(out, 1, hidden), activation)


def load_bert_cross_encoder(
    raw: Mapping[str, np.ndarray[Any, Any]], cfg: BertConfig, activation: ScoreActivation
) -> BertCrossEncoder:
    """BertForSequenceClassification's tensors: `bert.*`, `bert.pooler.dense`, `classifier`."""
    weights = load_bert_weights(raw, cfg)
    t, h = CheckpointTensors(raw, lambda key: key.removeprefix("bert.")), cfg.hidden_size
    types = weights.embeddings.token_type_embeddings  # [TV,H]
    second = types[1] if len(types) > 1 else types[0]
    by_mask = np.stack([types[0]] * SECOND_TEXT + [second])  # padding, token, prompt: type 0
    assert by_mask.shape[0] == _MASK_VALUES  # noqa: S101 - a loader check, not the hot path
    assert PROMPT_TOKEN < SECOND_TEXT  # noqa: S101
    head = _head(t, "pooler.dense", "classifier", h, activation)
    return BertCrossEncoder(cfg, weights, np.ascontiguousarray(by_mask), head)


def load_roberta_cross_encoder(
    raw: Mapping[str, np.ndarray[Any, Any]], cfg: RobertaConfig, activation: ScoreActivation
) -> RobertaCrossEncoder:
    """XLMRobertaForSequenceClassification's tensors: `roberta.*` and `classifier.dense`,
    `classifier.out_proj`."""
    weights = load_roberta_weights(raw, cfg)
    t, h = CheckpointTensors(raw), cfg.encoder.hidden_size
    head = _head(t, "classifier.dense", "classifier.out_proj", h, activation)
    return RobertaCrossEncoder(cfg, weights, head)


def load_modernbert_cross_encoder(
    raw: Mapping[str, np.ndarray[Any, Any]],
    cfg: ModernBertConfig,
    kind: ModernBertClassifier,
    activation: ScoreActivation,
) -> ModernBertCrossEncoder:
    """ModernBertForSequenceClassification's tensors: `model.*`, `head.dense`, `head.norm`,
    `classifier`."""
    weights = load_modernbert_weights(raw, cfg)
    t, h = CheckpointTensors(raw), cfg.hidden_size
    dense = t.linear("head.dense", h, h) if kind.bias else t.projection("head.dense.weight", h, h)
    norm = bias_free_norm(t, "head.norm.weight", h)
    head = ModernBertHead(kind, dense, norm, t.linear("classifier", 1, h), activation)
    return ModernBertCrossEncoder(cfg, weights, head)
