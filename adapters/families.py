"""Each family declared once for the adapters: how its folder is read, tokenized and run.

The adapters' half of a family's row; domain/families.py holds the other half (its forward
passes, files and input kinds). A row here names the family's weight reader (the folder as the
model its architecture's forward takes), its tokenizer loader and, for the families one ONNX
graph or Core ML program serves, the width of its vectors from the configs alone. The engines
and the tokenizer loader look a family up here; none of them names a family.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from adapters.tokenizers.hf_tokenizer import (
    load_model2vec_tokenizer,
    load_static_tokenizer,
    load_tokenizer,
)
from adapters.tokenizers.word_level import load_word_level_tokenizer
from adapters.weights.model_folder import (
    bert_width,
    clip_width,
    cross_encoder_width,
    distilbert_width,
    gemma3_width,
    modernbert_width,
    mpnet_width,
    nomic_bert_width,
    qwen3_width,
    read_bert,
    read_bert_cross_encoder,
    read_clip,
    read_distilbert,
    read_gemma3,
    read_model2vec,
    read_modernbert,
    read_modernbert_cross_encoder,
    read_mpnet,
    read_nomic_bert,
    read_qwen3,
    read_roberta,
    read_roberta_cross_encoder,
    read_static,
    roberta_width,
)
from adapters.weights.word_vectors import read_word2vec
from domain.models import Family, PoolingMode
from domain.ports import TokenizerLoader

__all__ = ["FAMILY_READERS", "GRAPH_FAMILIES", "FamilyReaders"]

M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class FamilyReaders:
    """How a family's folder is read, whichever engine runs it."""

    # the folder as the model the family's forward passes take (domain.families.FAMILIES);
    # PoolingMode: the catalogue's, for a folder whose files name none
    read: Callable[[Path, PoolingMode], Any]
    tokenizer: TokenizerLoader
    # The vectors' width from config.json and the head alone: what a cached Core ML program
    # answers with no weight read. Set for the families recorded as graphs (ONNX Runtime,
    # OpenVINO, Core ML); None: word vectors, which stay on numpy, where a gather and a mean
    # are as fast as they get.
    graph_width: Callable[[Path, PoolingMode], int] | None = None


def _fixed_pooling(read: Callable[[Path], M]) -> Callable[[Path, PoolingMode], M]:
    """The reader of a family whose architecture fixes its pooling (EOS token, token mean)."""
    return lambda folder, _pooling: read(folder)


FAMILY_READERS: Mapping[Family, FamilyReaders] = {
    Family.BERT: FamilyReaders(read_bert, load_tokenizer, bert_width),
    Family.ROBERTA: FamilyReaders(read_roberta, load_tokenizer, roberta_width),
    # RoBERTa or XLM-RoBERTa, as config.json says
    Family.XLM_ROBERTA: FamilyReaders(read_roberta, load_tokenizer, roberta_width),
    # BERT's WordPiece tokenizer.json
    Family.DISTILBERT: FamilyReaders(read_distilbert, load_tokenizer, distilbert_width),
    # a WordPiece tokenizer.json with RoBERTa's <s> … </s> around the text
    Family.MPNET: FamilyReaders(read_mpnet, load_tokenizer, mpnet_width),
    # Gemma's BPE with byte fallback, <bos> … <eos> around the text
    Family.GEMMA3: FamilyReaders(read_gemma3, load_tokenizer, gemma3_width),
    # byte-level BPE whose post-processor appends <|endoftext|>, the token pooled
    Family.QWEN3: FamilyReaders(read_qwen3, load_tokenizer, qwen3_width),
    # a byte-level BPE tokenizer.json with [CLS] … [SEP] around the text
    Family.MODERNBERT: FamilyReaders(read_modernbert, load_tokenizer, modernbert_width),
    # bert-base-uncased's WordPiece tokenizer.json (nomic-embed-text-v1.5, arctic-embed-m-long)
    Family.NOMIC_BERT: FamilyReaders(read_nomic_bert, load_tokenizer, nomic_bert_width),
    Family.CLIP: FamilyReaders(_fixed_pooling(read_clip), load_tokenizer, clip_width),
    Family.WORD2VEC: FamilyReaders(_fixed_pooling(read_word2vec), load_word_level_tokenizer),
    # no special tokens, [UNK] dropped
    Family.MODEL2VEC: FamilyReaders(_fixed_pooling(read_model2vec), load_model2vec_tokenizer),
    # 0_StaticEmbedding/tokenizer.json, no special tokens
    Family.STATIC: FamilyReaders(_fixed_pooling(read_static), load_static_tokenizer),
    # cross-encoders: the encoders' tokenizers, which also tokenize (query, document) pairs
    Family.BERT_CROSS_ENCODER: FamilyReaders(
        read_bert_cross_encoder, load_tokenizer, cross_encoder_width
    ),
    Family.XLM_ROBERTA_CROSS_ENCODER: FamilyReaders(
        read_roberta_cross_encoder, load_tokenizer, cross_encoder_width
    ),
    Family.MODERNBERT_CROSS_ENCODER: FamilyReaders(
        read_modernbert_cross_encoder, load_tokenizer, cross_encoder_width
    ),
}

GRAPH_FAMILIES = frozenset(f for f, row in FAMILY_READERS.items() if row.graph_width is not None)
