"""Small random-weight DistilBERT models, in the layouts the sentence-transformers repos use.

sentence-transformers/msmarco-distilbert-base-v4 and multi-qa-distilbert-cos-v1 are
DistilBertModel checkpoints (config.json `architectures: ["DistilBertModel"]`, bare keys) saved
by sentence-transformers 2.x: the legacy files (max_seq_length 512 in
sentence_bert_config.json, boolean Pooling keys: mean), with a Normalize module in
multi-qa-distilbert-cos-v1 (its "cos" means unit vectors). Their tokenizer is
distilbert-base-uncased's, which is bert-base-uncased's WordPiece vocabulary: all-MiniLM-L6-v2's
tokenizer files here, with tokenizer_config.json naming DistilBertTokenizer.

Public API: `write_distilbert_model`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.model_factory import (
    VOCAB_SIZE,
    ConfigFormat,
    Layout,
    _copy_tokenizer,
    _randomise,
    _save_with_sentence_transformers,
    _set_model_max_length,
    _write_legacy_sentence_transformers_files,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = ["write_distilbert_model"]


def write_distilbert_model(  # noqa: PLR0913 - one keyword per knob a real repo varies
    folder: Path,
    *,
    pooling: str | list[str] = "mean",
    normalize: bool = False,
    layout: Layout = "sentence-transformers",
    config_format: ConfigFormat = "legacy",
    prefixed: bool = False,
    max_seq_length: int | None = 512,
    seed: int = 0,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 4,
    intermediate: int = 64,
    max_position_embeddings: int = 512,
) -> Path:
    """Write a random-weight DistilBERT model into `folder`; return `folder`.

    The knobs are tests/model_factory.py's write_bert_model's; config_format defaults to
    "legacy", the files both real repos carry. prefixed: DistilBertForMaskedLM's checkpoint
    (keys under `distilbert.` beside the vocab_* prediction head), as distilbert-base-uncased.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    modes = [pooling] if isinstance(pooling, str) else list(pooling)
    if layout == "transformers" and (modes != ["mean"] or normalize):
        msg = "a plain transformers repo has no pooling or normalize settings"
        raise ValueError(msg)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = _random_distilbert(
        hidden, layers, heads, intermediate, max_position_embeddings, seed=seed, prefixed=prefixed
    )
    if layout == "transformers":
        checkpoint.save_pretrained(folder)
        _copy_distilbert_tokenizer(folder)
        _set_model_max_length(folder, max_seq_length)
        return folder

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp)
        checkpoint.save_pretrained(source)
        _copy_distilbert_tokenizer(source)
        _save_with_sentence_transformers(
            source, folder, modes=modes, normalize=normalize, max_seq_length=max_seq_length
        )
    if prefixed:
        (folder / "model.safetensors").unlink()
        checkpoint.save_pretrained(folder)
    if config_format == "legacy":
        _write_legacy_sentence_transformers_files(folder, max_seq_length, do_lower_case=False)
    return folder


def _copy_distilbert_tokenizer(folder: Path) -> None:
    _copy_tokenizer(folder, cased=False)
    path = folder / "tokenizer_config.json"
    config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "DistilBertTokenizer"
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _random_distilbert(  # noqa: PLR0913 - the knobs of write_distilbert_model
    hidden: int,
    layers: int,
    heads: int,
    intermediate: int,
    max_position_embeddings: int,
    *,
    seed: int,
    prefixed: bool,
) -> PreTrainedModel:
    from transformers import DistilBertConfig, DistilBertForMaskedLM, DistilBertModel

    config = DistilBertConfig(
        vocab_size=VOCAB_SIZE,
        dim=hidden,
        n_layers=layers,
        n_heads=heads,
        hidden_dim=intermediate,
        max_position_embeddings=max_position_embeddings,
        activation="gelu",
    )
    model: PreTrainedModel = DistilBertForMaskedLM(config) if prefixed else DistilBertModel(config)
    _randomise(model, seed)
    return model
