"""Reading a model folder in Hugging Face / sentence-transformers layout into domain terms.

Shared by every engine and tokenizer: what a folder says about pooling, normalisation and
sequence length is the same whichever engine runs it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file

from adapters.weights.mapped_tensors import read_mapped
from adapters.weights.torch_checkpoint import read_torch_checkpoint
from domain.architectures.bert import BertConfig, BertModel, load_bert_weights
from domain.architectures.clip import ClipConfig, ClipModel, load_clip_weights
from domain.architectures.cross_encoder import (
    SCORE_COLUMNS,
    BertCrossEncoder,
    ModernBertCrossEncoder,
    RobertaCrossEncoder,
    ScoreActivation,
    label_count,
    load_bert_cross_encoder,
    load_modernbert_cross_encoder,
    load_roberta_cross_encoder,
    modernbert_classifier,
    score_activation,
)
from domain.architectures.distilbert import (
    DistilBertConfig,
    DistilBertModel,
    load_distilbert_weights,
)
from domain.architectures.gemma3 import Gemma3Config, Gemma3Model, load_gemma3_weights
from domain.architectures.modernbert import (
    ModernBertConfig,
    ModernBertModel,
    load_modernbert_weights,
)
from domain.architectures.mpnet import MPNetConfig, MPNetModel, load_mpnet_weights
from domain.architectures.nomic_bert import (
    NomicBertConfig,
    NomicBertModel,
    load_nomic_bert_weights,
)
from domain.architectures.qwen3 import Qwen3Config, Qwen3Model, load_qwen3_weights
from domain.architectures.roberta import (
    ROBERTA_MODEL_TYPES,
    RobertaConfig,
    RobertaModel,
    load_roberta_weights,
)
from domain.architectures.static_embedding import StaticEmbeddingModel, fold_token_weights
from domain.models import PoolingMode
from domain.ops import Linear
from domain.repo_configs import pooling_modes
from domain.sentence_head import NORMALIZE, Activation, Dense, HeadStep, Normalize, SentenceHead

__all__ = [
    "MODEL2VEC_DEFAULT_MAX_LENGTH",
    "bert_width",
    "clip_width",
    "cross_encoder_width",
    "distilbert_width",
    "gemma3_width",
    "max_seq_length",
    "model2vec_max_length",
    "modernbert_width",
    "mpnet_width",
    "nomic_bert_width",
    "pools_prompt",
    "qwen3_width",
    "read_bert",
    "read_bert_cross_encoder",
    "read_clip",
    "read_distilbert",
    "read_gemma3",
    "read_json",
    "read_model2vec",
    "read_modernbert",
    "read_modernbert_cross_encoder",
    "read_mpnet",
    "read_nomic_bert",
    "read_prompts",
    "read_qwen3",
    "read_roberta",
    "read_roberta_cross_encoder",
    "read_safetensors",
    "read_sentence_head",
    "read_static",
    "read_weights",
    "roberta_width",
    "static_embedding_module",
]

_TORCH_WEIGHTS = "pytorch_model.bin"

# modules.json names each module by its import path: "sentence_transformers.models.Pooling" in
# older saves, "sentence_transformers.sentence_transformer.modules.pooling.Pooling" and
# "sentence_transformers.base.modules.transformer.Transformer" in sentence-transformers 6 saves.
# The class name is what counts.
_MODULE = "sentence_transformers."


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from `path`; {} when the file is absent."""
    if not path.is_file():
        return {}
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        msg = f"{path.name} does not hold a JSON object"
        raise ValueError(msg)  # noqa: TRY004 - a malformed file, reported as a load failure
    return value


def read_safetensors(folder: Path) -> dict[str, np.ndarray[Any, Any]]:
    path = folder / "model.safetensors"
    if not path.is_file():
        msg = "the model folder has no model.safetensors"
        raise ValueError(msg)
    return load_file(path)


def read_weights(folder: Path) -> dict[str, np.ndarray[Any, Any]]:
    """model.safetensors, else a torch pytorch_model.bin read as data (never unpickled)."""
    if (folder / "model.safetensors").is_file() or not (folder / _TORCH_WEIGHTS).is_file():
        return read_safetensors(folder)
    return read_torch_checkpoint(folder / _TORCH_WEIGHTS)


def _modules(folder: Path) -> list[dict[str, Any]]:
    path = folder / "modules.json"
    if not path.is_file():
        return []
    modules = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(modules, list):
        msg = "modules.json does not hold a list"
        raise ValueError(msg)  # noqa: TRY004 - a malformed file, reported as a load failure
    return modules


@dataclass(frozen=True, slots=True)
class _DenseLayout:
    """A Dense module's config.json: what the head's width needs, no weight read."""

    folder: Path
    in_features: int
    out_features: int
    bias: bool
    activation: Activation


@dataclass(frozen=True, slots=True)
class _HeadLayout:
    pooling: tuple[PoolingMode, ...]
    include_prompt: bool
    after: tuple[_DenseLayout | Normalize, ...]

    def width(self, hidden: int) -> int:
        dense = [step for step in self.after if isinstance(step, _DenseLayout)]
        return dense[-1].out_features if dense else hidden * len(self.pooling)


def _activation(name: object) -> Activation:
    """sentence-transformers imports any `torch.` class named here; we run the ones we wrote."""
    if name is None:
        return Activation.TANH  # Dense's default, which a config without the key gets
    text = str(name)
    kind = text.rsplit(".", 1)[-1]
    if text.startswith("torch.") and kind in set(Activation):
        return Activation(kind)
    msg = (
        f"the Dense module's activation_function {text!r} is not supported "
        f"(only torch's {', '.join(Activation)})"
    )
    raise ValueError(msg)


def _dense_layout(folder: Path) -> _DenseLayout:
    config = read_json(folder / "config.json")
    if config.get("use_residual"):
        msg = "a Dense module with use_residual is not supported"
        raise ValueError(msg)
    if config.get("module_input_name", "sentence_embedding") != "sentence_embedding":
        msg = "a Dense module that reads other than the sentence embedding is not supported"
        raise ValueError(msg)
    return _DenseLayout(
        folder=folder,
        in_features=int(config["in_features"]),
        out_features=int(config["out_features"]),
        bias=bool(config.get("bias", True)),
        activation=_activation(config.get("activation_function")),
    )


def _module_folder(folder: Path, module: dict[str, Any]) -> Path:
    path = (folder / str(module.get("path", ""))).resolve()
    if not path.is_relative_to(folder.resolve()):
        msg = "modules.json points a module outside the model"
        raise ValueError(msg)
    return path


def _head_layout(folder: Path, default: PoolingMode) -> _HeadLayout:
    """Pooling, Dense and Normalize as modules.json lists them, from the configs alone.

    A repo without sentence-transformers files gets what sentence-transformers itself gives
    such a repo: `default` pooling (mean, unless the catalogue says), no Dense, no Normalize.
    """
    pooling: tuple[PoolingMode, ...] = (default,)
    include_prompt = True
    after: list[_DenseLayout | Normalize] = []
    for module in _modules(folder):
        kind = str(module.get("type", ""))
        if kind.startswith(_MODULE):
            kind = kind.rsplit(".", 1)[-1]
        match kind:
            case "Transformer":
                pass
            case "Pooling":
                config = read_json(_module_folder(folder, module) / "config.json")
                pooling = pooling_modes(config)
                include_prompt = bool(config.get("include_prompt", True))
            case "Dense":
                after.append(_dense_layout(_module_folder(folder, module)))
            case "Normalize":
                after.append(NORMALIZE)
            case _:
                msg = f"modules.json lists a {kind!r} module, which is not supported"
                raise ValueError(msg)
    return _HeadLayout(pooling, include_prompt, tuple(after))


def _dense(layout: _DenseLayout, width: int) -> Dense:
    """A Dense module's weights (`linear.weight`, `linear.bias`), checked against its config
    and against the width of what it reads."""
    if layout.in_features != width:
        msg = f"a Dense module reads {layout.in_features} values, but is given {width}"
        raise ValueError(msg)
    tensors = read_weights(layout.folder)
    shape = (layout.out_features, layout.in_features)
    weight = np.asarray(tensors.get("linear.weight"), dtype=np.float32)
    if weight.shape != shape:
        msg = f"the Dense module's linear.weight has shape {weight.shape}, not {shape}"
        raise ValueError(msg)
    bias = np.zeros(layout.out_features, dtype=np.float32)
    if layout.bias:
        bias = np.asarray(tensors.get("linear.bias"), dtype=np.float32)
        if bias.shape != (layout.out_features,):
            msg = f"the Dense module's linear.bias has shape {bias.shape}"
            raise ValueError(msg)
    return Dense(Linear(np.ascontiguousarray(weight), bias), layout.activation)


def pools_prompt(folder: Path) -> bool:
    """The Pooling module's include_prompt: whether a prompt's tokens are pooled (default).

    Read for the tokenizer of any family, so other modules are not judged here (the family's
    own reader does that)."""
    for module in _modules(folder):
        if str(module.get("type", "")).rsplit(".", 1)[-1] == "Pooling":
            config = read_json(_module_folder(folder, module) / "config.json")
            return bool(config.get("include_prompt", True))
    return True


def read_prompts(folder: Path) -> dict[str, str]:
    """config_sentence_transformers.json's named prompts; {} where it names none."""
    raw = read_json(folder / "config_sentence_transformers.json").get("prompts") or {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        msg = "config_sentence_transformers.json's prompts is not an object of strings"
        raise ValueError(msg)
    return {str(name): text for name, text in raw.items()}


def read_sentence_head(folder: Path, default: PoolingMode, hidden: int) -> SentenceHead:
    """The head over token states `hidden` wide, Dense weights read (see _head_layout)."""
    layout = _head_layout(folder, default)
    width = hidden * len(layout.pooling)
    after: list[HeadStep] = []
    for step in layout.after:
        if isinstance(step, _DenseLayout):
            after.append(_dense(step, width))
            width = step.out_features
        else:
            after.append(step)
    return SentenceHead(layout.pooling, tuple(after), include_prompt=layout.include_prompt)


def _positions(config: dict[str, Any]) -> int:
    """How many tokens the model's position table holds."""
    if config.get("model_type") == "clip":
        return ClipConfig.from_json(config).max_tokens
    if config.get("model_type") in ROBERTA_MODEL_TYPES:
        # positions start at padding_idx + 1: a 514-row table holds 512 tokens
        return RobertaConfig.from_json(config).max_tokens
    if config.get("model_type") == "mpnet":  # numbered as RoBERTa numbers them
        return MPNetConfig.from_json(config).max_tokens
    if config.get("model_type") == "nomic_bert":  # rotary: no table, n_positions is the limit
        return NomicBertConfig.from_json(config).max_position_embeddings
    return int(config.get("max_position_embeddings", 512))


def max_seq_length(folder: Path) -> int:
    """The token limit sentence-transformers applies, special tokens included.

    sentence-transformers takes sentence_bert_config.json's max_seq_length, else the tokenizer's
    model_max_length capped at max_position_embeddings. For RoBERTa that cap is 514, two past the
    last position a token can have, and its model fails on longer inputs; we cap at what the
    position table holds, which changes nothing for any input sentence-transformers can embed.
    """
    positions = _positions(read_json(folder / "config.json"))
    configured = read_json(folder / "sentence_bert_config.json").get("max_seq_length")
    if configured is None:
        configured = read_json(folder / "tokenizer_config.json").get("model_max_length", positions)
    return min(int(configured), positions)


def read_bert(folder: Path, default_pooling: PoolingMode) -> BertModel:
    config = BertConfig.from_json(read_json(folder / "config.json"))
    weights = load_bert_weights(read_weights(folder), config)
    head = read_sentence_head(folder, default_pooling, config.hidden_size)
    return BertModel(config, weights, head)


def read_roberta(folder: Path, default_pooling: PoolingMode) -> RobertaModel:
    """RoBERTa or XLM-RoBERTa, as config.json's model_type says."""
    config = RobertaConfig.from_json(read_json(folder / "config.json"))
    weights = load_roberta_weights(read_weights(folder), config)
    head = read_sentence_head(folder, default_pooling, config.encoder.hidden_size)
    return RobertaModel(config, weights, head)


def _cross_encoder_activation(folder: Path) -> tuple[dict[str, Any], ScoreActivation]:
    """config.json, and the activation CrossEncoder.predict applies; one label or refused."""
    config = read_json(folder / "config.json")
    labels = label_count(config)
    if labels != 1:
        msg = f"a cross-encoder with {labels} labels gives no single score to rank by"
        raise ValueError(msg)
    # CrossEncoder reads config_sentence_transformers.json only for a repo saved with modules.json
    saved = (folder / "modules.json").is_file()
    own = read_json(folder / "config_sentence_transformers.json") if saved else {}
    return config, score_activation(config, own)


def read_bert_cross_encoder(folder: Path, _default_pooling: PoolingMode) -> BertCrossEncoder:
    """BertForSequenceClassification with one label (cross-encoder/ms-marco-MiniLM-L6-v2)."""
    raw, activation = _cross_encoder_activation(folder)
    config = BertConfig.from_json(raw)
    return load_bert_cross_encoder(read_weights(folder), config, activation)


def read_roberta_cross_encoder(folder: Path, _default_pooling: PoolingMode) -> RobertaCrossEncoder:
    """XLMRobertaForSequenceClassification with one label (BAAI/bge-reranker-v2-m3)."""
    raw, activation = _cross_encoder_activation(folder)
    config = RobertaConfig.from_json(raw)
    return load_roberta_cross_encoder(read_weights(folder), config, activation)


def read_modernbert_cross_encoder(
    folder: Path, _default_pooling: PoolingMode
) -> ModernBertCrossEncoder:
    """ModernBertForSequenceClassification with one label
    (Alibaba-NLP/gte-reranker-modernbert-base)."""
    raw, activation = _cross_encoder_activation(folder)
    config = ModernBertConfig.from_json(raw)
    kind = modernbert_classifier(raw)
    return load_modernbert_cross_encoder(read_weights(folder), config, kind, activation)


def read_distilbert(folder: Path, default_pooling: PoolingMode) -> DistilBertModel:
    config = DistilBertConfig.from_json(read_json(folder / "config.json"))
    weights = load_distilbert_weights(read_weights(folder), config)
    head = read_sentence_head(folder, default_pooling, config.encoder.hidden_size)
    return DistilBertModel(config, weights, head)


def read_mpnet(folder: Path, default_pooling: PoolingMode) -> MPNetModel:
    config = MPNetConfig.from_json(read_json(folder / "config.json"))
    weights = load_mpnet_weights(read_weights(folder), config)
    head = read_sentence_head(folder, default_pooling, config.encoder.hidden_size)
    return MPNetModel(config, weights, head)


def read_gemma3(folder: Path, default_pooling: PoolingMode) -> Gemma3Model:
    config = Gemma3Config.from_json(read_json(folder / "config.json"))
    weights = load_gemma3_weights(read_weights(folder), config)
    head = read_sentence_head(folder, default_pooling, config.hidden_size)
    return Gemma3Model(config, weights, head)


def read_qwen3(folder: Path, default_pooling: PoolingMode) -> Qwen3Model:
    """Memory-mapped (adapters/weights/mapped_tensors.py): a decoder's weights run to GBs, and
    its checkpoints are bfloat16, widened to float32 as they are read."""
    config = Qwen3Config.from_json(read_json(folder / "config.json"))
    weights = load_qwen3_weights(read_mapped(folder), config)
    head = read_sentence_head(folder, default_pooling, config.hidden_size)
    return Qwen3Model(config, weights, head)


def read_modernbert(folder: Path, default_pooling: PoolingMode) -> ModernBertModel:
    config = ModernBertConfig.from_json(read_json(folder / "config.json"))
    weights = load_modernbert_weights(read_weights(folder), config)
    head = read_sentence_head(folder, default_pooling, config.hidden_size)
    return ModernBertModel(config, weights, head)


def read_nomic_bert(folder: Path, default_pooling: PoolingMode) -> NomicBertModel:
    config = NomicBertConfig.from_json(read_json(folder / "config.json"))
    weights = load_nomic_bert_weights(read_weights(folder), config)
    head = read_sentence_head(folder, default_pooling, config.hidden_size)
    return NomicBertModel(config, weights, head)


def read_clip(folder: Path) -> ClipModel:
    config = ClipConfig.from_json(read_json(folder / "config.json"))
    return load_clip_weights(read_weights(folder), config)


# --- the vectors' width from the configs alone: a cached graph's, with no weight read ----------


def bert_width(folder: Path, default_pooling: PoolingMode) -> int:
    hidden = BertConfig.from_json(read_json(folder / "config.json")).hidden_size
    return _head_layout(folder, default_pooling).width(hidden)


def roberta_width(folder: Path, default_pooling: PoolingMode) -> int:
    hidden = RobertaConfig.from_json(read_json(folder / "config.json")).encoder.hidden_size
    return _head_layout(folder, default_pooling).width(hidden)


def distilbert_width(folder: Path, default_pooling: PoolingMode) -> int:
    hidden = DistilBertConfig.from_json(read_json(folder / "config.json")).encoder.hidden_size
    return _head_layout(folder, default_pooling).width(hidden)


def mpnet_width(folder: Path, default_pooling: PoolingMode) -> int:
    hidden = MPNetConfig.from_json(read_json(folder / "config.json")).encoder.hidden_size
    return _head_layout(folder, default_pooling).width(hidden)


def gemma3_width(folder: Path, default_pooling: PoolingMode) -> int:
    hidden = Gemma3Config.from_json(read_json(folder / "config.json")).hidden_size
    return _head_layout(folder, default_pooling).width(hidden)


def qwen3_width(folder: Path, default_pooling: PoolingMode) -> int:
    hidden = Qwen3Config.from_json(read_json(folder / "config.json")).hidden_size
    return _head_layout(folder, default_pooling).width(hidden)


def modernbert_width(folder: Path, default_pooling: PoolingMode) -> int:
    hidden = ModernBertConfig.from_json(read_json(folder / "config.json")).hidden_size
    return _head_layout(folder, default_pooling).width(hidden)


def nomic_bert_width(folder: Path, default_pooling: PoolingMode) -> int:
    hidden = NomicBertConfig.from_json(read_json(folder / "config.json")).hidden_size
    return _head_layout(folder, default_pooling).width(hidden)


def cross_encoder_width(folder: Path, _default_pooling: PoolingMode) -> int:
    """The logit and the score (domain/architectures/cross_encoder.py), whatever the model."""
    _cross_encoder_activation(folder)
    return SCORE_COLUMNS


def clip_width(folder: Path, _default_pooling: PoolingMode) -> int:
    return ClipConfig.from_json(read_json(folder / "config.json")).projection_dim


# --- static token embeddings: Model2Vec and sentence-transformers StaticEmbedding ---------------

# model2vec's StaticModel truncates at this many tokens when config.json names no max_length
MODEL2VEC_DEFAULT_MAX_LENGTH = 512


def model2vec_max_length(folder: Path) -> int | None:
    """config.json's max_length as model2vec reads it: absent is 512, null is no limit."""
    value = read_json(folder / "config.json").get("max_length", MODEL2VEC_DEFAULT_MAX_LENGTH)
    return None if value is None else int(value)


def _folded_table(tensors: dict[str, np.ndarray[Any, Any]], key: str) -> np.ndarray[Any, Any]:
    if key not in tensors:
        msg = f"model.safetensors has no {key!r} tensor"
        raise ValueError(msg)
    return fold_token_weights(tensors[key], tensors.get("weights"), tensors.get("mapping"))


def read_model2vec(folder: Path) -> StaticEmbeddingModel:
    """A model2vec folder: `embeddings` (optional `weights`, `mapping`), normalize from config."""
    table = _folded_table(read_safetensors(folder), "embeddings")
    normalize = bool(read_json(folder / "config.json").get("normalize", False))
    return StaticEmbeddingModel(table, normalize=normalize)


def static_embedding_module(folder: Path) -> tuple[Path, bool]:
    """The folder holding the StaticEmbedding module's files, and whether a Normalize follows.

    sentence-transformers' own saves put it under 0_StaticEmbedding/; model2vec's saves list it
    at ".". A folder without modules.json (a model2vec repo from before model2vec wrote one) is
    read as one StaticEmbedding at its root, with no Normalize.
    """
    modules = _modules(folder)
    if not modules:
        return folder, False
    found: Path | None = None
    normalize = False
    for module in modules:
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        match kind:
            case "StaticEmbedding":
                found = (folder / str(module.get("path", ""))).resolve()
                if not found.is_relative_to(folder.resolve()):
                    msg = "modules.json points the StaticEmbedding module outside the model"
                    raise ValueError(msg)
            case "Normalize":
                normalize = True
            case _:
                msg = f"modules.json lists a {kind!r} module, which is not supported"
                raise ValueError(msg)
    if found is None:
        msg = "modules.json lists no StaticEmbedding module"
        raise ValueError(msg)
    return found, normalize


def read_static(folder: Path) -> StaticEmbeddingModel:
    """sentence-transformers' StaticEmbedding: `embedding.weight`, or a model2vec table folded as
    StaticEmbedding.load folds it; Normalize as modules.json lists it."""
    module, normalize = static_embedding_module(folder)
    tensors = read_safetensors(module)
    if "embedding.weight" in tensors:
        return StaticEmbeddingModel(
            fold_token_weights(tensors["embedding.weight"], None, None), normalize=normalize
        )
    return StaticEmbeddingModel(_folded_table(tensors, "embeddings"), normalize=normalize)
