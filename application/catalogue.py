"""The models this server knows by name, as data, and how a requested name resolves to one.

Pooling and max_tokens here describe the published models; at load time the model's own files
are authoritative (sentence-transformers' configs), and these values are what `/v1/models` and
`/api/show` report before a model is downloaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from application.ollama_library import LIBRARY_NAMES, LIBRARY_SPECS, LibraryName
from domain.models import Family, ModelSpec, PoolingMode

__all__ = ["CATALOGUE", "DEFAULT_MODEL", "Alias", "AliasRefused", "Catalogue"]

_B, _R, _X = Family.BERT, Family.ROBERTA, Family.XLM_ROBERTA
_D, _P, _MB = Family.DISTILBERT, Family.MPNET, Family.MODERNBERT
_C, _W, _M, _S = Family.CLIP, Family.WORD2VEC, Family.MODEL2VEC, Family.STATIC
_MEAN, _CLS, _EOS = PoolingMode.MEAN, PoolingMode.CLS, PoolingMode.EOS
_BCE, _XCE = Family.BERT_CROSS_ENCODER, Family.XLM_ROBERTA_CROSS_ENCODER  # rerank
_MBCE = Family.MODERNBERT_CROSS_ENCODER

# what the server embeds with out of the box (an installed package carries it), and what /ready
# waits for when nothing is preloaded
DEFAULT_MODEL = "all-MiniLM-L6-v2"

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
    # DistilBertModel (6 layers, dim 768), bert-base-uncased's WordPiece, saved by
    # sentence-transformers 2.x: max_seq_length 512, mean pooling; multi-qa-distilbert-cos-v1
    # adds a Normalize module (tests/model_factory_distilbert.py builds both layouts)
    ModelSpec(
        "msmarco-distilbert-base-v4",
        "sentence-transformers/msmarco-distilbert-base-v4",
        _D,
        768,
        512,
        _MEAN,
    ),
    ModelSpec(
        "multi-qa-distilbert-cos-v1",
        "sentence-transformers/multi-qa-distilbert-cos-v1",
        _D,
        768,
        512,
        _MEAN,
    ),
    # MPNetModel (12 layers, hidden 768, 514 position rows, 32 relative-position buckets),
    # MPNetTokenizer, max_seq_length 384, mean pooling, Normalize (tests/model_factory_mpnet.py)
    ModelSpec("all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2", _P, 768, 384, _MEAN),
    # ModernBertModel (22 layers, hidden 768, rotary, a 128-token window on 2 layers in 3), a
    # byte-level BPE with [CLS] … [SEP], max_seq_length 8192, Normalize; gte-modernbert-base
    # pools CLS, modernbert-embed-base the mean and names the prompts query ("search_query: ")
    # and document ("search_document: ") (tests/model_factory_modernbert.py)
    ModelSpec("gte-modernbert-base", "Alibaba-NLP/gte-modernbert-base", _MB, 768, 8192, _CLS),
    ModelSpec("modernbert-embed-base", "nomic-ai/modernbert-embed-base", _MB, 768, 8192, _MEAN),
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
    # cross-encoders (rerank): one score per (query, document) pair, so dimensions 1; the limits
    # are their tokenizers' model_max_length (bge-reranker-v2-m3: 8,192 of 8,194 positions)
    ModelSpec("ms-marco-MiniLM-L6-v2", "cross-encoder/ms-marco-MiniLM-L6-v2", _BCE, 1, 512, _CLS),
    ModelSpec("ms-marco-MiniLM-L12-v2", "cross-encoder/ms-marco-MiniLM-L12-v2", _BCE, 1, 512, _CLS),
    ModelSpec("bge-reranker-base", "BAAI/bge-reranker-base", _XCE, 1, 512, _CLS),
    ModelSpec("bge-reranker-large", "BAAI/bge-reranker-large", _XCE, 1, 512, _CLS),
    ModelSpec("bge-reranker-v2-m3", "BAAI/bge-reranker-v2-m3", _XCE, 1, 8192, _CLS),
    # ModernBertForSequenceClassification: the ModernBERT encoder, its head pooling as
    # config.json's classifier_pooling says
    ModelSpec(
        "gte-reranker-modernbert-base",
        "Alibaba-NLP/gte-reranker-modernbert-base",
        _MBCE,
        1,
        8192,
        _CLS,
    ),
    # the repos Ollama's library names stand for (application/ollama_library.py)
    *LIBRARY_SPECS,
)
# What a configured alias may be spelled with: OpenAI's and Ollama's model names fit. No ':',
# since the tag is the server's (an alias answers to `name` and `name:latest`), and no ',' or
# '=', which separate aliases in EMBEDSERVE_ALIASES.
_ALIAS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]*")


@dataclass(frozen=True, slots=True)
class Alias:
    """Another name for a catalogue entry, answering in both dialects."""

    name: str  # as written: `all-minilm`, `text-embedding-3-small`
    tag: str
    spec: ModelSpec
    configured: bool  # given with --alias, rather than one of Ollama's library names

    @property
    def qualified_name(self) -> str:
        return f"{self.name}:{self.tag}"


@dataclass(frozen=True, slots=True)
class AliasRefused:
    """A configured alias the catalogue cannot take; the server refuses to start with it."""

    alias: str
    target: str
    reason: str

    @property
    def message(self) -> str:
        return f"alias {self.alias}={self.target} refused: {self.reason}"


def _split_tag(requested: str) -> tuple[str, str]:
    name, sep, tag = requested.rpartition(":")
    if not sep or "/" in tag or not name:
        return requested, "latest"
    return name, tag


class Catalogue:
    """Resolves catalogue names, Ollama-style `name:tag`, aliases and Hugging Face repo ids."""

    def __init__(
        self, specs: Iterable[ModelSpec], library: Iterable[LibraryName] = LIBRARY_NAMES
    ) -> None:
        """`library`: Ollama's names for catalogue entries; one whose target is not among
        `specs` is left out."""
        self.specs = tuple(specs)
        self._index: dict[tuple[str, str], ModelSpec] = {}
        for spec in self.specs:
            self._index.setdefault((spec.name.lower(), spec.tag), spec)
            self._index.setdefault((spec.repo_id.lower(), spec.tag), spec)
            # a repo id names its entry whatever the entry's tag (Snowflake/snowflake-arctic-
            # embed-xs is snowflake-arctic-embed-xs), so it is never described a second time
            self._index.setdefault((spec.repo_id.lower(), "latest"), spec)
        self._aliases: dict[tuple[str, str], Alias] = {}
        for entry in library:
            target = self.resolve(entry.target)
            own = target is not None and entry.name.lower() == target.name.lower()
            if target is not None and not (own and entry.tag == target.tag):
                self._add(Alias(entry.name, entry.tag, target, configured=False))

    def _add(self, alias: Alias) -> None:
        key = (alias.name.lower(), alias.tag.lower())
        self._index.setdefault(key, alias.spec)
        self._aliases.setdefault(key, alias)

    def with_aliases(self, configured: Iterable[tuple[str, str]]) -> Catalogue | AliasRefused:
        """This catalogue plus `(alias, target)` pairs, each target a name this one resolves.

        An alias may not hide a name that already resolves (a catalogue name, repo id or
        Ollama library name): a client asking for `gte-base` always gets gte-base.
        """
        extended = Catalogue(())
        extended.specs = self.specs
        extended._index = dict(self._index)
        extended._aliases = dict(self._aliases)
        for name, target in configured:
            refused = extended._configure(name.strip(), target.strip())
            if refused is not None:
                return refused
        return extended

    def _configure(self, name: str, target: str) -> AliasRefused | None:
        if not _ALIAS_NAME.fullmatch(name):
            reason = "an alias is letters, digits, '.', '_', '-' and '/', with no ':tag'"
            return AliasRefused(name, target, reason)
        spec = self.resolve(target)
        if spec is None:
            return AliasRefused(name, target, f"no model {target!r} in the catalogue")
        existing = self._aliases.get((name.lower(), "latest"))
        if existing is not None and existing.configured:
            if existing.spec == spec:
                return None  # the same alias given twice
            reason = f"{name!r} is already an alias of {existing.spec.qualified_name}"
            return AliasRefused(name, target, reason)
        shadowed = self.resolve(name)
        if shadowed is not None:
            reason = f"{name!r} already names {shadowed.qualified_name}, which it would hide"
            return AliasRefused(name, target, reason)
        self._add(Alias(name, "latest", spec, configured=True))
        return None

    def aliases(self, spec: ModelSpec) -> tuple[Alias, ...]:
        """Other names of `spec` (Ollama's library names, configured aliases), to list beside
        its own."""
        return tuple(a for a in self._aliases.values() if a.spec == spec)

    def alias(self, requested: str) -> Alias | None:
        """The alias `requested` names, if it names one rather than a catalogue entry."""
        name, tag = _split_tag(requested.strip())
        return self._aliases.get((name.lower(), tag.lower()))

    def resolve(self, requested: str) -> ModelSpec | None:
        name, tag = _split_tag(requested.strip())
        return self._index.get((name.lower(), tag.lower()))
