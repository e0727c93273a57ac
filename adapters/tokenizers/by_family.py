"""The one tokenizer loader the composition root passes on: each family's own, by table."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from adapters.tokenizers.hf_tokenizer import (
    load_model2vec_tokenizer,
    load_static_tokenizer,
)
from adapters.tokenizers.hf_tokenizer import load_tokenizer as load_hf_tokenizer
from adapters.tokenizers.word_level import load_word_level_tokenizer
from domain.errors import ModelUnavailable
from domain.models import Family, ModelSpec
from domain.ports import Tokenizer, TokenizerLoader

__all__ = ["load_tokenizer"]

# families whose tokenizer is not a Hugging Face tokenizer.json, or reads one its own way
_LOADERS: Mapping[Family, TokenizerLoader] = {
    Family.WORD2VEC: load_word_level_tokenizer,
    Family.MODEL2VEC: load_model2vec_tokenizer,  # no special tokens, [UNK] dropped
    Family.STATIC: load_static_tokenizer,  # 0_StaticEmbedding/tokenizer.json, no special tokens
}


def load_tokenizer(spec: ModelSpec, folder: Path) -> Tokenizer | ModelUnavailable:
    return _LOADERS.get(spec.family, load_hf_tokenizer)(spec, folder)
