"""Cross-encoders: BERT and XLM-RoBERTa reading a (query, document) pair, scoring it as one logit.

transformers' BertForSequenceClassification and XLMRobertaForSequenceClassification with one
label, as sentence-transformers' CrossEncoder runs them: the encoder we already have
(domain/architectures/bert.py, roberta.py), then the classifier head each architecture defines on
the first token's state, then CrossEncoder.predict's activation (sigmoid for one label unless the
repo names another). The forward gives both, [B,2]: the logit (`raw_scores`) and the score.

Token types ride in the attention mask (docs/adr/0008-token-types-in-the-mask.md): a token of the
pair's second text (token type 1) is marked SECOND_TEXT instead of 1, so the graph inputs stay
`input_ids` and `attention_mask`. BERT looks its type rows up by mask value; XLM-RoBERTa has one
token type, and reads every mask value above 0 as a real token, as it reads a prompt's.

Checkpoint keys are transformers': the encoder under `bert.` / `roberta.`; BERT's
`bert.pooler.dense` (tanh) and `classifier`; XLM-RoBERTa's `classifier.dense`
(tanh) and `classifier.out_proj`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from domain.architectures.bert import BertConfig, BertWeights, bert_encoder, load_bert_weights
from domain.architectures.checkpoint import CheckpointTensors
from domain.architectures.roberta import RobertaConfig, load_roberta_weights, roberta_embeddings
from domain.ops import Array, Linear, Ops, T
from domain.sentence_head import PROMPT_TOKEN

__all__ = [
    "SCORE_COLUMNS",
    "SECOND_TEXT",
    "BertCrossEncoder",
    "ClassifierHead",
    "RobertaCrossEncoder",
    "ScoreActivation",
    "bert_pair_scores",
    "label_count",
    "load_bert_cross_encoder",
    "load_roberta_cross_encoder",
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


def _scale(factor: float, shift: float) -> Linear:
    return Linear(np.full((1, 1), factor, np.float32), np.full(1, shift, np.float32))


def bert_pair_scores(ops: Ops[T], ids: T, mask: T, model: BertCrossEncoder) -> T:
    x = _bert_pair_embeddings(ops, ids, mask, model)  # [B,T,H]
    x = bert_encoder(ops, x, mask, model.weights.layers, model.config)  # [B,T,H]
    return _scores(ops, x, model.head)  # [B,2]


def roberta_pair_scores(ops: Ops[T], ids: T, mask: T, model: RobertaCrossEncoder) -> T:
    cfg = model.config
    x = roberta_embeddings(ops, ids, mask, model.weights.embeddings, cfg)  # one token type
    x = bert_encoder(ops, x, mask, model.weights.layers, cfg.encoder)  # [B,T,H]
    return _scores(ops, x, model.head)  # [B,2]


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
