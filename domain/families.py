"""Which of a repository's files each family reads: the hub store downloads only these.

Two tables. FILES_NEEDED holds fnmatch patterns (huggingface_hub's allow_patterns: `*` crosses
`/`) for the files a family reads whenever the repo has them. WEIGHTS lists, most preferred
first, the files a family can read its weights from: `files_to_fetch` takes the first one the
repo has and never a second, so a repo carrying both safetensors and a pickle-based
pytorch_model.bin costs one download, of the safetensors. pytorch_model.bin is read as data by an
allow-listed unpickler, never run (DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

from domain.models import Family

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["FILES_NEEDED", "WEIGHTS", "MissingWeights", "files_to_fetch"]

_SENTENCE_TRANSFORMERS = (
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "*_Pooling/config.json",
    "*_Dense/config.json",
    "*_Dense/model.safetensors",
)
_TRANSFORMER = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)
# safetensors is read straight into arrays; the pickle-based .bin only where a repo has nothing else
_TRANSFORMER_WEIGHTS = ("model.safetensors", "pytorch_model.bin")

# fnmatch patterns over repo paths, weights files aside (WEIGHTS)
FILES_NEEDED: dict[Family, tuple[str, ...]] = {
    Family.BERT: _TRANSFORMER + _SENTENCE_TRANSFORMERS,
    Family.ROBERTA: _TRANSFORMER + _SENTENCE_TRANSFORMERS,
    Family.XLM_ROBERTA: _TRANSFORMER + _SENTENCE_TRANSFORMERS,
    Family.CLIP: (*_TRANSFORMER, "preprocessor_config.json"),
    # the word2vec text file, or a gensim KeyedVectors pickle (`*.model`) and its table
    Family.WORD2VEC: ("*.txt", "*.model", "*.model.vectors.npy"),
    # A model2vec repo has two readings (the catalogue lists M2V_base_output under Model2Vec and
    # under Static) sharing one folder: whichever is fetched first brings the other's files too,
    # model2vec's config.json (normalize, max_length) and the modules.json that puts a Normalize
    # after the StaticEmbedding. `weights` and `mapping` live inside model.safetensors.
    Family.MODEL2VEC: ("config.json", "tokenizer.json", "modules.json"),
    # StaticEmbedding where modules.json puts it: 0_StaticEmbedding/ in sentence-transformers'
    # saves, the root in model2vec's (which also reads as one with no modules.json at all)
    Family.STATIC: (
        "modules.json",
        "0_StaticEmbedding/model.safetensors",
        "0_StaticEmbedding/tokenizer.json",
        "model.safetensors",
        "tokenizer.json",
        "config.json",  # the Model2Vec reading of the same repo
    ),
}

# exact repo paths, most preferred first; () where FILES_NEEDED already names the weights
WEIGHTS: dict[Family, tuple[str, ...]] = {
    Family.BERT: _TRANSFORMER_WEIGHTS,
    Family.ROBERTA: _TRANSFORMER_WEIGHTS,
    Family.XLM_ROBERTA: _TRANSFORMER_WEIGHTS,
    Family.CLIP: _TRANSFORMER_WEIGHTS,
    Family.WORD2VEC: (),
    Family.MODEL2VEC: ("model.safetensors",),  # model2vec writes nothing else
    Family.STATIC: (),
}


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
