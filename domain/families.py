"""Each family declared once, engines aside: its forward passes, its files, what it embeds.

FAMILIES holds a row per family. Adding a family is one architecture module in
domain/architectures, one row here, its weight reader and its row in adapters/families.py, and
its parity test.

Which of a repository's files a family reads (the hub store downloads only these) takes two
fields. `files` holds fnmatch patterns (huggingface_hub's allow_patterns: `*` crosses
`/`) for the files a family reads whenever the repo has them. `weights` lists, most preferred
first, the files a family can read its weights from: `files_to_fetch` takes the first one the
repo has and never a second, so a repo carrying both safetensors and a pickle-based
pytorch_model.bin costs one download, of the safetensors. pytorch_model.bin is read as data by an
allow-listed unpickler, never run (DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from domain.architectures.bert import bert_sentence_embedding
from domain.architectures.clip import clip_image_embedding, clip_text_embedding
from domain.architectures.cross_encoder import (
    bert_pair_scores,
    modernbert_pair_scores,
    roberta_pair_scores,
)
from domain.architectures.distilbert import distilbert_sentence_embedding
from domain.architectures.gemma3 import gemma3_sentence_embedding
from domain.architectures.modernbert import modernbert_sentence_embedding
from domain.architectures.mpnet import mpnet_sentence_embedding
from domain.architectures.nomic_bert import nomic_bert_sentence_embedding
from domain.architectures.qwen3 import qwen3_sentence_embedding
from domain.architectures.roberta import roberta_sentence_embedding
from domain.architectures.static_embedding import static_sentence_embedding
from domain.architectures.word2vec import word2vec_sentence_embedding
from domain.models import Family, Task
from domain.ops import Ops

__all__ = [
    "ARCHITECTURES",
    "FAMILIES",
    "FILES_NEEDED",
    "MODEL_TYPES",
    "WEIGHTS",
    "FamilyTraits",
    "ImageForward",
    "MissingWeights",
    "TextForward",
    "files_to_fetch",
]

# (ops, ids [B,T], mask [B,T], model) -> [B,D]; the model is what the family's reader returns
TextForward = Callable[[Ops[Any], Any, Any, Any], Any]
# (ops, pixels [B,C,S,S], model) -> [B,D], in the text tower's space
ImageForward = Callable[[Ops[Any], Any, Any], Any]

_SENTENCE_TRANSFORMERS = (
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "*_Pooling/config.json",
    "*_Dense/config.json",
    # a Dense module's weights, small (out x in floats): both are fetched where a repo has both
    "*_Dense/model.safetensors",
    "*_Dense/pytorch_model.bin",
)
_TRANSFORMER = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)
# safetensors is read straight into arrays; the pickle-based .bin only where a repo has nothing else
_TRANSFORMER_WEIGHTS = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True, slots=True)
class FamilyTraits:
    """What a family is, whichever engine runs it."""

    text_forward: TextForward
    files: tuple[str, ...]  # fnmatch patterns over repo paths, weights files aside
    weights: tuple[str, ...]  # exact repo paths, most preferred first; () where `files` has them
    image_forward: ImageForward | None = None  # None: the family embeds text alone
    # a mean of token vectors with no positions: nothing to overflow, so nothing to window
    windowless: bool = False
    task: Task = Task.EMBEDDING  # RERANK: `text_forward` scores pairs, [B,2] (cross_encoder.py)

    @property
    def input_kinds(self) -> tuple[str, ...]:
        """What an input item may be: text, and images (as data URLs) where a tower reads them."""
        return ("text",) if self.image_forward is None else ("text", "image")


_TRANSFORMER_FAMILY = _TRANSFORMER + _SENTENCE_TRANSFORMERS

FAMILIES: Mapping[Family, FamilyTraits] = {
    Family.BERT: FamilyTraits(bert_sentence_embedding, _TRANSFORMER_FAMILY, _TRANSFORMER_WEIGHTS),
    Family.ROBERTA: FamilyTraits(
        roberta_sentence_embedding, _TRANSFORMER_FAMILY, _TRANSFORMER_WEIGHTS
    ),
    # RoBERTa's architecture with another vocabulary
    Family.XLM_ROBERTA: FamilyTraits(
        roberta_sentence_embedding, _TRANSFORMER_FAMILY, _TRANSFORMER_WEIGHTS
    ),
    # BERT's layers under other names, without token types
    Family.DISTILBERT: FamilyTraits(
        distilbert_sentence_embedding, _TRANSFORMER_FAMILY, _TRANSFORMER_WEIGHTS
    ),
    # BERT's layers with a relative position bias, RoBERTa's position numbering
    Family.MPNET: FamilyTraits(mpnet_sentence_embedding, _TRANSFORMER_FAMILY, _TRANSFORMER_WEIGHTS),
    # a decoder's layers read bidirectionally (EmbeddingGemma)
    Family.GEMMA3: FamilyTraits(
        gemma3_sentence_embedding, _TRANSFORMER_FAMILY, _TRANSFORMER_WEIGHTS
    ),
    # a causal decoder read at its last token; the larger repos split their weights in shards,
    # which the index names (model.safetensors.index.json, fetched with every shard)
    Family.QWEN3: FamilyTraits(
        qwen3_sentence_embedding,
        (*_TRANSFORMER_FAMILY, "model-*-of-*.safetensors"),
        ("model.safetensors", "model.safetensors.index.json"),
    ),
    # pre-norm, rotary, GeGLU, global and sliding-window layers in turn
    Family.MODERNBERT: FamilyTraits(
        modernbert_sentence_embedding, _TRANSFORMER_FAMILY, _TRANSFORMER_WEIGHTS
    ),
    # post-LN layers with rotary positions and SwiGLU; the repos' custom code is never run
    Family.NOMIC_BERT: FamilyTraits(
        nomic_bert_sentence_embedding, _TRANSFORMER_FAMILY, _TRANSFORMER_WEIGHTS
    ),
    Family.CLIP: FamilyTraits(
        clip_text_embedding,
        (*_TRANSFORMER, "preprocessor_config.json"),
        _TRANSFORMER_WEIGHTS,
        image_forward=clip_image_embedding,
    ),
    # the word2vec text file, or a gensim KeyedVectors pickle (`*.model`) and its table
    Family.WORD2VEC: FamilyTraits(
        word2vec_sentence_embedding,
        ("*.txt", "*.model", "*.model.vectors.npy"),
        (),
        windowless=True,
    ),
    # A model2vec repo has two readings (the catalogue lists M2V_base_output under Model2Vec and
    # under Static) sharing one folder: whichever is fetched first brings the other's files too,
    # model2vec's config.json (normalize, max_length) and the modules.json that puts a Normalize
    # after the StaticEmbedding. `weights` and `mapping` live inside model.safetensors.
    Family.MODEL2VEC: FamilyTraits(
        static_sentence_embedding,
        ("config.json", "tokenizer.json", "modules.json"),
        ("model.safetensors",),  # model2vec writes nothing else
        windowless=True,
    ),
    # StaticEmbedding where modules.json puts it: 0_StaticEmbedding/ in sentence-transformers'
    # saves, the root in model2vec's (which also reads as one with no modules.json at all)
    Family.STATIC: FamilyTraits(
        static_sentence_embedding,
        (
            "modules.json",
            "0_StaticEmbedding/model.safetensors",
            "0_StaticEmbedding/tokenizer.json",
            "model.safetensors",
            "tokenizer.json",
            "config.json",  # the Model2Vec reading of the same repo
        ),
        (),
        windowless=True,
    ),
    # one-label *ForSequenceClassification: the encoders above with their classifier heads
    Family.BERT_CROSS_ENCODER: FamilyTraits(
        bert_pair_scores, _TRANSFORMER_FAMILY, _TRANSFORMER_WEIGHTS, task=Task.RERANK
    ),
    Family.XLM_ROBERTA_CROSS_ENCODER: FamilyTraits(
        roberta_pair_scores, _TRANSFORMER_FAMILY, _TRANSFORMER_WEIGHTS, task=Task.RERANK
    ),
    Family.MODERNBERT_CROSS_ENCODER: FamilyTraits(
        modernbert_pair_scores, _TRANSFORMER_FAMILY, _TRANSFORMER_WEIGHTS, task=Task.RERANK
    ),
}

# config.json's `architectures` -> the family that runs it: the one table that decides what a
# Hugging Face repo id may be (domain/repo_configs.py). Each name is a class whose checkpoint our
# own reader loads: the bare encoder, or the encoder under its `bert.` / `roberta.` prefix beside
# a masked-LM head that is not read. A repo whose config.json carries `auto_map` (custom code)
# runs only when its `architectures` is a name here: we run our implementation of that
# architecture on its weights, never the repo's code. Adding an architecture is a row here (and
# its family's rows, if it is a new family).
ARCHITECTURES: Mapping[str, Family] = {
    "BertModel": Family.BERT,
    "BertForMaskedLM": Family.BERT,
    "RobertaModel": Family.ROBERTA,
    "RobertaForMaskedLM": Family.ROBERTA,
    "XLMRobertaModel": Family.XLM_ROBERTA,
    "XLMRobertaForMaskedLM": Family.XLM_ROBERTA,
    "CLIPModel": Family.CLIP,
    "DistilBertModel": Family.DISTILBERT,
    "DistilBertForMaskedLM": Family.DISTILBERT,
    "MPNetModel": Family.MPNET,
    "MPNetForMaskedLM": Family.MPNET,
    # bidirectional ones only (use_bidirectional_attention): the config is refused otherwise
    "Gemma3TextModel": Family.GEMMA3,
    # Qwen3-Embedding's config.json names the causal LM; its weights are Qwen3Model's
    "Qwen3Model": Family.QWEN3,
    "Qwen3ForCausalLM": Family.QWEN3,
    "ModernBertModel": Family.MODERNBERT,
    "ModernBertForMaskedLM": Family.MODERNBERT,  # its encoder under `model.`
    # nomic-embed-text-v1.5 and snowflake-arctic-embed-m-long (auto_map to Nomic's code)
    "NomicBertModel": Family.NOMIC_BERT,
    # what model2vec's distill() writes into config.json (model2vec/distill/distillation.py),
    # with model_type "model2vec" and the width as hidden_dim
    "StaticModel": Family.MODEL2VEC,
    # cross-encoders (rerank), with one label (domain/repo_configs.py refuses more)
    "BertForSequenceClassification": Family.BERT_CROSS_ENCODER,
    "XLMRobertaForSequenceClassification": Family.XLM_ROBERTA_CROSS_ENCODER,
    "ModernBertForSequenceClassification": Family.MODERNBERT_CROSS_ENCODER,
}
# config.json's `model_type`, for a config without `architectures` (and without `auto_map`)
MODEL_TYPES: Mapping[str, Family] = {
    "bert": Family.BERT,
    "roberta": Family.ROBERTA,
    "xlm-roberta": Family.XLM_ROBERTA,
    "clip": Family.CLIP,
    "distilbert": Family.DISTILBERT,
    "mpnet": Family.MPNET,
    "gemma3_text": Family.GEMMA3,
    "qwen3": Family.QWEN3,
    "modernbert": Family.MODERNBERT,
    "nomic_bert": Family.NOMIC_BERT,
    "model2vec": Family.MODEL2VEC,
}

# the two file lists by family, as the hub store reads them
FILES_NEEDED: Mapping[Family, tuple[str, ...]] = {f: t.files for f, t in FAMILIES.items()}
WEIGHTS: Mapping[Family, tuple[str, ...]] = {f: t.weights for f, t in FAMILIES.items()}


@dataclass(frozen=True, slots=True)
class MissingWeights:
    """The repo has none of the weights files the family reads (`candidates`)."""

    candidates: tuple[str, ...]


def files_to_fetch(family: Family, repo_files: Iterable[str]) -> frozenset[str] | MissingWeights:
    """The repo files a `family` model needs: every FILES_NEEDED match, plus the first WEIGHTS
    candidate the repo has. Empty when the repo has none of the family's files."""
    names = frozenset(repo_files)
    patterns = FILES_NEEDED[family]
    matched = frozenset(n for n in names if any(fnmatchcase(n, p) for p in patterns))
    candidates = WEIGHTS[family]
    if not candidates:
        return matched
    weights = next((name for name in candidates if name in names), None)
    if weights is None:
        return MissingWeights(candidates) if matched else matched
    return matched | {weights}
