"""The small set of operations every architecture is written against.

numpy executes them eagerly (the reference); faster engines record the same calls into a graph,
so an architecture is written once and engines cannot drift from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from domain.models import PoolingMode

__all__ = ["Array", "IdArray", "Linear", "Norm", "Ops", "T"]

Array = npt.NDArray[np.float32]
IdArray = npt.NDArray[np.int64]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Linear:
    weight: Array  # [out, in], as checkpoints store it
    bias: Array  # [out]


@dataclass(frozen=True, slots=True)
class Norm:
    weight: Array  # [H]
    bias: Array  # [H]


class Ops(Protocol[T]):
    """T is the engine's tensor: an ndarray for numpy, a graph value for a recorder."""

    def embedding(self, table: Array, ids: T) -> T: ...  # [V,H] x [B,T] -> [B,T,H]
    # [V,H] x [B,T] x [B,T] -> [B,H]: the mean of the real tokens' rows, zero for a row with
    # none (torch's EmbeddingBag, mode "mean"): a lookup and a mean pool, without the [B,T,H]
    # states between them, which a static model has no other use for
    def embedding_bag(self, table: Array, ids: T, mask: T) -> T: ...
    def positions(self, ids: T) -> T: ...  # [B,T] -> [B,T] holding 0..T-1
    # fairseq's make_positions, as RoBERTa numbers tokens: [B,T] x [B,T] -> [B,T] holding
    # padding_idx + 1, + 2, ... over the tokens that are real (mask 1) and not padding_idx,
    # padding_idx on the rest
    def make_positions(self, ids: T, mask: T, padding_idx: int) -> T: ...
    def add(self, a: T, b: T | Array) -> T: ...
    def linear(self, x: T, w: Linear) -> T: ...  # [...,in] -> [...,out]
    def layer_norm(self, x: T, w: Norm, eps: float) -> T: ...
    def gelu_erf(self, x: T) -> T: ...  # exact GELU, 0.5·x·(1+erf(x/√2))
    def quick_gelu(self, x: T) -> T: ...  # CLIP's x·sigmoid(1.702·x)
    def tanh(self, x: T) -> T: ...  # a Dense module's default activation
    def mul(self, a: T, b: T) -> T: ...  # elementwise, same shapes: a gated MLP's gate x input
    def silu(self, x: T) -> T: ...  # x·sigmoid(x), SwiGLU's gate
    def gelu_tanh(self, x: T) -> T: ...  # GELU's tanh approximation (gelu_pytorch_tanh)
    # [...,H] -> [...,H]: x / sqrt(mean(x²) + eps) · weight, over each of `groups` equal slices
    # of the last axis (groups = heads: a per-head q/k norm); weight [H / groups]. Gemma's
    # (1 + weight) scale is the loader's to add.
    def rms_norm(self, x: T, weight: Array, eps: float, groups: int = 1) -> T: ...
    # [B,T,NH·HD] -> same: rotary position embedding at positions 0..T-1, rotate-half form
    # (GPT-NeoX's, the one transformers uses), on the first `dims` of each head (None: all of
    # it), with domain.rotary.rotary_tables's angles. Scores depend on offsets alone, so right
    # padding leaves the real tokens' scores as they are unpadded.
    def rotary(self, x: T, heads: int, base: float, dims: int | None = None) -> T: ...
    # q [B,T,NH·HD], k and v [B,T,KVH·HD] (KVH = kv_heads, NH by default: grouped-query
    # attention shares each key/value head among NH / KVH query heads); mask [B,T] (None: every
    # key is real); causal: no key after its query; window: only keys with |i - j| < window;
    # scale: the scores' factor, 1/sqrt(HD) by default; bias [1,NH,T,T] (offset_bias's), added
    # to the scaled scores before the mask. -> [B,T,NH·HD]
    def attention(  # noqa: PLR0913 - q, k, v, mask and the facts about the layer
        self,
        q: T,
        k: T,
        v: T,
        mask: T | None,
        heads: int,
        *,
        causal: bool = False,
        bias: T | None = None,
        kv_heads: int | None = None,
        window: int | None = None,
        scale: float | None = None,
    ) -> T: ...
    # [B,T] x [2R+1,NH] -> [1,NH,T,T]: per head, for query i and key j, table[clip(j-i, -R, R) + R],
    # a score bias that depends on the keys' offset alone (MPNet's relative positions)
    def offset_bias(self, ids: T, table: Array) -> T: ...
    # [B,C,H,W] -> [B,N,C·size·size]: the non-overlapping size x size patches, row by row, each
    # flattened channel-first as a Conv2d's weight [out, C, size, size] is, so a strided
    # convolution is this and a linear
    def patches(self, pixels: T, size: int) -> T: ...
    def prepend(self, x: T, row: Array) -> T: ...  # [B,N,H] x [H] -> [B,N+1,H]
    def token_at(self, x: T, position: int) -> T: ...  # [B,T,H] -> [B,H]
    # [B,T,H] -> [B,H]: the state at the first position whose id is `token`; with None, at the
    # position of the largest id (CLIP's end-of-text token, in configs that misname it)
    def token_of(self, x: T, ids: T, token: int | None) -> T: ...
    # [B,T,H] -> [B,H]; a token counts where its mask is above 0, weighs as its mask value
    # (mean, max, weighted mean: 0 or 1 there, see drop_prompt)
    def pool(self, x: T, mask: T, mode: PoolingMode) -> T: ...
    # [B,T] -> [B,T]: 1 where mask is 1, 0 on padding and on the tokens it marks as a prompt's
    # (domain.sentence_head.PROMPT_TOKEN); the mask's own dtype
    def drop_prompt(self, mask: T) -> T: ...
    def concat(self, xs: Sequence[T]) -> T: ...  # along the last axis
    def l2_normalize(self, x: T) -> T: ...  # rows to unit length
