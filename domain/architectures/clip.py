"""CLIP (Radford et al. 2021): a text tower and a vision tower projected into one space.

Both towers are pre-LN transformers (LayerNorm before attention and before the MLP, residual
around each). The text tower reads tokens under a causal mask and answers the final state at
the end-of-text token; the vision tower reads an image as patches behind a class token and
answers the class token's state. Each tower ends in a bias-free projection. The checkpoint keys
are transformers' CLIPModel's (`text_model.*`, `vision_model.*`, `text_projection`,
`visual_projection`); a checkpoint without `vision_model.*` serves text only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from domain.architectures.checkpoint import CheckpointTensors
from domain.ops import Array, Linear, Norm, Ops, T

__all__ = [
    "ClipConfig",
    "ClipModel",
    "ClipTowerConfig",
    "clip_image_embedding",
    "clip_text_embedding",
    "load_clip_weights",
]

_ACTIVATIONS = frozenset({"quick_gelu", "gelu"})
# transformers' CLIPTextConfig / CLIPVisionConfig defaults, for keys a config.json leaves out
_TEXT_DEFAULTS: Mapping[str, Any] = {
    "vocab_size": 49408,
    "hidden_size": 512,
    "intermediate_size": 2048,
    "num_hidden_layers": 12,
    "num_attention_heads": 8,
    "max_position_embeddings": 77,
    "eos_token_id": 49407,
}
_VISION_DEFAULTS: Mapping[str, Any] = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "num_channels": 3,
    "image_size": 224,
    "patch_size": 32,
}


@dataclass(frozen=True, slots=True)
class ClipTowerConfig:
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    hidden_act: str
    layer_norm_eps: float
    causal: bool  # the text tower: no token attends to a later one

    @classmethod
    def from_json(
        cls, raw: Mapping[str, Any], defaults: Mapping[str, Any], *, causal: bool
    ) -> ClipTowerConfig:
        def value(key: str) -> Any:
            return raw.get(key, defaults.get(key))

        act = value("hidden_act") or "quick_gelu"
        if act not in _ACTIVATIONS:
            msg = f"hidden_act {act!r} is not supported (quick_gelu or exact gelu)"
            raise ValueError(msg)
        cfg = cls(
            hidden_size=int(value("hidden_size")),
            intermediate_size=int(value("intermediate_size")),
            num_hidden_layers=int(value("num_hidden_layers")),
            num_attention_heads=int(value("num_attention_heads")),
            hidden_act=str(act),
            layer_norm_eps=float(raw.get("layer_norm_eps", 1e-5)),
            causal=causal,
        )
        if cfg.hidden_size % cfg.num_attention_heads:
            msg = "hidden_size must be a multiple of num_attention_heads"
            raise ValueError(msg)
        return cfg


@dataclass(frozen=True, slots=True)
class ClipConfig:
    text: ClipTowerConfig
    vision: ClipTowerConfig
    vocab_size: int
    max_tokens: int  # the text tower's position table
    # where the text tower's answer sits: the first position holding this id; None, the
    # largest id (configs from before transformers corrected eos_token_id say 2, and
    # transformers keeps the argmax for them)
    eos_token_id: int | None
    num_channels: int
    image_size: int
    patch_size: int
    projection_dim: int

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ClipConfig:
        if raw.get("model_type", "clip") != "clip":
            msg = f"config.json's model_type {raw.get('model_type')!r} is not CLIP"
            raise ValueError(msg)
        text = {**_TEXT_DEFAULTS, **(raw.get("text_config") or {})}
        vision = {**_VISION_DEFAULTS, **(raw.get("vision_config") or {})}
        eos = int(text["eos_token_id"])
        cfg = cls(
            text=ClipTowerConfig.from_json(text, _TEXT_DEFAULTS, causal=True),
            vision=ClipTowerConfig.from_json(vision, _VISION_DEFAULTS, causal=False),
            vocab_size=int(text["vocab_size"]),
            max_tokens=int(text["max_position_embeddings"]),
            eos_token_id=None if eos == 2 else eos,  # noqa: PLR2004 - the historical wrong id
            num_channels=int(vision["num_channels"]),
            image_size=int(vision["image_size"]),
            patch_size=int(vision["patch_size"]),
            projection_dim=int(raw.get("projection_dim", 512)),
        )
        if cfg.image_size % cfg.patch_size:
            msg = "image_size must be a multiple of patch_size"
            raise ValueError(msg)
        return cfg

    @property
    def image_tokens(self) -> int:
        """Positions the vision tower reads: one per patch, and the class token."""
        return (self.image_size // self.patch_size) ** 2 + 1


@dataclass(frozen=True, slots=True)
class ClipLayer:
    norm1: Norm
    query: Linear
    key: Linear
    value: Linear
    out: Linear
    norm2: Norm
    fc1: Linear
    fc2: Linear


@dataclass(frozen=True, slots=True)
class ClipTextWeights:
    token_embedding: Array  # [V,H]
    position_embedding: Array  # [P,H]
    layers: tuple[ClipLayer, ...]
    final_norm: Norm
    projection: Linear  # [D,H], no bias


@dataclass(frozen=True, slots=True)
class ClipVisionWeights:
    patch_embedding: Linear  # the Conv2d's [H, C, p, p] as [H, C·p·p], no bias
    class_embedding: Array  # [H]
    position_embedding: Array  # [N+1,H]
    pre_norm: Norm
    layers: tuple[ClipLayer, ...]
    post_norm: Norm
    projection: Linear  # [D,H], no bias


@dataclass(frozen=True, slots=True)
class ClipModel:
    config: ClipConfig
    text: ClipTextWeights
    vision: ClipVisionWeights | None  # None: the checkpoint carries the text tower alone

    @property
    def dimensions(self) -> int:
        return self.config.projection_dim  # both towers project into one space

    @property
    def max_tokens(self) -> int:
        return self.config.max_tokens


# --- forward pass, in order -------------------------------------------------------------------


def _activation(ops: Ops[T], x: T, name: str) -> T:
    return ops.quick_gelu(x) if name == "quick_gelu" else ops.gelu_erf(x)


def clip_layer(ops: Ops[T], x: T, mask: T | None, w: ClipLayer, cfg: ClipTowerConfig) -> T:
    h = ops.layer_norm(x, w.norm1, cfg.layer_norm_eps)  # pre-LN: norm, attend, add
    q, k, v = ops.linear(h, w.query), ops.linear(h, w.key), ops.linear(h, w.value)
    a = ops.attention(q, k, v, mask, cfg.num_attention_heads, causal=cfg.causal)
    x = ops.add(x, ops.linear(a, w.out))
    h = ops.layer_norm(x, w.norm2, cfg.layer_norm_eps)
    h = _activation(ops, ops.linear(h, w.fc1), cfg.hidden_act)  # [B,T,H] -> [B,T,I]
    return ops.add(x, ops.linear(h, w.fc2))


def clip_text_embedding(ops: Ops[T], ids: T, mask: T, model: ClipModel) -> T:
    cfg, w = model.config, model.text
    x = ops.embedding(w.token_embedding, ids)  # [B,T] -> [B,T,H]
    x = ops.add(x, ops.embedding(w.position_embedding, ops.positions(ids)))
    for layer in w.layers:
        x = clip_layer(ops, x, mask, layer, cfg.text)
    x = ops.layer_norm(x, w.final_norm, cfg.text.layer_norm_eps)
    x = ops.token_of(x, ids, cfg.eos_token_id)  # [B,T,H] -> [B,H]: the end-of-text state
    return ops.linear(x, w.projection)  # [B,D]


def clip_image_embedding(ops: Ops[T], pixels: T, model: ClipModel) -> T:
    """[B,C,S,S] pixels, preprocessed as the model's image processor says, to [B,D]."""
    cfg, w = model.config, model.vision
    if w is None:
        msg = "this CLIP checkpoint has no vision tower"
        raise ValueError(msg)
    x = ops.linear(ops.patches(pixels, cfg.patch_size), w.patch_embedding)  # [B,N,H]
    x = ops.prepend(x, w.class_embedding)  # [B,N+1,H]
    x = ops.add(x, w.position_embedding)
    x = ops.layer_norm(x, w.pre_norm, cfg.vision.layer_norm_eps)
    for layer in w.layers:
        x = clip_layer(ops, x, None, layer, cfg.vision)  # every patch is real
    x = ops.layer_norm(ops.token_at(x, 0), w.post_norm, cfg.vision.layer_norm_eps)
    return ops.linear(x, w.projection)  # [B,D]


# --- loading ------------------------------------------------------------------------------------


def _layers(t: CheckpointTensors, prefix: str, cfg: ClipTowerConfig) -> tuple[ClipLayer, ...]:
    h, i = cfg.hidden_size, cfg.intermediate_size
    layers = []
    for n in range(cfg.num_hidden_layers):
        p = f"{prefix}.encoder.layers.{n}"
        layers.append(
            ClipLayer(
                norm1=t.norm(f"{p}.layer_norm1", h),
                query=t.linear(f"{p}.self_attn.q_proj", h, h),
                key=t.linear(f"{p}.self_attn.k_proj", h, h),
                value=t.linear(f"{p}.self_attn.v_proj", h, h),
                out=t.linear(f"{p}.self_attn.out_proj", h, h),
                norm2=t.norm(f"{p}.layer_norm2", h),
                fc1=t.linear(f"{p}.mlp.fc1", i, h),
                fc2=t.linear(f"{p}.mlp.fc2", h, i),
            )
        )
    return tuple(layers)


def _vision(t: CheckpointTensors, cfg: ClipConfig) -> ClipVisionWeights:
    h, c, p = cfg.vision.hidden_size, cfg.num_channels, cfg.patch_size
    conv = t.get("vision_model.embeddings.patch_embedding.weight", (h, c, p, p))
    return ClipVisionWeights(
        patch_embedding=Linear(
            np.ascontiguousarray(conv.reshape(h, c * p * p)), np.zeros(h, dtype=np.float32)
        ),
        class_embedding=t.get("vision_model.embeddings.class_embedding", (h,)),
        position_embedding=t.get(
            "vision_model.embeddings.position_embedding.weight", (cfg.image_tokens, h)
        ),
        pre_norm=t.norm("vision_model.pre_layrnorm", h),  # sic: transformers' key
        layers=_layers(t, "vision_model", cfg.vision),
        post_norm=t.norm("vision_model.post_layernorm", h),
        projection=t.projection("visual_projection.weight", cfg.projection_dim, h),
    )


def load_clip_weights(raw: Mapping[str, np.ndarray[Any, Any]], cfg: ClipConfig) -> ClipModel:
    t, h = CheckpointTensors(raw), cfg.text.hidden_size
    text = ClipTextWeights(
        token_embedding=t.get("text_model.embeddings.token_embedding.weight", (cfg.vocab_size, h)),
        position_embedding=t.get(
            "text_model.embeddings.position_embedding.weight", (cfg.max_tokens, h)
        ),
        layers=_layers(t, "text_model", cfg.text),
        final_norm=t.norm("text_model.final_layer_norm", h),
        projection=t.projection("text_projection.weight", cfg.projection_dim, h),
    )
    vision = _vision(t, cfg) if t.has("vision_model.") else None
    return ClipModel(cfg, text, vision)
