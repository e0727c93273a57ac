"""The models this server knows by name, as data, and how a requested name resolves to one.

Pooling and max_tokens here describe the published models; at load time the model's own files
are authoritative (sentence-transformers' configs), and these values are what `/v1/models` and
`/api/show` report before a model is downloaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from domain.models import Family, ModelSpec, PoolingMode

__all__ = ["CATALOGUE", "Catalogue"]

_B, _R, _X = Family.BERT, Family.ROBERTA, Family.XLM_ROBERTA
_C, _W, _M, _S = Family.CLIP, Family.WORD2VEC, Family.MODEL2VEC, Family.STATIC
_MEAN, _EOS = PoolingMode.MEAN, PoolingMode.EOS

CATALOGUE: tuple[ModelSpec, ...] = (
    ModelSpec("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", _B, 384, 256, _MEAN),
    ModelSpec(
        "msmarco-bert-base-dot-v5",
        "sentence-transformers/msmarco-bert-base-dot-v5",
        _B,
        768,
        512,
        _MEAN,
    ),
    ModelSpec("gte-base", "thenlper/gte-base", _B, 768, 512, _MEAN),
    ModelSpec("bert-base-uncased", "google-bert/bert-base-uncased", _B, 768, 512, _MEAN),
    ModelSpec("roberta-base", "FacebookAI/roberta-base", _R, 768, 512, _MEAN),
    ModelSpec("xlm-roberta-base", "FacebookAI/xlm-roberta-base", _X, 768, 512, _MEAN),
    ModelSpec(
        "paraphrase-multilingual-mpnet-base-v2",
        "sentence-transformers/paraphrase-multilingual-mpnet-base-v2",
        _X,
        768,
        128,
        _MEAN,
    ),
    ModelSpec(
        "xlm-roberta-base-multilingual-en-ar-fr-de-es-tr-it",
        "tomaarsen/xlm-roberta-base-multilingual-en-ar-fr-de-es-tr-it",
        _X,
        768,
        512,
        _MEAN,
    ),
    ModelSpec("clip-vit-base-patch16", "jkrukowski/clip-vit-base-patch16", _C, 512, 77, _EOS),
    ModelSpec("clip-vit-base-patch32", "jkrukowski/clip-vit-base-patch32", _C, 512, 77, _EOS),
    ModelSpec("clip-vit-large-patch14", "jkrukowski/clip-vit-large-patch14", _C, 768, 77, _EOS),
    ModelSpec("glove-twitter-25", "jkrukowski/glove-twitter-25", _W, 25, None, _MEAN),
    ModelSpec("glove-twitter-50", "jkrukowski/glove-twitter-50", _W, 50, None, _MEAN),
    ModelSpec("glove-twitter-100", "jkrukowski/glove-twitter-100", _W, 100, None, _MEAN),
    ModelSpec("glove-twitter-200", "jkrukowski/glove-twitter-200", _W, 200, None, _MEAN),
    ModelSpec("potion-base-2M", "minishlab/potion-base-2M", _M, 64, 512, _MEAN),
    ModelSpec("potion-base-4M", "minishlab/potion-base-4M", _M, 128, 512, _MEAN),
    ModelSpec("potion-base-8M", "minishlab/potion-base-8M", _M, 256, 512, _MEAN),
    ModelSpec("potion-retrieval-32M", "minishlab/potion-retrieval-32M", _M, 512, 512, _MEAN),
    ModelSpec("potion-base-32M", "minishlab/potion-base-32M", _M, 512, 512, _MEAN),
    ModelSpec("M2V_base_output", "minishlab/M2V_base_output", _M, 256, 512, _MEAN),
    ModelSpec(
        "static-similarity-mrl-multilingual-v1",
        "sentence-transformers/static-similarity-mrl-multilingual-v1",
        _S,
        1024,
        None,
        _MEAN,
    ),
    # The server we model lists M2V_base_output under Static too: the same repo read as a
    # sentence-transformers StaticEmbedding. A tag tells the two readings apart.
    ModelSpec("M2V_base_output", "minishlab/M2V_base_output", _S, 256, None, _MEAN, tag="static"),
)

# Names Ollama's own library uses for the same weights.
_ALIASES: Mapping[str, str] = {"all-minilm": "all-MiniLM-L6-v2"}


def _split_tag(requested: str) -> tuple[str, str]:
    name, sep, tag = requested.rpartition(":")
    if not sep or "/" in tag or not name:
        return requested, "latest"
    return name, tag


class Catalogue:
    """Resolves catalogue names, Ollama-style `name:tag`, aliases and Hugging Face repo ids."""

    def __init__(self, specs: Iterable[ModelSpec], aliases: Mapping[str, str] = _ALIASES) -> None:
        self.specs = tuple(specs)
        self._aliases = dict(aliases)
        self._index: dict[tuple[str, str], ModelSpec] = {}
        for spec in self.specs:
            self._index.setdefault((spec.name.lower(), spec.tag), spec)
            self._index.setdefault((spec.repo_id.lower(), spec.tag), spec)
        for alias, target in aliases.items():
            for spec in self.specs:
                if spec.name == target:
                    self._index.setdefault((alias.lower(), spec.tag), spec)

    def aliases(self, spec: ModelSpec) -> tuple[str, ...]:
        """Other names of `spec` (Ollama's library names), to list beside its own."""
        return tuple(a for a, target in self._aliases.items() if target == spec.name)

    def resolve(self, requested: str) -> ModelSpec | None:
        name, tag = _split_tag(requested.strip())
        return self._index.get((name.lower(), tag.lower()))
