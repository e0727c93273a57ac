"""Small random-weight ModernBERT models, in the layouts of Alibaba-NLP/gte-modernbert-base and
nomic-ai/modernbert-embed-base.

Both repos are ModernBertModel checkpoints (22 layers, hidden 768, 12 heads, intermediate 1152,
vocab_size 50368, 8192 positions, local_attention 128, a global layer every 3, rope thetas
160000 / 10000, no biases, norm_eps 1e-5) fine-tuned from answerdotai/ModernBERT-base and saved
by transformers 4.48 and sentence-transformers 3: config.json spells the attention pattern and
the rotary bases as `global_attn_every_n_layers`, `global_rope_theta` and `local_rope_theta`
(transformers 5 writes `layer_types` and `rope_parameters` instead: `config_spelling`
"transformers" writes that), and carries unused keys (`layer_norm_eps` beside `norm_eps`,
`classifier_*`, `reference_compile`, `position_embedding_type`). Their sentence-transformers
files are the legacy ones: `sentence_transformers.models.*` modules, max_seq_length 8192 in
sentence_bert_config.json, boolean Pooling keys; gte-modernbert-base pools CLS,
modernbert-embed-base pools the mean and names the prompts `query` ("search_query: ") and
`document` ("search_document: "); both end in Normalize. The key spellings follow transformers'
ModernBertConfig (its backward-compatible kwargs); the exact unused keys, the Normalize modules,
the max_seq_length and the prompts' names are not confirmed against the hub files from here.

The tokenizer is ModernBERT's kind (OLMo's byte-level BPE): NFC normalizer, ByteLevel
pre-tokenizer without a prefix space, a TemplateProcessing `[CLS] $A [SEP]`, `<|endoftext|>` and
`<|padding|>` at ids 0 and 1, and [UNK] [CLS] [SEP] [PAD] [MASK] (lstrip) added after the BPE
vocabulary, as ids 50280-50284 follow it in the real one; the model's vocab_size is the
tokenizer's rounded up to a multiple of 64, as 50368 rounds 50285. It is trained here on the
shared corpus; tokenizer_config.json names PreTrainedTokenizerFast with model_max_length 8192
(the NFC normalizer and that length are unconfirmed).

Public API: `write_modernbert_model`, `GTE_MODERNBERT`, `MODERNBERT_EMBED`, `EMBED_PROMPTS`.
"""

from __future__ import annotations

import functools
import json
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tests.corpus import VARIED_TEXTS
from tests.model_factory import (
    ConfigFormat,
    _Head,
    _save_with_sentence_transformers,
    _set_model_max_length,
    _write_legacy_sentence_transformers_files,
)

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer
    from transformers import PreTrainedModel

__all__ = [
    "EMBED_PROMPTS",
    "GTE_MODERNBERT",
    "MODERNBERT_EMBED",
    "ConfigSpelling",
    "write_modernbert_model",
]

GTE_MODERNBERT = "Alibaba-NLP/gte-modernbert-base"
MODERNBERT_EMBED = "nomic-ai/modernbert-embed-base"
EMBED_PROMPTS = {"query": "search_query: ", "document": "search_document: "}

ConfigSpelling = Literal["hub", "transformers"]

_BPE_VOCAB = 900
_LEADING = ("<|endoftext|>", "<|padding|>")  # ids 0 and 1, as in OLMo's vocabulary
_ADDED = ("[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]")  # after the BPE vocabulary
_MAX_LENGTH = 8192

# config.json as the hub repos carry it, less the sizes and token ids the factory fills in
_HUB_CONFIG: dict[str, Any] = {
    "architectures": ["ModernBertModel"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "classifier_activation": "gelu",
    "classifier_bias": False,
    "classifier_dropout": 0.0,
    "classifier_pooling": "mean",
    "decoder_bias": True,
    "deterministic_flash_attn": False,
    "embedding_dropout": 0.0,
    "gradient_checkpointing": False,
    "hidden_activation": "gelu",
    "initializer_cutoff_factor": 2.0,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 8192,
    "mlp_bias": False,
    "mlp_dropout": 0.0,
    "model_type": "modernbert",
    "norm_bias": False,
    "norm_eps": 1e-05,
    "position_embedding_type": "absolute",
    "reference_compile": True,
    "repad_logits_with_grad": False,
    "sparse_pred_ignore_index": -100,
    "sparse_prediction": False,
    "torch_dtype": "float32",
    "transformers_version": "4.48.0",
}


def write_modernbert_model(  # noqa: PLR0913 - one keyword per knob a real repo varies
    folder: Path,
    *,
    pooling: str = "cls",
    normalize: bool = True,
    prompts: dict[str, str] | None = None,
    config_format: ConfigFormat = "legacy",
    config_spelling: ConfigSpelling = "hub",
    prefixed: bool = False,
    max_seq_length: int | None = _MAX_LENGTH,
    seed: int = 0,
    hidden: int = 32,
    layers: int = 4,
    heads: int = 4,
    intermediate: int = 48,
    local_attention: int = 128,
    global_attn_every_n_layers: int = 3,
    rope_theta: tuple[float, float] = (160_000.0, 10_000.0),
) -> Path:
    """Write a random-weight ModernBERT model into `folder`; return `folder`.

    The defaults are gte-modernbert-base's (CLS, Normalize, legacy files, 8192 tokens, the hub's
    config spelling) at a tiny size; 4 layers with a global layer every 3 make layers 0 and 3
    global, 1 and 2 local. rope_theta: (global, local). config_spelling: "hub" (the published
    config.json's keys) or "transformers" (what transformers 5 writes). prefixed:
    ModernBertForMaskedLM's checkpoint (keys under `model.`, beside `head.*` and
    `decoder.bias`), as answerdotai/ModernBERT-base has it.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer()
    ids = {token: tokenizer.token_to_id(token) for token in _ADDED}
    sizes = {
        "vocab_size": 64 * math.ceil(tokenizer.get_vocab_size(with_added_tokens=True) / 64),
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": intermediate,
        "local_attention": local_attention,
        "global_attn_every_n_layers": global_attn_every_n_layers,
        "global_rope_theta": rope_theta[0],
        "local_rope_theta": rope_theta[1],
        "pad_token_id": ids["[PAD]"],
        "bos_token_id": ids["[CLS]"],
        "cls_token_id": ids["[CLS]"],
        "eos_token_id": ids["[SEP]"],
        "sep_token_id": ids["[SEP]"],
    }
    checkpoint = _random_modernbert(sizes, seed=seed, prefixed=prefixed)
    head = _Head(prompts=prompts or {})
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp)
        checkpoint.save_pretrained(source)
        _save_tokenizer(tokenizer, source)
        _save_with_sentence_transformers(
            source,
            folder,
            modes=[pooling],
            normalize=normalize,
            max_seq_length=max_seq_length,
            head=head,
        )
    if prefixed:  # sentence-transformers saved the bare model it loaded: put the MLM one back
        (folder / "model.safetensors").unlink()
        checkpoint.save_pretrained(folder)
    if config_format == "legacy":
        _write_legacy_sentence_transformers_files(folder, max_seq_length, do_lower_case=False)
        _set_model_max_length(folder, _MAX_LENGTH)  # the tokenizer's own, 8192 on the hub
    _write_special_tokens_map(folder)
    if config_spelling == "hub":
        architecture = type(checkpoint).__name__
        config = {**_HUB_CONFIG, **sizes, "architectures": [architecture]}
        text = json.dumps(dict(sorted(config.items())), indent=2) + "\n"
        (folder / "config.json").write_text(text, encoding="utf-8")
    return folder


# --- tokenizer ------------------------------------------------------------------------------------


@functools.cache
def _tokenizer() -> Tokenizer:
    """Trained once per process; the trainer is deterministic on a fixed corpus."""
    from tokenizers import (
        AddedToken,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_BPE_VOCAB,
        special_tokens=list(_LEADING),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(VARIED_TEXTS, trainer=trainer)
    *plain, mask = _ADDED
    tokenizer.add_special_tokens([AddedToken(t, special=True) for t in plain])
    # as in the real vocabulary, [MASK] swallows the space before it
    tokenizer.add_special_tokens([AddedToken(mask, lstrip=True, special=True)])
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return tokenizer


def _save_tokenizer(tokenizer: Tokenizer, folder: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
        model_max_length=_MAX_LENGTH,
        model_input_names=["input_ids", "attention_mask"],
        clean_up_tokenization_spaces=True,
    ).save_pretrained(str(folder))


def _write_special_tokens_map(folder: Path) -> None:
    """What the hub repos carry and transformers 5 no longer writes."""
    mask = {"content": "[MASK]", "lstrip": True, "normalized": False}
    tokens = {
        "cls_token": "[CLS]",
        "mask_token": {**mask, "rstrip": False, "single_word": False},
        "pad_token": "[PAD]",
        "sep_token": "[SEP]",
        "unk_token": "[UNK]",
    }
    path = folder / "special_tokens_map.json"
    path.write_text(json.dumps(tokens, indent=2) + "\n", encoding="utf-8")


# --- model ----------------------------------------------------------------------------------------


def _random_modernbert(sizes: dict[str, Any], *, seed: int, prefixed: bool) -> PreTrainedModel:
    from transformers import ModernBertConfig, ModernBertForMaskedLM, ModernBertModel

    config = ModernBertConfig(**sizes, max_position_embeddings=_MAX_LENGTH)
    model: PreTrainedModel = ModernBertForMaskedLM(config) if prefixed else ModernBertModel(config)
    _randomise(model, seed)
    return model


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Draw every parameter, the LayerNorms included (their default 1 would hide a norm left
    out): ModernBERT names them `*norm.weight`, which tests/model_factory.py's _randomise does
    not recognise."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
            if name.endswith("norm.weight"):
                param.copy_(1.0 + 0.5 * noise)
            elif name.endswith("bias"):
                param.copy_(0.1 * noise)
            elif "tok_embeddings" in name:
                # small, as trained models have them: the embeddings' norm then sees a variance
                # where its eps visibly matters
                param.copy_(0.05 * noise)
            else:  # dense [out, in]: keeps activations near unit scale
                param.copy_(noise / math.sqrt(param.shape[-1]))
