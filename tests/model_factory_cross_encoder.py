"""Small random-weight cross-encoders, in the file layouts of the rerankers people use.

- "ms-marco" (cross-encoder/ms-marco-MiniLM-L6-v2's layout): a transformers save of
  BertForSequenceClassification with one label (config.json with id2label {"0": "LABEL_0"} and
  the `sentence_transformers: {activation_fn: Sigmoid}` key sentence-transformers 4 wrote into
  it), all-MiniLM-L6-v2's WordPiece tokenizer files, model_max_length 512. No modules.json.
- "bge-reranker-v2-m3" (BAAI/bge-reranker-v2-m3's layout): a transformers save of
  XLMRobertaForSequenceClassification with one label and no sentence-transformers key (so the
  default sigmoid), an 8,194-row position table and model_max_length 8192, the Unigram
  tokenizer tests/model_factory_roberta.py trains, saved through XLMRobertaTokenizerFast.
- "gte-reranker-modernbert-base" (Alibaba-NLP/gte-reranker-modernbert-base's layout): a save of
  ModernBertForSequenceClassification with one label, config.json in the hub repos' ModernBERT
  spelling (tests/model_factory_modernbert.py) with `classifier_pooling` (`modernbert_pooling`:
  "mean" by default, "cls" the other) and no sentence-transformers key (so the default
  sigmoid), ModernBERT's byte-level BPE tokenizer, whose pair template marks the second text
  type 1 (transformers drops the types: model_input_names has none), model_max_length 8192. A
  16-token local window, so that pairs of the tests cross it. The repo's pooling and exact
  config keys are not confirmed against the hub files from here.

`activation` rewrites the activation config.json names (`sentence_transformers.activation_fn`,
where CrossEncoder looks in a repo without modules.json). `reference_cross_encoder` is
sentence-transformers' own CrossEncoder over a folder, offline, on CPU.

Public API: `write_cross_encoder`, `reference_cross_encoder`, `CrossLayout`.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Literal

from tests.model_factory import VOCAB_SIZE, _copy_tokenizer, _randomise, _set_model_max_length
from tests.model_factory_roberta import _PAD_ID, _save_tokenizer, _tokenizer

if TYPE_CHECKING:
    from pathlib import Path

    from sentence_transformers import CrossEncoder

__all__ = ["CrossLayout", "reference_cross_encoder", "write_cross_encoder"]

CrossLayout = Literal["ms-marco", "bge-reranker-v2-m3", "gte-reranker-modernbert-base"]

_SIGMOID = "torch.nn.modules.activation.Sigmoid"


def write_cross_encoder(  # noqa: PLR0913 - one keyword per knob a real repo varies
    folder: Path,
    layout: CrossLayout = "ms-marco",
    *,
    seed: int = 0,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 4,
    labels: int = 1,
    activation: str | None = None,
    intermediate: int | None = None,
    modernbert_pooling: str = "mean",
) -> Path:
    """`intermediate` is the FFN width, 2 x hidden unless given (ms-marco-MiniLM's is 4 x)."""
    folder.mkdir(parents=True, exist_ok=True)
    widths = {"hidden": hidden, "layers": layers, "heads": heads, "labels": labels}
    ffn = intermediate or 2 * hidden
    if layout == "ms-marco":
        _ms_marco(folder, seed=seed, intermediate=ffn, **widths)
    elif layout == "gte-reranker-modernbert-base":
        _gte_modernbert(folder, seed=seed, intermediate=ffn, pooling=modernbert_pooling, **widths)
    else:
        _bge_m3(folder, seed=seed, intermediate=ffn, **widths)
    if activation is not None:
        _update(folder / "config.json", sentence_transformers={"activation_fn": activation})
    return folder


def reference_cross_encoder(folder: Path) -> CrossEncoder:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import CrossEncoder

    return CrossEncoder(str(folder), device="cpu", local_files_only=True)


def _ms_marco(  # noqa: PLR0913 - write_cross_encoder's knobs
    folder: Path, *, seed: int, hidden: int, layers: int, heads: int, labels: int, intermediate: int
) -> None:
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=512,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        num_labels=labels,
    )
    model = BertForSequenceClassification(config)
    _randomise(model, seed)
    model.save_pretrained(str(folder))
    _copy_tokenizer(folder, cased=False)
    _set_model_max_length(folder, 512)
    _update(folder / "config.json", sentence_transformers={"activation_fn": _SIGMOID})


def _bge_m3(  # noqa: PLR0913 - write_cross_encoder's knobs
    folder: Path, *, seed: int, hidden: int, layers: int, heads: int, labels: int, intermediate: int
) -> None:
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

    tokenizer = _tokenizer("xlm-roberta")
    config = XLMRobertaConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=8194,
        type_vocab_size=1,
        hidden_act="gelu",
        layer_norm_eps=1e-5,
        pad_token_id=_PAD_ID,
        bos_token_id=0,
        eos_token_id=2,
        num_labels=labels,
    )
    model = XLMRobertaForSequenceClassification(config)
    _randomise(model, seed)
    model.save_pretrained(str(folder))
    _save_tokenizer("xlm-roberta", tokenizer, folder)
    _set_model_max_length(folder, 8192)


def _gte_modernbert(  # noqa: PLR0913 - write_cross_encoder's knobs
    folder: Path,
    *,
    seed: int,
    hidden: int,
    layers: int,
    heads: int,
    labels: int,
    intermediate: int,
    pooling: str,
) -> None:
    import math

    from transformers import ModernBertConfig, ModernBertForSequenceClassification

    from tests import model_factory_modernbert as mb

    tokenizer = mb._tokenizer()
    ids = {token: tokenizer.token_to_id(token) for token in ("[CLS]", "[SEP]", "[PAD]")}
    sizes = {
        "vocab_size": 64 * math.ceil(tokenizer.get_vocab_size(with_added_tokens=True) / 64),
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": intermediate,
        "local_attention": 16,
        "global_attn_every_n_layers": 3,
        "global_rope_theta": 160_000.0,
        "local_rope_theta": 10_000.0,
        "pad_token_id": ids["[PAD]"],
        "bos_token_id": ids["[CLS]"],
        "cls_token_id": ids["[CLS]"],
        "eos_token_id": ids["[SEP]"],
        "sep_token_id": ids["[SEP]"],
        "classifier_pooling": pooling,
    }
    config = ModernBertConfig(**sizes, max_position_embeddings=8192, num_labels=labels)
    model = ModernBertForSequenceClassification(config)
    mb._randomise(model, seed)
    model.save_pretrained(str(folder))
    mb._save_tokenizer(tokenizer, folder)
    mb._write_special_tokens_map(folder)
    labelled = {str(n): f"LABEL_{n}" for n in range(labels)}
    hub = {
        **mb._HUB_CONFIG,
        **sizes,
        "architectures": ["ModernBertForSequenceClassification"],
        "id2label": labelled,
        "label2id": {name: int(n) for n, name in labelled.items()},
    }
    text = json.dumps(dict(sorted(hub.items())), indent=2) + "\n"
    (folder / "config.json").write_text(text, encoding="utf-8")


def _update(path: Path, **values: Any) -> None:
    config = json.loads(path.read_text(encoding="utf-8"))
    config.update(values)
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
