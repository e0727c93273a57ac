"""Small random-weight CLIP models in the layout transformers writes for CLIPModel.

transformers saves the folder itself (config.json with text_config and vision_config,
model.safetensors, tokenizer.json, tokenizer_config.json, preprocessor_config.json), so the
files are exactly what the installed version writes. The tokenizer is CLIP's: byte-level BPE
whose word-final symbols carry `</w>`, the 512 single-byte symbols first, then merges learned
here from the test corpus, then <|startoftext|> and <|endoftext|> last (so the end-of-text id
is the largest, as in the real vocabulary).

Public API: `write_clip_model`, `reference_clip`, `reference_image_processor`,
`reference_tokenizer`, `EosConvention`.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tests.corpus import VARIED_TEXTS

if TYPE_CHECKING:
    from transformers import CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

__all__ = [
    "EosConvention",
    "reference_clip",
    "reference_image_processor",
    "reference_tokenizer",
    "write_clip_model",
]

# "first": config.json names the real end-of-text id (transformers >= 4.31 saves);
# "legacy": eos_token_id 2, for which transformers takes the largest id's position
EosConvention = Literal["first", "legacy"]

_MERGES = 600
_BOS, _EOS = "<|startoftext|>", "<|endoftext|>"


@functools.cache
def _vocabulary() -> tuple[dict[str, int], list[tuple[str, str]]]:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    learner = Tokenizer(models.BPE(continuing_subword_prefix="", end_of_word_suffix="</w>"))
    learner.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=2 * len(alphabet) + _MERGES,
        initial_alphabet=alphabet,
        end_of_word_suffix="</w>",
        show_progress=False,
    )
    learner.train_from_iterator([t.lower() for t in VARIED_TEXTS], trainer=trainer)
    import json

    learned = json.loads(learner.to_str())["model"]["merges"]
    symbols = sorted(alphabet)
    vocab: dict[str, int] = {}
    for symbol in [*symbols, *(s + "</w>" for s in symbols)]:
        vocab.setdefault(symbol, len(vocab))
    merges: list[tuple[str, str]] = []
    for left, right in (m if isinstance(m, list) else m.split(" ") for m in learned):
        if left in vocab and right in vocab and left + right not in vocab:
            vocab[left + right] = len(vocab)
            merges.append((left, right))
    vocab[_BOS] = len(vocab)
    vocab[_EOS] = len(vocab)
    return vocab, merges


def reference_tokenizer(folder: Path) -> CLIPTokenizer:
    from transformers import CLIPTokenizer

    tokenizer: CLIPTokenizer = CLIPTokenizer.from_pretrained(folder)
    return tokenizer


def reference_image_processor(folder: Path) -> CLIPImageProcessorPil:
    """transformers' PIL backend of CLIPImageProcessor: what transformers runs without
    torchvision, and the processing the issue names (PIL bicubic resize)."""
    from transformers import CLIPImageProcessorPil

    return CLIPImageProcessorPil.from_pretrained(folder)


def reference_clip(folder: Path) -> CLIPModel:
    from transformers import CLIPModel

    return CLIPModel.from_pretrained(folder)  # in eval mode: no dropout


def write_clip_model(  # noqa: PLR0913 - one keyword per knob a real repo varies
    folder: Path,
    *,
    seed: int = 0,
    eos: EosConvention = "first",
    hidden_act: str = "quick_gelu",
    image_size: int = 32,
    patch_size: int = 8,
    shortest_edge: int | None = None,
    text_only: bool = False,
) -> Path:
    """A CLIPModel (or its text tower alone, saved under CLIPModel's keys) with random weights.

    `shortest_edge` (default `image_size`) is the processor's resize target; the crop is
    always `image_size`.
    """
    import torch
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

    vocab, merges = _vocabulary()
    folder.mkdir(parents=True, exist_ok=True)
    # tokenizers takes merges as pairs; transformers' annotation says strings
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)  # type: ignore[arg-type]
    tokenizer.save_pretrained(folder)
    eos_id = vocab[_EOS] if eos == "first" else 2
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 77,
            "hidden_act": hidden_act,
            "bos_token_id": vocab[_BOS],
            "eos_token_id": eos_id,
            "pad_token_id": 1,
        },
        vision_config={
            "hidden_size": 48,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": image_size,
            "patch_size": patch_size,
            "hidden_act": hidden_act,
        },
        projection_dim=24,
    )
    model = CLIPModel(config)
    _randomise(model, seed)
    state = model.state_dict()
    if text_only:
        state = {k: v for k, v in state.items() if not k.startswith(("vision_model.", "visual_"))}
    from safetensors.torch import save_file

    config.save_pretrained(folder)
    save_file({k: v.contiguous() for k, v in state.items()}, folder / "model.safetensors")
    edge = image_size if shortest_edge is None else shortest_edge
    processor = CLIPImageProcessorPil(
        size={"shortest_edge": edge}, crop_size={"height": image_size, "width": image_size}
    )
    processor.save_pretrained(folder)
    del torch
    return folder


def _randomise(model: Any, seed: int) -> None:
    """Draw every parameter, LayerNorms included (their 1/0 init would hide LayerNorm bugs)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
            if "norm" in name and name.endswith(".weight"):
                param.copy_(1.0 + 0.5 * noise)
            elif name.endswith("bias"):
                param.copy_(0.1 * noise)
            elif "embedding" in name and "patch" not in name:
                param.copy_(0.5 * noise)
            elif param.dim() == 0:  # logit_scale
                param.copy_(torch.tensor(math.log(1 / 0.07)))
            else:  # dense [out, in] and the patch convolution: activations near unit scale
                fan_in = math.prod(param.shape[1:]) if param.dim() > 1 else param.shape[-1]
                param.copy_(noise / math.sqrt(fan_in))
