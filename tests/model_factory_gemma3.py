"""Small random-weight Gemma 3 encoders, in the layout of google/embeddinggemma-300m.

What the published repo holds (its files as quoted by public code that pins them; the hub itself
cannot be reached from here):

- config.json: `architectures: ["Gemma3TextModel"]`, model_type gemma3_text, dtype float32,
  hidden_size 768, 24 layers, max_position_embeddings 2048, pad_token_id 0, sliding_window 512,
  use_bidirectional_attention true (confirmed). The rest as transformers 4.57 wrote it and as
  Gemma 3 has it: 3 heads, 1 key/value head, head_dim 256, query_pre_attn_scalar 256,
  intermediate_size 1152, rope_theta 1e6 (full layers), rope_local_base_freq 1e4 (sliding
  layers), rope_scaling null, layer_types five sliding layers then one full, repeated,
  `_sliding_window_pattern` 6, no softcapping, gelu_pytorch_tanh (not confirmed, except that
  layer_types and the rope keys are how transformers 4.57 wrote Gemma 3 configs). transformers 5
  writes the same model with `rope_parameters` per layer type instead: `config_format`
  "transformers" keeps what it writes.
- modules.json: Transformer, 1_Pooling (mean, include_prompt true, legacy boolean keys),
  2_Dense (768 -> 3072) and 3_Dense (3072 -> 768), both `bias: false` and
  `torch.nn.modules.linear.Identity`, 4_Normalize, with `sentence_transformers.models.*` types;
  sentence_bert_config.json `{"max_seq_length": 2048, "do_lower_case": false}` (confirmed).
- config_sentence_transformers.json: the task prompts of the model card; "query", "document",
  "STS" and "InstructionRetrieval" are confirmed as written below, the others are the card's
  task names (not confirmed as keys).
- the tokenizer: GemmaTokenizer, a SentencePiece-style BPE with byte fallback (`<0x00>` ..
  `<0xFF>` in the vocabulary), spaces as "▁", no dummy prefix, ids <pad> 0, <eos> 1, <bos> 2,
  <unk> 3, <mask> 4, and `<bos> … <eos>` around a text (confirmed by a third party comparing with
  sentence-transformers: BOS 2 and EOS 1). transformers pads Gemma on the left. Here the
  vocabulary is a small BPE trained on English words, then written by transformers'
  GemmaTokenizer.

The small model keeps every shape relation that could hide a bug: head_dim x heads differs from
hidden_size, query_pre_attn_scalar differs from head_dim, two query heads share each key/value
head, and the sliding window (16 as written, so keys within 8 positions) is far shorter than the
corpus's long texts.

Public API: `write_gemma3_model`, `EMBEDDINGGEMMA_PROMPTS`.
"""

from __future__ import annotations

import functools
import json
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tests.model_factory import (
    DenseModule,
    _Head,
    _save_with_sentence_transformers,
    _set_model_max_length,
    _update_json,
    _write_legacy_sentence_transformers_files,
    minilm_folder,
)

if TYPE_CHECKING:
    import torch

__all__ = ["EMBEDDINGGEMMA_PROMPTS", "write_gemma3_model"]

EMBEDDINGGEMMA_PROMPTS = {
    "query": "task: search result | query: ",
    "document": "title: none | text: ",
    "BitextMining": "task: search result | query: ",
    "Clustering": "task: clustering | query: ",
    "Classification": "task: classification | query: ",
    "InstructionRetrieval": "task: code retrieval | query: ",
    "MultilabelClassification": "task: classification | query: ",
    "PairClassification": "task: sentence similarity | query: ",
    "Reranking": "task: search result | query: ",
    "Retrieval": "task: search result | query: ",
    "Retrieval-query": "task: search result | query: ",
    "Retrieval-document": "title: none | text: ",
    "STS": "task: sentence similarity | query: ",
    "Summarization": "task: summarization | query: ",
}

_SPECIALS = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>")
_BYTES = tuple(f"<0x{n:02X}>" for n in range(256))
_TRAINED_TOKENS = 1500

ConfigFormat = Literal["published", "transformers"]


def write_gemma3_model(  # noqa: PLR0913 - one keyword per knob a real repo varies
    folder: Path,
    *,
    seed: int = 0,
    config_format: ConfigFormat = "published",
    hidden: int = 40,
    layers: int = 3,
    heads: int = 4,
    kv_heads: int = 2,
    head_dim: int = 16,
    intermediate: int = 56,
    sliding_window: int = 16,
    layer_types: tuple[str, ...] = ("sliding_attention", "full_attention", "sliding_attention"),
    max_seq_length: int = 2048,
    prompts: dict[str, str] | None = None,
) -> Path:
    """Write a random-weight embeddinggemma-300m look-alike into `folder`; return `folder`."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = _published_config(
        hidden=hidden,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate=intermediate,
        sliding_window=sliding_window,
        layer_types=layer_types,
    )
    model = _random_gemma3(config, seed)
    head = _Head(
        dense=(
            DenseModule(4 * hidden, "Identity", bias=False),
            DenseModule(hidden, "Identity", bias=False),
        ),
        prompts=EMBEDDINGGEMMA_PROMPTS if prompts is None else prompts,
    )
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp)
        model.save_pretrained(source)
        _save_tokenizer(source)
        _save_with_sentence_transformers(
            source,
            folder,
            modes=["mean"],
            normalize=True,
            max_seq_length=max_seq_length,
            head=head,
            seed=seed,
        )
    _write_legacy_sentence_transformers_files(folder, max_seq_length, do_lower_case=False)
    _set_model_max_length(folder, max_seq_length)
    # transformers 4 wrote the flags beside the post-processor that applies them; transformers 5
    # rebuilds the post-processor from them where they are written
    _update_json(folder / "tokenizer_config.json", add_bos_token=True, add_eos_token=True)
    if config_format == "published":
        text = json.dumps(config, indent=2) + "\n"
        (folder / "config.json").write_text(text, encoding="utf-8")
    return folder


def _published_config(  # noqa: PLR0913 - the shapes of write_gemma3_model
    *,
    hidden: int,
    layers: int,
    heads: int,
    kv_heads: int,
    head_dim: int,
    intermediate: int,
    sliding_window: int,
    layer_types: tuple[str, ...],
) -> dict[str, Any]:
    """config.json with embeddinggemma-300m's keys (transformers 4.57's writing), small shapes."""
    return {
        "_sliding_window_pattern": 6,
        "architectures": ["Gemma3TextModel"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "attn_logit_softcapping": None,
        "bos_token_id": 2,
        "dtype": "float32",
        "eos_token_id": 1,
        "final_logit_softcapping": None,
        "head_dim": head_dim,
        "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": intermediate,
        "layer_types": list(layer_types),
        "max_position_embeddings": 2048,
        "model_type": "gemma3_text",
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "num_key_value_heads": kv_heads,
        "pad_token_id": 0,
        # 256 = head_dim in the published model; here it differs, so a scale read from head_dim
        # instead fails the parity tests
        "query_pre_attn_scalar": 4 * head_dim,
        "rms_norm_eps": 1e-06,
        "rope_local_base_freq": 10000.0,
        "rope_scaling": None,
        "rope_theta": 1000000.0,
        "sliding_window": sliding_window,
        "transformers_version": "4.57.0.dev0",
        "use_bidirectional_attention": True,
        "use_cache": True,
        "vocab_size": len(_vocabulary()[0]),
    }


def _random_gemma3(config: dict[str, Any], seed: int) -> torch.nn.Module:
    import torch
    from transformers import Gemma3TextConfig, Gemma3TextModel

    model = Gemma3TextModel(Gemma3TextConfig.from_dict(config))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
            if name.endswith("norm.weight"):
                # Gemma's norms scale by 1 + weight: trained ones sit well away from 0
                param.copy_(0.5 * noise)
            else:  # the table (scaled by sqrt(hidden) in the model) and the [out, in] layers
                param.copy_(noise / math.sqrt(param.shape[-1]))
    return model


@functools.cache
def _vocabulary() -> tuple[dict[str, int], tuple[tuple[str, str], ...]]:
    """Gemma's special tokens, the 256 byte-fallback tokens, then a BPE trained here on
    English words written SentencePiece-style ("▁" for a space, merges within a word)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    words = (minilm_folder() / "vocab.txt").read_text(encoding="utf-8").split()
    lines = [
        " ".join(w for w in words[n : n + 64] if "[" not in w) for n in range(0, len(words), 64)
    ]
    trainer = Tokenizer(models.BPE())
    trainer.normalizer = normalizers.Replace(" ", "▁")
    trainer.pre_tokenizer = pre_tokenizers.Split("▁", behavior="merged_with_next")
    trainer.train_from_iterator(
        lines, trainers.BpeTrainer(vocab_size=_TRAINED_TOKENS, show_progress=False)
    )
    trained = json.loads(trainer.to_str())["model"]
    tokens = [*_SPECIALS, *_BYTES]
    tokens += [t for t, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1])]
    merges = tuple(
        tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in trained["merges"]
    )
    return {t: n for n, t in enumerate(dict.fromkeys(tokens))}, merges  # type: ignore[return-value]


def _save_tokenizer(folder: Path) -> None:
    from transformers import GemmaTokenizer

    vocab, merges = _vocabulary()
    tokenizer = GemmaTokenizer(
        vocab=vocab,
        merges=list(merges),
        add_bos_token=True,
        add_eos_token=True,
        model_max_length=2048,
    )
    tokenizer.save_pretrained(str(folder))
