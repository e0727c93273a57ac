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

Public API: `REPO_LAYOUTS`, `write_repo_layout`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path

from tests.model_factory import _set_model_max_length, write_bert_model
from tests.model_factory_distilbert import write_distilbert_model
from tests.model_factory_mpnet import write_mpnet_model
from tests.model_factory_roberta import write_roberta_model

__all__ = ["REPO_LAYOUTS", "write_repo_layout"]

Writer = Callable[..., Path]  # (folder, *, seed) -> folder


def _bge_m3(folder: Path, *, seed: int) -> Path:
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


_CLS_NORMALIZED_BERT = functools.partial(
    write_bert_model, pooling="cls", normalize=True, config_format="legacy", max_seq_length=512
)
_BGE_EN = functools.partial(_CLS_NORMALIZED_BERT, do_lower_case=True)

REPO_LAYOUTS: Mapping[str, Writer] = {
    "BAAI/bge-m3": _bge_m3,
    "ibm-granite/granite-embedding-30m-english": functools.partial(
        write_roberta_model, pooling="cls", normalize=True, max_seq_length=512
    ),
    "BAAI/bge-small-en-v1.5": _BGE_EN,
    "BAAI/bge-base-en-v1.5": _BGE_EN,
    "BAAI/bge-large-en-v1.5": _BGE_EN,
    "mixedbread-ai/mxbai-embed-large-v1": functools.partial(
        write_bert_model, pooling="cls", config_format="legacy", max_seq_length=512
    ),
    "Snowflake/snowflake-arctic-embed-xs": _CLS_NORMALIZED_BERT,
    "Snowflake/snowflake-arctic-embed-s": _CLS_NORMALIZED_BERT,
    "Snowflake/snowflake-arctic-embed-m": _CLS_NORMALIZED_BERT,
    "Snowflake/snowflake-arctic-embed-l": _CLS_NORMALIZED_BERT,
    "sentence-transformers/msmarco-distilbert-base-v4": write_distilbert_model,
    "sentence-transformers/multi-qa-distilbert-cos-v1": functools.partial(
        write_distilbert_model, normalize=True
    ),
    "sentence-transformers/all-mpnet-base-v2": write_mpnet_model,
}


def write_repo_layout(repo_id: str, folder: Path, *, seed: int = 0) -> Path:
    """Write `repo_id`'s layout, small and random, into `folder`; return `folder`."""
    return REPO_LAYOUTS[repo_id](Path(folder), seed=seed)
