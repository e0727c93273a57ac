"""Small random-weight MPNet models, in the layout of sentence-transformers/all-mpnet-base-v2.

all-mpnet-base-v2 is an MPNetModel checkpoint (config.json `architectures: ["MPNetModel"]`,
bare keys, 514 position rows, relative_attention_num_buckets 32, layer_norm_eps 1e-5) saved by
sentence-transformers 2.x: legacy files (max_seq_length 384, boolean Pooling keys: mean) and a
Normalize module. Its tokenizer is MPNetTokenizer: bert-base-uncased's WordPiece vocabulary
behind `<s> <pad> </s> <unk>` (ids 0-3) with `<mask>` last (30527 tokens), `<s> … </s>` around
the text, lower-casing, and `<pad>` (id 1) as the padding id, which is also the padding_idx
MPNet numbers positions after. Here the vocabulary is all-MiniLM-L6-v2's, so arranged, saved
through transformers' MPNetTokenizer.

Public API: `write_mpnet_model`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from tests.model_factory import (
    ConfigFormat,
    Layout,
    _randomise,
    _save_with_sentence_transformers,
    _set_model_max_length,
    _write_legacy_sentence_transformers_files,
    minilm_folder,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = ["write_mpnet_model"]

_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")


def write_mpnet_model(  # noqa: PLR0913 - one keyword per knob a real repo varies
    folder: Path,
    *,
    pooling: str | list[str] = "mean",
    normalize: bool = True,
    layout: Layout = "sentence-transformers",
    config_format: ConfigFormat = "legacy",
    prefixed: bool = False,
    max_seq_length: int | None = 384,
    seed: int = 0,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 4,
    intermediate: int = 64,
    max_position_embeddings: int = 514,
) -> Path:
    """Write a random-weight MPNet model into `folder`; return `folder`.

    The knobs are tests/model_factory.py's write_bert_model's; the defaults are
    all-mpnet-base-v2's (legacy files, mean pooling, Normalize, 384 tokens). prefixed:
    MPNetForMaskedLM's checkpoint (keys under `mpnet.` beside `lm_head.*`), as microsoft/mpnet-base.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    modes = [pooling] if isinstance(pooling, str) else list(pooling)
    if layout == "transformers" and (modes != ["mean"] or normalize):
        msg = "a plain transformers repo has no pooling or normalize settings"
        raise ValueError(msg)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = _random_mpnet(
        hidden, layers, heads, intermediate, max_position_embeddings, seed=seed, prefixed=prefixed
    )
    if layout == "transformers":
        checkpoint.save_pretrained(folder)
        _save_tokenizer(folder)
        _set_model_max_length(folder, max_seq_length)
        return folder

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp)
        checkpoint.save_pretrained(source)
        _save_tokenizer(source)
        _save_with_sentence_transformers(
            source, folder, modes=modes, normalize=normalize, max_seq_length=max_seq_length
        )
    if prefixed:
        (folder / "model.safetensors").unlink()
        checkpoint.save_pretrained(folder)
    if config_format == "legacy":
        _write_legacy_sentence_transformers_files(folder, max_seq_length, do_lower_case=False)
    return folder


def _vocabulary() -> dict[str, int]:
    """<s> <pad> </s> <unk>, bert-base-uncased's WordPiece vocabulary, then <mask>."""
    words = (minilm_folder() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    tokens = [*_SPECIALS, *words, "<mask>"]
    return {token: n for n, token in enumerate(tokens)}


def _save_tokenizer(folder: Path) -> None:
    """Saved by transformers' MPNetTokenizer, with the post-processor the hub's tokenizer.json
    files carry: transformers' MPNetConverter wrote a TemplateProcessing (two </s> between a
    pair), where MPNetTokenizer now writes a RobertaProcessing."""
    from tokenizers import Tokenizer, processors
    from transformers import MPNetTokenizer

    MPNetTokenizer(vocab=_vocabulary(), model_max_length=512).save_pretrained(str(folder))
    path = str(folder / "tokenizer.json")
    tokenizer = Tokenizer.from_file(path)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s>:0 $A:0 </s>:0",
        pair="<s>:0 $A:0 </s>:0 </s>:0 $B:1 </s>:1",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    tokenizer.save(path)


def _random_mpnet(  # noqa: PLR0913 - the knobs of write_mpnet_model
    hidden: int,
    layers: int,
    heads: int,
    intermediate: int,
    max_position_embeddings: int,
    *,
    seed: int,
    prefixed: bool,
) -> PreTrainedModel:
    from transformers import MPNetConfig, MPNetForMaskedLM, MPNetModel

    config = MPNetConfig(
        vocab_size=len(_vocabulary()),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_position_embeddings,
        hidden_act="gelu",
        layer_norm_eps=1e-5,
        relative_attention_num_buckets=32,
    )
    model: PreTrainedModel = MPNetForMaskedLM(config) if prefixed else MPNetModel(config)
    _randomise(model, seed)
    return model
