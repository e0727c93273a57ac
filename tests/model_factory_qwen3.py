"""Small random-weight Qwen3 models, in the layout of Qwen/Qwen3-Embedding-0.6B.

The repo's files, as reconstructed from transformers' Qwen3Config / Qwen2Tokenizer and
sentence-transformers' docs (the hub itself cannot be reached from here; what is marked
UNCONFIRMED is what we believe the published files say without having read them):

- config.json: transformers 4.51's Qwen3Config as saved for Qwen3ForCausalLM
  (`architectures: ["Qwen3ForCausalLM"]`, model_type qwen3), rope_theta 1000000 with
  `rope_scaling: null` (not transformers 5's rope_parameters), head_dim 128 beside hidden 1024
  and 16 heads (8 key/value heads), rms_norm_eps 1e-6, attention_bias false,
  use_sliding_window false with sliding_window null and max_window_layers 28,
  tie_word_embeddings true, torch_dtype bfloat16, max_position_embeddings 32768.
- model.safetensors: Qwen3Model's keys, bare (`embed_tokens.weight`, `layers.N.…`,
  `norm.weight`), in bfloat16; no lm_head. UNCONFIRMED: bare rather than under `model.`
  (the loader accepts both; `prefixed=True` writes Qwen3ForCausalLM's `model.` keys).
- modules.json: Transformer, Pooling (1_Pooling, lasttoken, include_prompt true), Normalize
  (2_Normalize), in sentence-transformers 2.x/3.x's module names; sentence_bert_config.json
  max_seq_length 8192 UNCONFIRMED (32768 in some copies), do_lower_case false.
- config_sentence_transformers.json: prompts {"query": "Instruct: Given a web search query,
  retrieve relevant passages that answer the query\\nQuery:", "document": ""}, no default
  prompt, cosine similarity.
- tokenizer: Qwen2Tokenizer's byte-level BPE (NFC, the split regex, ByteLevel without prefix
  space) whose tokenizer.json post-processor is a TemplateProcessing appending <|endoftext|>
  after the text (the repo updated its tokenizer so that the token the model pools comes by
  itself; UNCONFIRMED in detail: the template's exact form). tokenizer_config.json says
  padding_side "left", pad and eos <|endoftext|> (UNCONFIRMED: eos may be <|im_end|>; nothing
  here reads it). Here the vocabulary is a small BPE trained on the shared corpus, with
  Qwen's special tokens after it as added tokens.

Public API: `write_qwen3_model`, `QWEN3_PROMPTS`; the published sizes as header-only files (the
configs and safetensors headers of the 0.6B, 4B and 8B without their bytes), for the size checks:
`PUBLISHED_SHAPES`, `published_tensors`, `header_only_safetensors`, `published_repo_files`.
"""

from __future__ import annotations

import functools
import json
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.model_factory import _write_legacy_sentence_transformers_files

if TYPE_CHECKING:
    import torch
    from tokenizers import Tokenizer

__all__ = [
    "PUBLISHED_SHAPES",
    "QWEN3_PROMPTS",
    "header_only_safetensors",
    "published_repo_files",
    "published_tensors",
    "write_qwen3_model",
]

QWEN3_PROMPTS = {
    "query": (
        "Instruct: Given a web search query, retrieve relevant passages that answer the query"
        "\nQuery:"
    ),
    "document": "",
}
_ENDOFTEXT = "<|endoftext|>"
_SPECIALS = (_ENDOFTEXT, "<|im_start|>", "<|im_end|>")
# transformers' Qwen2Tokenizer PRETOKENIZE_REGEX, which Qwen's tokenizer.json carries too
_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def write_qwen3_model(  # noqa: PLR0913 - one keyword per knob a real repo varies
    folder: Path,
    *,
    max_seq_length: int = 8192,
    prefixed: bool = False,
    dtype: str = "bfloat16",
    seed: int = 0,
    hidden: int = 48,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    head_dim: int = 16,
    intermediate: int = 64,
    attention_bias: bool = False,
    sliding_window: int | None = None,
    max_window_layers: int = 28,
) -> Path:
    """Write a random-weight Qwen3-Embedding-shaped model into `folder`; return `folder`.

    head_dim x heads (64) differs from hidden (48), as in the published models (128 x 16 over
    1024). dtype: the safetensors' (bfloat16 as published, or float32). sliding_window: turns
    use_sliding_window on, for the layers from max_window_layers on.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer()
    config = _config(
        vocab_size=tokenizer.get_vocab_size(with_added_tokens=True),
        hidden=hidden,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        intermediate=intermediate,
        attention_bias=attention_bias,
        sliding_window=sliding_window,
        max_window_layers=max_window_layers,
        dtype=dtype,
    )
    model = _random_qwen3(config, seed=seed, prefixed=prefixed)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp)
        model.save_pretrained(source)
        _write_tokenizer(source, tokenizer)
        _save_with_sentence_transformers(source, folder, max_seq_length)
    if prefixed:  # Qwen3ForCausalLM's checkpoint, as transformers saves it
        (folder / "model.safetensors").unlink()
        model.save_pretrained(folder)
    _write_published_config(folder, config)
    _write_tokenizer(folder, tokenizer)
    return folder


# --- tokenizer ------------------------------------------------------------------------------------


@functools.cache
def _tokenizer_json() -> str:
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    from tests.corpus import VARIED_TEXTS

    tokenizer = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=700,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(VARIED_TEXTS, trainer)
    tokenizer.add_special_tokens(list(_SPECIALS))  # after the vocabulary, as Qwen's 151643…
    eos = tokenizer.token_to_id(_ENDOFTEXT)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A:0 {_ENDOFTEXT}:0",
        pair=f"$A:0 {_ENDOFTEXT}:0 $B:1 {_ENDOFTEXT}:1",
        special_tokens=[(_ENDOFTEXT, eos)],
    )
    return tokenizer.to_str()


def _tokenizer() -> Tokenizer:
    from tokenizers import Tokenizer

    return Tokenizer.from_str(_tokenizer_json())


def _write_tokenizer(folder: Path, tokenizer: Tokenizer) -> None:
    tokenizer.save(str(folder / "tokenizer.json"))
    added = {
        str(tokenizer.token_to_id(token)): {
            "content": token,
            "lstrip": False,
            "normalized": False,
            "rstrip": False,
            "single_word": False,
            "special": True,
        }
        for token in _SPECIALS
    }
    config = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>"],
        "bos_token": None,
        "clean_up_tokenization_spaces": False,
        "eos_token": _ENDOFTEXT,
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": _ENDOFTEXT,
        "padding_side": "left",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


# --- model ----------------------------------------------------------------------------------------


def _config(**knobs: Any) -> dict[str, Any]:
    """config.json as the published repo words it (transformers 4.51's keys)."""
    window = knobs["sliding_window"]
    return {
        "architectures": ["Qwen3ForCausalLM"],
        "attention_bias": knobs["attention_bias"],
        "attention_dropout": 0.0,
        "bos_token_id": knobs["vocab_size"] - 3,
        "eos_token_id": knobs["vocab_size"] - 3,
        "head_dim": knobs["head_dim"],
        "hidden_act": "silu",
        "hidden_size": knobs["hidden"],
        "initializer_range": 0.02,
        "intermediate_size": knobs["intermediate"],
        "max_position_embeddings": 32768,
        "max_window_layers": knobs["max_window_layers"],
        "model_type": "qwen3",
        "num_attention_heads": knobs["heads"],
        "num_hidden_layers": knobs["layers"],
        "num_key_value_heads": knobs["kv_heads"],
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000,
        "sliding_window": window,
        "tie_word_embeddings": True,
        "torch_dtype": knobs["dtype"],
        "transformers_version": "4.51.3",
        "use_cache": True,
        "use_sliding_window": window is not None,
        "vocab_size": knobs["vocab_size"],
    }


def _random_qwen3(config: dict[str, Any], *, seed: int, prefixed: bool) -> Any:
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM, Qwen3Model

    knobs = {k: v for k, v in config.items() if k not in {"architectures", "torch_dtype"}}
    qwen3 = Qwen3Config(**knobs)
    model = Qwen3ForCausalLM(qwen3) if prefixed else Qwen3Model(qwen3)
    _randomise(model, seed)
    dtype = {"bfloat16": torch.bfloat16, "float32": torch.float32}[config["torch_dtype"]]
    return model.to(dtype)


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Every parameter drawn: norms around 1 (all-ones would hide a norm applied twice or not
    at all), embeddings and projections near unit scale."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
            if "norm" in name:
                param.copy_(1.0 + 0.5 * noise)
            elif name.endswith("bias"):
                param.copy_(0.1 * noise)
            elif "embed_tokens" in name:
                param.copy_(noise)
            else:  # [out, in]
                param.copy_(noise / math.sqrt(param.shape[-1]))


def _save_with_sentence_transformers(source: Path, folder: Path, max_seq_length: int) -> None:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.normalize import Normalize
    from sentence_transformers.base.modules.transformer import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    transformer = Transformer(
        str(source), max_seq_length=max_seq_length, model_kwargs={"dtype": torch.float32}
    )
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="lasttoken")
    model = SentenceTransformer(
        modules=[transformer, pooling, Normalize()], device="cpu", prompts=QWEN3_PROMPTS
    )
    model.save(str(folder))
    # the weights as the source has them (bfloat16 as published), not the float32 copy loaded
    (folder / "model.safetensors").write_bytes((source / "model.safetensors").read_bytes())
    _write_legacy_sentence_transformers_files(folder, max_seq_length, do_lower_case=False)
    path = folder / "config_sentence_transformers.json"
    st_config = json.loads(path.read_text(encoding="utf-8"))
    st_config.update(prompts=QWEN3_PROMPTS, default_prompt_name=None, similarity_fn_name="cosine")
    path.write_text(json.dumps(st_config, indent=2), encoding="utf-8")


def _write_published_config(folder: Path, config: dict[str, Any]) -> None:
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


# --- the published sizes, as headers alone -------------------------------------------------

# Qwen3-Embedding-0.6B / 4B / 8B: (vocab, hidden, layers, heads, kv heads, head_dim, intermediate),
# from Qwen3-0.6B / 4B / 8B's configs, which the embedding models share (UNCONFIRMED for 4B and
# 8B: their vocabularies may be 151665 rather than 151669).
PUBLISHED_SHAPES: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "0.6B": (151669, 1024, 28, 16, 8, 128, 3072),
    "4B": (151665, 2560, 36, 32, 8, 128, 9728),
    "8B": (151665, 4096, 36, 32, 8, 128, 12288),
}


def published_tensors(size: str) -> dict[str, tuple[int, ...]]:
    """Every tensor of Qwen3Model at a published size, by its bare key, with its shape."""
    vocab, hidden, layers, heads, kv, hd, inter = PUBLISHED_SHAPES[size]
    shapes: dict[str, tuple[int, ...]] = {"embed_tokens.weight": (vocab, hidden)}
    for n in range(layers):
        p = f"layers.{n}"
        shapes |= {
            f"{p}.input_layernorm.weight": (hidden,),
            f"{p}.post_attention_layernorm.weight": (hidden,),
            f"{p}.self_attn.q_proj.weight": (heads * hd, hidden),
            f"{p}.self_attn.k_proj.weight": (kv * hd, hidden),
            f"{p}.self_attn.v_proj.weight": (kv * hd, hidden),
            f"{p}.self_attn.o_proj.weight": (hidden, heads * hd),
            f"{p}.self_attn.q_norm.weight": (hd,),
            f"{p}.self_attn.k_norm.weight": (hd,),
            f"{p}.mlp.gate_proj.weight": (inter, hidden),
            f"{p}.mlp.up_proj.weight": (inter, hidden),
            f"{p}.mlp.down_proj.weight": (hidden, inter),
        }
    return shapes | {"norm.weight": (hidden,)}


def header_only_safetensors(shapes: dict[str, tuple[int, ...]], dtype: str = "BF16") -> bytes:
    """A safetensors file's header claiming these bfloat16 tensors, and none of their bytes:
    what a size check reads, without writing GBs (any read of a tensor fails)."""
    itemsize = {"BF16": 2, "F32": 4}[dtype]
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in shapes.items():
        end = offset + math.prod(shape) * itemsize
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, end]}
        offset = end
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # safetensors pads the header to 8 bytes
    return len(raw).to_bytes(8, "little") + raw


def published_repo_files(size: str, *, shards: int) -> dict[str, bytes]:
    """The configs of Qwen3-Embedding-`size` and its weights as `shards` header-only files with
    their index (model-0000N-of-0000M.safetensors, as the 4B and 8B are published)."""
    vocab, hidden, layers, heads, kv, hd, inter = PUBLISHED_SHAPES[size]
    config = _config(
        vocab_size=vocab,
        hidden=hidden,
        layers=layers,
        heads=heads,
        kv_heads=kv,
        head_dim=hd,
        intermediate=inter,
        attention_bias=False,
        sliding_window=None,
        max_window_layers=layers,
        dtype="bfloat16",
    )
    tensors = list(published_tensors(size).items())
    files = {"config.json": json.dumps(config, indent=2).encode()}
    weight_map: dict[str, str] = {}
    for n in range(shards):
        name = f"model-{n + 1:05d}-of-{shards:05d}.safetensors"
        part = dict(tensors[n::shards])
        files[name] = header_only_safetensors(part)
        weight_map |= dict.fromkeys(part, name)
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    files["model.safetensors.index.json"] = json.dumps(index).encode()
    return files
