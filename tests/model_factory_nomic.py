"""Small random-weight NomicBERT models, in the layouts of nomic-ai/nomic-embed-text-v1.5 and
Snowflake/snowflake-arctic-embed-m-long.

Both repos carry Nomic's own modelling code (config.json `auto_map`, never run here) and a
config.json in the names of Nomic's NomicBertConfig, which transformers 5.24's NomicBertConfig
does not read (it keeps its defaults, which happen to be nomic-embed-text-v1.5's shape). The
facts followed (reconstructed from transformers' nomic_bert files and the repos as public code
quotes them; the hub cannot be reached from here, so what is marked unconfirmed is a guess):

- config.json: `architectures: ["NomicBertModel"]`, model_type nomic_bert, n_embd 768, n_layer
  12, n_head 12, n_inner 3072, n_positions 8192, max_trained_positions 2048,
  layer_norm_epsilon 1e-12, activation_function swiglu, rotary_emb_base 1000,
  rotary_emb_fraction 1.0, rotary_emb_interleaved false, rotary_scaling_factor null, prenorm
  false, qkv_proj_bias / mlp_fc1_bias / mlp_fc2_bias false, type_vocab_size 2, vocab_size
  30528 (bert-base-uncased's 30522 padded to a multiple of 64). arctic-embed-m-long is the same
  shape (it was trained from nomic-embed-text-v1-unsupervised); its rotary_emb_base of 1000 is
  unconfirmed.
- model.safetensors: NomicBertModel's keys as Nomic named them (embeddings.word_embeddings,
  embeddings.token_type_embeddings, emb_ln, encoder.layers.N.attn.Wqkv, attn.out_proj,
  mlp.fc11 / fc12 / fc2, norm1, norm2), which is what transformers' save_pretrained writes back
  through its conversion mapping: the factory saves with transformers and checks the names.
- tokenizer: bert-base-uncased's WordPiece (here all-MiniLM-L6-v2's copy of it).
- sentence-transformers files, saved by sentence-transformers 2.x (legacy layout):
  nomic-embed-text-v1.5 has mean pooling, no Normalize module (its card normalises by hand
  after the Matryoshka cut; unconfirmed), max_seq_length 8192, and the prompts its card
  prescribes as named prompts (`search_query: ` as query, `search_document: ` as document,
  `classification: `, `clustering: `; that config_sentence_transformers.json names them so is
  unconfirmed). arctic-embed-m-long follows arctic-embed v1: CLS pooling, Normalize, the query
  prompt "Represent this sentence for searching relevant passages: " and max_seq_length 2048
  (its card: 2048, to 8192 with rotary scaling; unconfirmed).

`nomic_config="transformers"` keeps the config.json transformers writes (hidden_size, ...,
rope_parameters) instead: a repo re-saved by transformers 5.

Public API: `write_nomic_bert_model`, `nomic_reference_config`, `NOMIC_PROMPTS`,
`ARCTIC_LONG_PROMPTS`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tests.model_factory import (
    _copy_tokenizer,
    _Head,
    _save_with_sentence_transformers,
    _set_model_max_length,
    _write_legacy_sentence_transformers_files,
)

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

__all__ = [
    "ARCTIC_LONG_PROMPTS",
    "NOMIC_PROMPTS",
    "nomic_reference_config",
    "write_nomic_bert_model",
]

NOMIC_PROMPTS = {
    "query": "search_query: ",
    "document": "search_document: ",
    "classification": "classification: ",
    "clustering": "clustering: ",
}
ARCTIC_LONG_PROMPTS = {"query": "Represent this sentence for searching relevant passages: "}
_VOCAB_SIZE = 30528  # the tokenizer's 30522, padded to a multiple of 64 (pad_vocab_size_multiple)

# nomic-embed-text-v1.5's config.json less the sizes, which write_nomic_bert_model fills in
_NOMIC_CONFIG: dict[str, Any] = {
    "_name_or_path": "nomic-ai/nomic-embed-text-v1.5",
    "activation_function": "swiglu",
    "architectures": ["NomicBertModel"],
    "attn_pdrop": 0.0,
    "auto_map": {
        "AutoConfig": "nomic-ai/nomic-bert-2048--configuration_hf_nomic_bert.NomicBertConfig",
        "AutoModel": "nomic-ai/nomic-bert-2048--modeling_hf_nomic_bert.NomicBertModel",
        "AutoModelForMaskedLM": (
            "nomic-ai/nomic-bert-2048--modeling_hf_nomic_bert.NomicBertForPreTraining"
        ),
    },
    "bos_token_id": None,
    "causal": False,
    "dense_seq_output": True,
    "embd_pdrop": 0.0,
    "eos_token_id": None,
    "fused_bias_fc": True,
    "fused_dropout_add_ln": True,
    "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-12,
    "max_trained_positions": 2048,
    "mlp_fc1_bias": False,
    "mlp_fc2_bias": False,
    "model_type": "nomic_bert",
    "pad_vocab_size_multiple": 64,
    "parallel_block": False,
    "parallel_block_tied_norm": False,
    "prenorm": False,
    "qkv_proj_bias": False,
    "reorder_and_upcast_attn": False,
    "resid_pdrop": 0.0,
    "rotary_emb_fraction": 1.0,
    "rotary_emb_interleaved": False,
    "rotary_emb_scale_base": None,
    "rotary_scaling_factor": None,
    "scale_attn_by_inverse_layer_idx": False,
    "scale_attn_weights": True,
    "summary_activation": None,
    "summary_first_dropout": 0.0,
    "summary_proj_to_labels": True,
    "summary_type": "cls_index",
    "summary_use_proj": True,
    "torch_dtype": "float32",
    "transformers_version": "4.37.2",
    "type_vocab_size": 2,
    "use_cache": True,
    "use_flash_attn": True,
    "use_rms_norm": False,
    "use_xentropy": True,
    "vocab_size": _VOCAB_SIZE,
}
_CHECKPOINT_KEYS = (
    "emb_ln.bias",
    "emb_ln.weight",
    "embeddings.token_type_embeddings.weight",
    "embeddings.word_embeddings.weight",
)
_LAYER_KEYS = (
    "attn.Wqkv.weight",
    "attn.out_proj.weight",
    "mlp.fc11.weight",
    "mlp.fc12.weight",
    "mlp.fc2.weight",
    "norm1.bias",
    "norm1.weight",
    "norm2.bias",
    "norm2.weight",
)


def write_nomic_bert_model(  # noqa: PLR0913 - one keyword per knob a real repo varies
    folder: Path,
    *,
    pooling: str = "mean",
    normalize: bool = False,
    prompts: dict[str, str] | None = None,
    max_seq_length: int | None = 8192,
    nomic_config: Literal["nomic", "transformers"] = "nomic",
    name_or_path: str = "nomic-ai/nomic-embed-text-v1.5",
    seed: int = 0,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 4,
    intermediate: int = 64,
    rotary_base: float = 1000.0,
) -> Path:
    """Write a random-weight NomicBERT model into `folder`; return `folder`.

    Defaults are nomic-embed-text-v1.5's layout (prompts: NOMIC_PROMPTS when None).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = _random_nomic_bert(hidden, layers, heads, intermediate, rotary_base, seed=seed)
    head = _Head(prompts=NOMIC_PROMPTS if prompts is None else prompts)
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp)
        model.save_pretrained(source)
        _copy_tokenizer(source, cased=False)
        _save_with_sentence_transformers(
            source,
            folder,
            modes=[pooling],
            normalize=normalize,
            max_seq_length=max_seq_length,
            head=head,
            seed=seed,
        )
    _check_checkpoint_names(folder, layers)
    _write_legacy_sentence_transformers_files(folder, max_seq_length, do_lower_case=False)
    _set_model_max_length(folder, 8192)  # unconfirmed: the repos' tokenizer_config.json
    if nomic_config == "nomic":
        config = {
            **_NOMIC_CONFIG,
            "_name_or_path": name_or_path,
            "n_embd": hidden,
            "n_head": heads,
            "n_inner": intermediate,
            "n_layer": layers,
            "n_positions": 8192,
            "rotary_emb_base": rotary_base,
        }
        (folder / "config.json").write_text(
            json.dumps(dict(sorted(config.items())), indent=2) + "\n", encoding="utf-8"
        )
    return folder


def nomic_reference_config(folder: Path) -> dict[str, Any] | None:
    """transformers' NomicBertConfig settings a Nomic-named config.json means, for loading the
    reference (transformers 5.24 reads none of those names); None for any other config.json."""
    path = Path(folder) / "config.json"
    if not path.exists():  # a StaticEmbedding repo has none
        return None
    config = json.loads(path.read_text(encoding="utf-8"))
    if config.get("model_type") != "nomic_bert" or "n_embd" not in config:
        return None
    return {
        "hidden_size": config["n_embd"],
        "num_hidden_layers": config["n_layer"],
        "num_attention_heads": config["n_head"],
        "head_dim": config["n_embd"] // config["n_head"],  # else the default shape's 64 stays
        "intermediate_size": config["n_inner"],
        "max_position_embeddings": config["n_positions"],
        "layer_norm_eps": config["layer_norm_epsilon"],
        "vocab_size": config["vocab_size"],
        "type_vocab_size": config["type_vocab_size"],
        "rope_parameters": {"rope_type": "default", "rope_theta": config["rotary_emb_base"]},
    }


def _random_nomic_bert(  # noqa: PLR0913 - the knobs of write_nomic_bert_model
    hidden: int, layers: int, heads: int, intermediate: int, base: float, *, seed: int
) -> PreTrainedModel:
    from transformers import NomicBertConfig, NomicBertModel

    config = NomicBertConfig(
        vocab_size=_VOCAB_SIZE,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=8192,
        layer_norm_eps=1e-12,
        rope_parameters={"rope_type": "default", "rope_theta": base},
    )
    model = NomicBertModel(config)
    _randomise(model, seed)
    return model


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Every parameter drawn; the norms' weights around 1 (their names are not BERT's
    `LayerNorm` alone: post_attention_layernorm, post_mlp_layernorm)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
            if "layernorm" in name.lower() and name.endswith(".weight"):
                param.copy_(1.0 + 0.5 * noise)
            elif name.endswith("bias"):
                param.copy_(0.1 * noise)
            elif "embeddings" in name:
                param.copy_(0.05 * noise)  # small, as trained: the embedding LN's eps matters
            else:  # dense [out, in]: activations near unit scale
                param.copy_(noise / math.sqrt(param.shape[-1]))


def _check_checkpoint_names(folder: Path, layers: int) -> None:
    """transformers wrote the real checkpoint's names, and nothing else."""
    from safetensors import safe_open

    expected = {*_CHECKPOINT_KEYS}
    expected |= {f"encoder.layers.{n}.{key}" for n in range(layers) for key in _LAYER_KEYS}
    with safe_open(str(folder / "model.safetensors"), "np") as f:
        keys = set(f.keys())
    if keys != expected:
        msg = f"unexpected checkpoint names: {sorted(keys ^ expected)}"
        raise AssertionError(msg)
