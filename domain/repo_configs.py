"""What a Hugging Face repo is, decided from its small config files alone, before any weight.

The store fetches the files CONFIG_FILES and MODULE_CONFIGS name (a few kB) and hands them over
parsed, `{repo path: JSON value}`; `describe_repo` turns them into the ModelSpec a catalogue entry
would be, or refuses the repo. What decides:

- the family: config.json's `architectures` through domain.families.ARCHITECTURES, else its
  `model_type` through MODEL_TYPES. A config with `auto_map` (the repo's own Python code) gets
  no `model_type` fallback: only an architecture we wrote ourselves runs, and then as ours;
- the width: the last Dense module's `out_features`, else the hidden size times the number of
  pooling modes (they concatenate), CLIP's `projection_dim`;
- the token limit: sentence_bert_config.json's `max_seq_length`, else tokenizer_config.json's
  `model_max_length`, each capped at what the position table holds (RoBERTa's starts after
  padding_idx, so 514 rows hold 512 tokens), as sentence-transformers reads them;
- the pooling: the Pooling module's config (modules.json), mean for a plain transformers repo.

At load time the folder's own files are authoritative (adapters/weights/model_folder.py); these
values are what the listings report, as a catalogue entry's are. Every file is read defensively:
a value of the wrong type is as good as absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.architectures.cross_encoder import (
    label_count,
    modernbert_classifier,
    score_activation,
)
from domain.architectures.modernbert import ModernBertConfig
from domain.architectures.nomic_bert import NomicBertConfig
from domain.errors import ArchitectureNotSupported, ModelUnavailable
from domain.families import ARCHITECTURES, FAMILIES, MODEL_TYPES
from domain.models import Family, ModelSpec, PoolingMode, Task

__all__ = [
    "CONFIG_FILES",
    "MODULE_CONFIGS",
    "describe_repo",
    "pooling_modes",
    "supported_architectures",
]

# fetched when the repo has them: what describe_repo reads
CONFIG_FILES = (
    "config.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "tokenizer_config.json",
)
# fnmatch patterns: the sentence-transformers modules whose configs change the vectors' shape
MODULE_CONFIGS = ("*_Pooling/config.json", "*_Dense/config.json")

_MODEL2VEC_MAX_LENGTH = 512  # model2vec's StaticModel, where config.json names no max_length
_DEFAULT_POSITIONS = 512  # transformers' BertConfig default for max_position_embeddings
_ROBERTA_PAD = 1  # transformers' RobertaConfig default pad_token_id
# the hidden width, as each config spells it: BERT-likes, DistilBERT, T5-likes, GPT-likes
_WIDTH_KEYS = ("hidden_size", "dim", "d_model", "n_embd")
# model types whose positions start after padding_idx (fairseq's numbering), so a table of
# N rows holds N - padding_idx - 1 tokens
_POSITIONS_AFTER_PADDING = frozenset({"roberta", "xlm-roberta", "mpnet", "camembert"})
# sentence-transformers' legacy boolean keys, in the order it concatenates the modes
_LEGACY_POOLING_KEYS = (
    ("pooling_mode_cls_token", PoolingMode.CLS),
    ("pooling_mode_max_tokens", PoolingMode.MAX),
    ("pooling_mode_mean_tokens", PoolingMode.MEAN),
    ("pooling_mode_mean_sqrt_len_tokens", PoolingMode.MEAN_SQRT_LEN),
    ("pooling_mode_weightedmean_tokens", PoolingMode.WEIGHTED_MEAN),
    ("pooling_mode_lasttoken", PoolingMode.LAST_TOKEN),
)


def supported_architectures() -> tuple[str, ...]:
    return tuple(ARCHITECTURES)


def describe_repo(
    name: str, repo_id: str, revision: str, configs: Mapping[str, Any]
) -> ModelSpec | ArchitectureNotSupported | ModelUnavailable:
    """The model `configs` describe, named `name`; refused when its architecture is not ours."""
    config = _object(configs.get("config.json"))
    family = _family(config)
    if not isinstance(family, Family):
        return ArchitectureNotSupported(name, family, supported_architectures())
    if family is Family.MODEL2VEC:
        return _model2vec(name, repo_id, revision, config)
    if family is Family.NOMIC_BERT:  # one class name for variants we do not run (v2-moe's MoE)
        try:
            NomicBertConfig.from_json(config)
        except (ValueError, KeyError, TypeError) as err:
            return ModelUnavailable(name, f"its config.json: {err}")
    if FAMILIES[family].task is Task.RERANK:
        return _cross_encoder(name, repo_id, revision, family, configs)
    modes = (PoolingMode.EOS,) if family is Family.CLIP else _pooling(configs)
    width = _positive(config.get("projection_dim"), 512) if family is Family.CLIP else None
    if width is None:
        hidden = next((w for k in _WIDTH_KEYS if (w := _positive(config.get(k), 0))), 0)
        if not hidden:
            return ModelUnavailable(name, "its config.json gives no hidden_size")
        width = _dense_width(configs) or hidden * len(modes)
    return ModelSpec(
        name,
        repo_id,
        family,
        width,
        _max_tokens(family, config, configs),
        modes[0],
        revision=revision,
    )


def _model2vec(
    name: str, repo_id: str, revision: str, config: Mapping[str, Any]
) -> ModelSpec | ModelUnavailable:
    """A model2vec repo: its width is hidden_dim; max_length absent is model2vec's 512, null
    is no limit (adapters/weights/model_folder.py reads it the same way at load)."""
    width = _positive(config.get("hidden_dim"), 0)
    if not width:
        return ModelUnavailable(name, "its config.json gives no hidden_dim")
    limit = config.get("max_length", _MODEL2VEC_MAX_LENGTH)
    max_tokens = None if limit is None else _positive(limit, _MODEL2VEC_MAX_LENGTH)
    return ModelSpec(
        name, repo_id, Family.MODEL2VEC, width, max_tokens, PoolingMode.MEAN, revision=revision
    )


def _cross_encoder(
    name: str, repo_id: str, revision: str, family: Family, configs: Mapping[str, Any]
) -> ModelSpec | ModelUnavailable:
    """A cross-encoder: one label (its one score is its width), an activation we run, the
    token limit as for an encoder; its pooling is its head's (the first token, or ModernBERT's
    classifier_pooling), not sentence-transformers'."""
    config = _object(configs.get("config.json"))
    labels = label_count(config)
    if labels != 1:
        return ModelUnavailable(
            name, f"it is a classifier with {labels} labels; a reranker has one (its score)"
        )
    try:
        # CrossEncoder reads its own config file only for a repo saved with modules.json
        saved = "modules.json" in configs
        own = _object(configs.get("config_sentence_transformers.json")) if saved else {}
        score_activation(config, own)
        if family is Family.MODERNBERT_CROSS_ENCODER:  # a head and a pooling of its own
            ModernBertConfig.from_json(config)
            modernbert_classifier(config)
    except (ValueError, KeyError, TypeError) as exc:
        return ModelUnavailable(name, str(exc))
    max_tokens = _max_tokens(family, config, configs)
    return ModelSpec(name, repo_id, family, 1, max_tokens, PoolingMode.CLS, revision=revision)


def _family(config: Mapping[str, Any]) -> Family | str:
    """The family config.json names, or the architecture it names that we do not run."""
    architectures = config.get("architectures")
    named = (
        [a for a in architectures if isinstance(a, str)] if isinstance(architectures, list) else []
    )
    for architecture in named:
        if architecture in ARCHITECTURES:
            return ARCHITECTURES[architecture]
    if named:
        return named[0]
    model_type = config.get("model_type")
    if "auto_map" in config:  # custom code that names no architecture of ours: never run
        return model_type if isinstance(model_type, str) else ""
    if isinstance(model_type, str):
        return MODEL_TYPES.get(model_type, model_type)
    return ""


def _modules(configs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(kind, path) of each module modules.json lists, kind as the class name."""
    modules = configs.get("modules.json")
    if not isinstance(modules, list):
        return []
    listed = []
    for module in modules:
        if isinstance(module, dict):
            kind = str(module.get("type", "")).rsplit(".", 1)[-1]
            listed.append((kind, str(module.get("path", "")).strip("/")))
    return listed


def _module_config(configs: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    return _object(configs.get(f"{path}/config.json" if path else "config.json"))


def _pooling(configs: Mapping[str, Any]) -> tuple[PoolingMode, ...]:
    for kind, path in _modules(configs):
        if kind == "Pooling":
            try:
                return pooling_modes(_module_config(configs, path))
            except ValueError:  # refused at load time, with the reason; a listing shows mean
                return (PoolingMode.MEAN,)
    return (PoolingMode.MEAN,)  # what sentence-transformers gives a plain transformers repo


def pooling_modes(config: Mapping[str, Any]) -> tuple[PoolingMode, ...]:
    """A Pooling module's modes from its config.json, as sentence-transformers reads them:
    `pooling_mode` (a name, or a list concatenated in its order), else the legacy boolean keys
    in their fixed order. The one reading, for the listings (here) and the load
    (adapters/weights/model_folder.py), so the two cannot drift.

    Raises ValueError for a mode we do not run, or a config that enables none.
    """
    if "pooling_mode" in config:
        raw = config["pooling_mode"]
        names = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else [raw]
        known = {m.value for m in PoolingMode}
        for name in names:
            if name not in known:
                msg = f"the Pooling module's pooling_mode {name!r} is not supported"
                raise ValueError(msg)
        modes = tuple(PoolingMode(n) for n in names)
    else:
        # truthy, as sentence-transformers' Pooling(**config) takes them
        modes = tuple(mode for key, mode in _LEGACY_POOLING_KEYS if config.get(key))
    if not modes:
        msg = "the Pooling module's config enables no pooling mode"
        raise ValueError(msg)
    return modes


def _dense_width(configs: Mapping[str, Any]) -> int | None:
    """The last Dense module's output width: what the model's vectors end up as."""
    widths = [
        _positive(_module_config(configs, path).get("out_features"), 0)
        for kind, path in _modules(configs)
        if kind == "Dense"
    ]
    return (widths[-1] or None) if widths else None


def _max_tokens(family: Family, config: Mapping[str, Any], configs: Mapping[str, Any]) -> int:
    if family is Family.CLIP:
        text = _object(config.get("text_config"))
        return _positive(text.get("max_position_embeddings"), 77)
    # GPT-style configs (NomicBERT's published ones) call the limit n_positions
    positions = _positive(
        config.get("max_position_embeddings", config.get("n_positions")), _DEFAULT_POSITIONS
    )
    padded = config.get("model_type") in _POSITIONS_AFTER_PADDING
    roberta = {Family.ROBERTA, Family.XLM_ROBERTA, Family.XLM_ROBERTA_CROSS_ENCODER}
    if padded or family in roberta:
        pad = config.get("pad_token_id", _ROBERTA_PAD)
        positions -= (pad if isinstance(pad, int) and pad >= 0 else _ROBERTA_PAD) + 1
    configured = _positive(
        _object(configs.get("sentence_bert_config.json")).get("max_seq_length"), 0
    )
    if not configured:
        configured = _positive(
            _object(configs.get("tokenizer_config.json")).get("model_max_length"), 0
        )
    return min(configured, positions) if configured else max(positions, 1)


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _positive(value: Any, default: int) -> int:
    """A positive int from JSON, else `default` (a bool is no int here, nor 1e30 an int)."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return default
