"""Named hub repos as small random-weight models in their real layouts: what each repo's
config.json, sentence-transformers files and tokenizer say, at a tiny hidden size.

Each entry writes one repo's layout with the family factories (tests/model_factory*.py): the
architecture and its config quirks (position rows, token types), the modules.json pipeline
(Pooling mode, Normalize), the sequence limit and where it is written, and the tokenizer type.
Weights are random and small (hidden 32, 2 layers); only what can change a vector or a token is
kept. The facts, as the repos' published files state them (model cards and config files quoted
in public code; the hub itself cannot be reached from here):

- BAAI/bge-m3: XLMRobertaModel, max_position_embeddings 8194 (pad 1, so 8192 tokens),
  type_vocab_size 1, layer_norm_eps 1e-5; Transformer, Pooling (cls), Normalize; legacy
  sentence_bert_config.json with max_seq_length 8192; XLM-R SentencePiece tokenizer,
  model_max_length 8192.
- ibm-granite/granite-embedding-30m-english: RobertaModel, 514 positions; Pooling (cls),
  Normalize; max_seq_length 512; RoBERTa byte-level BPE.
- BAAI/bge-small-en-v1.5 / -base- / -large-: BertModel, 512 positions; Pooling (cls),
  Normalize; max_seq_length 512, do_lower_case true; bert-base-uncased WordPiece.
- mixedbread-ai/mxbai-embed-large-v1: BertModel; Pooling (cls), no Normalize module;
  max_seq_length 512; WordPiece.
- Snowflake/snowflake-arctic-embed-xs / -s / -m / -l: BertModel; Pooling (cls), Normalize;
  max_seq_length 512; WordPiece.
- sentence-transformers/msmarco-distilbert-base-v4 (mean) and multi-qa-distilbert-cos-v1
  (mean, Normalize): DistilBertModel, max_seq_length 512 (tests/model_factory_distilbert.py).
- sentence-transformers/all-mpnet-base-v2: MPNetModel, 514 positions; mean, Normalize;
  max_seq_length 384 (tests/model_factory_mpnet.py).
- google/embeddinggemma-300m: Gemma3TextModel, bidirectional; mean, two Dense, Normalize;
  max_seq_length 2048; Gemma's BPE; its task prompts (tests/model_factory_gemma3.py).
- sentence-transformers/all-MiniLM-L6-v2 / -L12-v2: BertModel; legacy files, mean, Normalize;
  max_seq_length 256 / 128, do_lower_case false; WordPiece (uncased vocabulary).
- sentence-transformers/paraphrase-multilingual-mpnet-base-v2: XLMRobertaModel despite its
  name; legacy files, mean, no Normalize; max_seq_length 128; XLM-R SentencePiece.
- Snowflake/snowflake-arctic-embed-l-v2.0: XLMRobertaModel, 8194 positions; Pooling (cls),
  Normalize; max_seq_length 8192 (its card: built on bge-m3-retromae).
- ibm-granite/granite-embedding-278m-multilingual: XLMRobertaModel (not confirmed here), 514
  positions; Pooling (cls), Normalize as its 30m sibling; max_seq_length 512.
- Alibaba-NLP/gte-modernbert-base (cls) and nomic-ai/modernbert-embed-base (mean, prompts
  `query` / `document`): ModernBertModel, legacy files, Normalize, max_seq_length 8192; what is
  unconfirmed is in tests/model_factory_modernbert.py.

- Qwen/Qwen3-Embedding-0.6B / -4B / -8B: Qwen3 decoders, lasttoken pooling, Normalize, the
  query instruction as a `query` prompt, a tokenizer appending <|endoftext|> and padding left
  (tests/model_factory_qwen3.py). Written here in float32, where the repos hold bfloat16: the
  references here load a folder as sentence-transformers does by default, which computes a
  bfloat16 file in bfloat16 (tests/parity/test_qwen3_parity.py checks the bfloat16 files).
- nomic-ai/nomic-embed-text-v1.5 and Snowflake/snowflake-arctic-embed-m-long: NomicBertModel in
  Nomic's config.json names (tests/model_factory_nomic.py has their facts): mean, 8192 tokens,
  the task prompts; CLS, Normalize, 2048 tokens, arctic v1's query prompt.

Prompts (config_sentence_transformers.json `prompts`): the cards of snowflake-arctic-embed
v1 (-xs/-s/-m/-l) call `encode(queries, prompt_name="query")` with the query prompt
"Represent this sentence for searching relevant passages: "; snowflake-arctic-embed-l-v2.0's
card calls the same and says it prepends "query: ". mxbai-embed-large-v1's card gives the same
query text as arctic v1; that its config names it `query` is assumed, not confirmed here. The
BGE v1.5 repos define none (their config_sentence_transformers.json has no `prompts` key, as
quoted by a third party; the card's query instruction is for the caller to prepend), nor do
bge-m3, granite-embedding, all-MiniLM and the paraphrase models.

Public API: `REPO_LAYOUTS`, `write_repo_layout`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from pathlib import Path

from tests.model_factory import _set_model_max_length, write_bert_model
from tests.model_factory_distilbert import write_distilbert_model
from tests.model_factory_gemma3 import write_gemma3_model
from tests.model_factory_modernbert import (
    EMBED_PROMPTS,
    GTE_MODERNBERT,
    MODERNBERT_EMBED,
    write_modernbert_model,
)
from tests.model_factory_mpnet import write_mpnet_model
from tests.model_factory_nomic import ARCTIC_LONG_PROMPTS, write_nomic_bert_model
from tests.model_factory_qwen3 import write_qwen3_model
from tests.model_factory_roberta import write_roberta_model

__all__ = ["REPO_LAYOUTS", "write_repo_layout"]

Writer = Callable[..., Path]  # (folder, *, seed) -> folder


def _xlm_r_cls_8192(folder: Path, *, seed: int) -> Path:
    """bge-m3's and snowflake-arctic-embed-l-v2.0's shape: XLM-R, 8192 tokens, CLS, Normalize."""
    write_roberta_model(
        folder,
        flavour="xlm-roberta",
        pooling="cls",
        normalize=True,
        config_format="legacy",
        max_seq_length=8192,
        max_position_embeddings=8194,
        seed=seed,
    )
    _set_model_max_length(folder, 8192)  # its tokenizer_config.json says so too
    return folder


def _with_prompts(write: Writer, prompts: dict[str, str]) -> Writer:
    """`write`, then the named prompts in config_sentence_transformers.json, as the repo has."""

    def write_with_prompts(folder: Path, *, seed: int) -> Path:
        write(folder, seed=seed)
        path = folder / "config_sentence_transformers.json"
        config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        config["prompts"] = prompts
        path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return folder

    return write_with_prompts


_QUERY_INSTRUCTION = {"query": "Represent this sentence for searching relevant passages: "}
_CLS_NORMALIZED_BERT = functools.partial(
    write_bert_model, pooling="cls", normalize=True, config_format="legacy", max_seq_length=512
)
_BGE_EN = functools.partial(_CLS_NORMALIZED_BERT, do_lower_case=True)
_ARCTIC_V1 = _with_prompts(_CLS_NORMALIZED_BERT, _QUERY_INSTRUCTION)
_ALL_MINILM = functools.partial(
    write_bert_model, normalize=True, config_format="legacy", do_lower_case=False
)

REPO_LAYOUTS: Mapping[str, Writer] = {
    "BAAI/bge-m3": _xlm_r_cls_8192,
    "ibm-granite/granite-embedding-30m-english": functools.partial(
        write_roberta_model, pooling="cls", normalize=True, max_seq_length=512
    ),
    "BAAI/bge-small-en-v1.5": _BGE_EN,
    "BAAI/bge-base-en-v1.5": _BGE_EN,
    "BAAI/bge-large-en-v1.5": _BGE_EN,
    "mixedbread-ai/mxbai-embed-large-v1": _with_prompts(
        functools.partial(
            write_bert_model, pooling="cls", config_format="legacy", max_seq_length=512
        ),
        _QUERY_INSTRUCTION,
    ),
    "Snowflake/snowflake-arctic-embed-xs": _ARCTIC_V1,
    "Snowflake/snowflake-arctic-embed-s": _ARCTIC_V1,
    "Snowflake/snowflake-arctic-embed-m": _ARCTIC_V1,
    "Snowflake/snowflake-arctic-embed-l": _ARCTIC_V1,
    "Snowflake/snowflake-arctic-embed-l-v2.0": _with_prompts(_xlm_r_cls_8192, {"query": "query: "}),
    "ibm-granite/granite-embedding-278m-multilingual": functools.partial(
        write_roberta_model,
        flavour="xlm-roberta",
        pooling="cls",
        normalize=True,
        max_seq_length=512,
    ),
    "sentence-transformers/all-MiniLM-L6-v2": functools.partial(_ALL_MINILM, max_seq_length=256),
    "sentence-transformers/all-MiniLM-L12-v2": functools.partial(_ALL_MINILM, max_seq_length=128),
    "sentence-transformers/paraphrase-multilingual-mpnet-base-v2": functools.partial(
        write_roberta_model, flavour="xlm-roberta", config_format="legacy", max_seq_length=128
    ),
    "sentence-transformers/msmarco-distilbert-base-v4": write_distilbert_model,
    "sentence-transformers/multi-qa-distilbert-cos-v1": functools.partial(
        write_distilbert_model, normalize=True
    ),
    "sentence-transformers/all-mpnet-base-v2": write_mpnet_model,
    "google/embeddinggemma-300m": write_gemma3_model,
    **dict.fromkeys(
        ("Qwen/Qwen3-Embedding-0.6B", "Qwen/Qwen3-Embedding-4B", "Qwen/Qwen3-Embedding-8B"),
        functools.partial(write_qwen3_model, dtype="float32"),
    ),
    GTE_MODERNBERT: write_modernbert_model,
    MODERNBERT_EMBED: functools.partial(
        write_modernbert_model, pooling="mean", prompts=EMBED_PROMPTS
    ),
    "nomic-ai/nomic-embed-text-v1.5": write_nomic_bert_model,
    "Snowflake/snowflake-arctic-embed-m-long": functools.partial(
        write_nomic_bert_model,
        pooling="cls",
        normalize=True,
        prompts=ARCTIC_LONG_PROMPTS,
        max_seq_length=2048,
        name_or_path="Snowflake/snowflake-arctic-embed-m-long",
    ),
}


def write_repo_layout(repo_id: str, folder: Path, *, seed: int = 0) -> Path:
    """Write `repo_id`'s layout, small and random, into `folder`; return `folder`."""
    return REPO_LAYOUTS[repo_id](Path(folder), seed=seed)
