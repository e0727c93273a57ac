"""The ops recorded as a MIL program: the domain's forward passes, written once, for Core ML.

`MilOps` implements domain.ops.Ops by adding coremltools MIL operations to the function being
built (`mb.program`) instead of computing. Running an architecture's forward function
(bert_sentence_embedding, clip_text_embedding, ...) with it leaves a program from
`input_ids`/`attention_mask` (int32, or `pixel_values`) to `embeddings`, pooling and
normalisation included, that coremltools converts into an ML program (adapters/engines/
coreml_engine.py). It is the ONNX recorder's counterpart (adapters/engines/onnx_graph.py).

Weights become const ops, float32 as the checkpoint holds them (the engine converts with
FLOAT32 compute precision). Every op is in the iOS16 opset (macOS 13): linear and layer_norm
are MIL's own, exact GELU is `gelu` EXACT and quick_gelu is `gelu` SIGMOID_APPROXIMATION, whose
definition is CLIP's x·sigmoid(1.702·x). Attention is written out (matmul, softmax, matmul);
the fused scaled_dot_product_attention would need iOS18. Grouped kv heads are tiled to the query
heads, and a window joins the padding and causal masks in one score bias.

Rotary embedding reads domain.rotary's cos and sin tables as consts, for the most tokens the
model takes, cut to each batch's length: the numpy engine's angles to the bit, where a device's
own cos and sin of large angles might not be. RMSNorm is reduce_mean and rsqrt (MIL has no
RMSNorm in iOS16), GELU's tanh form MIL's gelu TANH_APPROXIMATION.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from domain.models import PoolingMode
from domain.ops import Array, Linear, Norm, Ops
from domain.rotary import rotary_tables

# coremltools' import logs, as warnings, each macOS-only runtime piece it cannot load on Linux
# ("Failed to load _MLModelProxy") and each optional framework whose version it has not tested.
_coremltools_log = logging.getLogger("coremltools")
_level = _coremltools_log.level
_coremltools_log.setLevel(logging.ERROR)
try:
    import coremltools as ct  # type: ignore[import-untyped]
    from coremltools.converters.mil import (  # type: ignore[import-untyped]
        Builder as mb,  # noqa: N813 - the name coremltools' documentation gives it
    )
    from coremltools.converters.mil.mil import (  # type: ignore[import-untyped]
        Program,
        Var,
        get_new_symbol,
        types,
    )
finally:
    _coremltools_log.setLevel(_level)

__all__ = [
    "MIL_BUILDER_VERSION",
    "OPSET",
    "OUTPUT",
    "ImageForward",
    "MilOps",
    "TextForward",
    "ct",
    "image_program",
    "text_program",
]

# `ct` is coremltools itself, exported so that the engine need not import it first, noisily.

# Bump when the recorder's output changes: cached packages from another version are not reused.
# 2: the last token found where the mask is above 0; 3: rotary, RMSNorm, gates, grouped-query
# and windowed attention
MIL_BUILDER_VERSION = 3
OPSET = ct.target.iOS16  # gather with batch_dims; every op here is in it (macOS 13, iOS 16)
OUTPUT = "embeddings"  # the programs' one output, [batch, D]: the name the ONNX graphs use too
_NEG = float(np.finfo(np.float32).min)  # what transformers (and the numpy engine) use for masks


class MilOps:
    """domain.ops.Ops that adds MIL ops; use inside one `mb.program` body, one instance each."""

    def __init__(self, *, max_tokens: int | None = None) -> None:
        self._derived: dict[tuple[object, ...], Var] = {}
        self._max_tokens = max_tokens  # the longest row the program takes: rotary's table rows

    def embedding(self, table: Array, ids: Var) -> Var:
        return mb.gather(x=table, indices=ids, axis=0)  # [V,H] x [B,T] -> [B,T,H]

    def embedding_bag(self, table: Array, ids: Var, mask: Var) -> Var:
        return self.pool(self.embedding(table, ids), mask, PoolingMode.MEAN)  # MIL has no bag

    def positions(self, ids: Var) -> Var:
        arange = self._arange(ids)  # [T]
        return mb.add(x=mb.mul(x=ids, y=np.int32(0)), y=arange)  # [B,T], 0..T-1 on every row

    def make_positions(self, ids: Var, mask: Var, padding_idx: int) -> Var:
        real = mb.logical_and(
            x=mb.greater(x=mask, y=np.int32(0)), y=mb.not_equal(x=ids, y=np.int32(padding_idx))
        )
        counted = mb.cast(x=real, dtype="int32")  # [B,T]: 1 on the tokens that get a number
        numbers = mb.mul(x=mb.cumsum(x=counted, axis=1), y=counted)  # 1, 2, ... there, else 0
        return mb.add(x=numbers, y=np.int32(padding_idx))

    def add(self, a: Var, b: Var | Array) -> Var:
        return mb.add(x=a, y=b)

    def linear(self, x: Var, w: Linear) -> Var:
        return mb.linear(x=x, weight=w.weight, bias=w.bias)  # MIL's weight is [out,in] too

    def layer_norm(self, x: Var, w: Norm, eps: float) -> Var:
        return mb.layer_norm(x=x, axes=[-1], gamma=w.weight, beta=w.bias, epsilon=np.float32(eps))

    def gelu_erf(self, x: Var) -> Var:
        return mb.gelu(x=x, mode="EXACT")

    def quick_gelu(self, x: Var) -> Var:
        return mb.gelu(x=x, mode="SIGMOID_APPROXIMATION")  # defined as x·sigmoid(1.702·x)

    def tanh(self, x: Var) -> Var:
        return mb.tanh(x=x)

    def mul(self, a: Var, b: Var) -> Var:
        return mb.mul(x=a, y=b)

    def silu(self, x: Var) -> Var:
        # not MIL's silu, which coremltools cannot evaluate, so the recording could not be checked
        return mb.mul(x=x, y=mb.sigmoid(x=x))

    def gelu_tanh(self, x: Var) -> Var:
        return mb.gelu(x=x, mode="TANH_APPROXIMATION")

    def rms_norm(self, x: Var, weight: Array, eps: float, groups: int = 1) -> Var:
        parts = x
        if groups > 1:  # [...,H] -> [...,G,H/G]: each group is normalised on its own
            outer = mb.slice_by_size(x=mb.shape(x=x), begin=[0], size=[x.rank - 1])
            shape = mb.concat(values=[outer, np.array([groups, -1], dtype=np.int32)], axis=0)
            parts = mb.reshape(x=x, shape=shape)
        mean = mb.reduce_mean(x=mb.mul(x=parts, y=parts), axes=[-1], keep_dims=True)
        scaled = mb.mul(x=parts, y=mb.rsqrt(x=mean, epsilon=np.float32(eps)))  # 1/√(mean+eps)
        normed = mb.mul(x=scaled, y=weight)
        return normed if groups == 1 else mb.reshape(x=normed, shape=mb.shape(x=x))

    def rotary(self, x: Var, heads: int, base: float, dims: int | None = None) -> Var:
        width = x.shape[-1]
        hd = width // heads
        d = hd if dims is None else dims
        cos, sin = self._rotary_tables(x, base, d)  # [T,1,d/2]: broadcast over B and heads
        split = mb.reshape(x=x, shape=self._heads_shape(x, heads, hd))  # [B,T,NH,HD]
        first, second = self._last_axis(split, 0, d // 2), self._last_axis(split, d // 2, d)
        turned = [
            mb.sub(x=mb.mul(x=first, y=cos), y=mb.mul(x=second, y=sin)),
            mb.add(x=mb.mul(x=second, y=cos), y=mb.mul(x=first, y=sin)),
        ]
        if d < hd:  # the rest of each head passes through
            turned.append(self._last_axis(split, d, hd))
        return mb.reshape(x=mb.concat(values=turned, axis=-1), shape=mb.shape(x=x))

    def attention(  # noqa: PLR0913 - the Ops signature
        self,
        q: Var,
        k: Var,
        v: Var,
        mask: Var | None,
        heads: int,
        *,
        causal: bool = False,
        bias: Var | None = None,
        kv_heads: int | None = None,
        window: int | None = None,
        scale: float | None = None,
    ) -> Var:
        width = q.shape[-1]
        hd = width // heads
        kvh = heads if kv_heads is None else kv_heads
        to_heads = self._heads_shape(q, heads, hd)  # [B,T,NH,HD]

        def split(x: Var, n: int) -> Var:  # [B,T,n·HD] -> [B,NH,T,HD]
            if n == heads:
                return mb.transpose(x=mb.reshape(x=x, shape=to_heads), perm=[0, 2, 1, 3])
            # grouped-query attention: kv head h serves query heads h·G .. h·G+G-1, G = NH/n
            grouped = mb.expand_dims(x=mb.reshape(x=x, shape=self._heads_shape(x, n, hd)), axes=[3])
            wide = mb.tile(x=grouped, reps=[1, 1, 1, heads // n, 1])  # [B,T,n,G,HD]
            return mb.transpose(x=mb.reshape(x=wide, shape=to_heads), perm=[0, 2, 1, 3])

        scores = mb.matmul(x=split(q, heads), y=split(k, kvh), transpose_y=True)  # [B,NH,T,T]
        factor = 1 / math.sqrt(hd) if scale is None else scale
        scores = mb.mul(x=scores, y=np.float32(factor))
        if bias is not None:  # [1,NH,T,T], before the mask as the numpy engine adds it
            scores = mb.add(x=scores, y=bias)
        masked = self._score_bias(q, mask, causal=causal, window=window)
        if masked is not None:
            scores = mb.add(x=scores, y=masked)
        probs = mb.softmax(x=scores, axis=-1)
        ctx = mb.transpose(x=mb.matmul(x=probs, y=split(v, kvh)), perm=[0, 2, 1, 3])
        return mb.reshape(x=ctx, shape=mb.shape(x=q))  # [B,T,NH·HD]

    def patches(self, pixels: Var, size: int) -> Var:
        # [B,C,S,S] -> [B·C·g,p,g,p] -> [B·C·g,g,p,p] = [B,C,N,p·p] -> [B,N,C,p·p] -> [B,N,C·p·p],
        # g = S/p: the rank-6 grid of the reference, in steps of rank 4 at most
        _, c, s, _ = pixels.shape
        g, p = s // size, size
        rows = mb.transpose(x=mb.reshape(x=pixels, shape=[-1, p, g, p]), perm=[0, 2, 1, 3])
        grid = mb.reshape(x=rows, shape=[-1, c, g * g, p * p])
        tiles = mb.transpose(x=grid, perm=[0, 2, 1, 3])
        return mb.reshape(x=tiles, shape=[-1, g * g, c * p * p])

    def prepend(self, x: Var, row: Array) -> Var:
        batch = mb.slice_by_size(x=mb.shape(x=x), begin=[0], size=[1])
        reps = mb.concat(values=[batch, np.array([1, 1], dtype=np.int32)], axis=0)
        first = mb.tile(x=row.reshape(1, 1, -1), reps=reps)  # [B,1,H]
        return mb.concat(values=[first, x], axis=1)

    def token_at(self, x: Var, position: int) -> Var:
        return mb.gather(x=x, indices=np.int32(position), axis=1)  # [B,T,H] -> [B,H]

    def token_of(self, x: Var, ids: Var, token: int | None) -> Var:
        target = (
            mb.reduce_max(x=ids, axes=[1], keep_dims=True) if token is None else np.int32(token)
        )
        return self._gather_rows(x, self._first(mb.equal(x=ids, y=target)))

    def offset_bias(self, ids: Var, table: Array) -> Var:
        def make() -> Var:
            reach = table.shape[0] // 2
            arange = self._arange(ids)  # [T]
            keys = mb.expand_dims(x=arange, axes=[0])  # [1,T]
            queries = mb.expand_dims(x=arange, axes=[1])  # [T,1]
            offsets = mb.sub(x=keys, y=queries)  # [T,T]: j - i
            clipped = mb.minimum(x=mb.maximum(x=offsets, y=np.int32(-reach)), y=np.int32(reach))
            picked = mb.gather(x=table, indices=mb.add(x=clipped, y=np.int32(reach)), axis=0)
            return mb.expand_dims(x=mb.transpose(x=picked, perm=[2, 0, 1]), axes=[0])

        return self._derive(("offset_bias", id(ids), id(table)), make)

    def pool(self, x: Var, mask: Var, mode: PoolingMode) -> Var:
        match mode:
            case PoolingMode.CLS:
                return self.token_at(x, 0)
            case PoolingMode.MAX:
                real = self._derive(("real3", id(mask)), lambda: self._real3(mask))
                masked = mb.select(cond=real, a=x, b=np.float32(-np.inf))  # pads never win
                return mb.reduce_max(x=masked, axes=[1], keep_dims=False)
            case PoolingMode.MEAN:
                return self._mean(x, self._float_mask(mask), np.float32(1e-9), sqrt=False)
            case PoolingMode.MEAN_SQRT_LEN:
                return self._mean(x, self._float_mask(mask), np.float32(1e-9), sqrt=True)
            case PoolingMode.WEIGHTED_MEAN:
                ranks = mb.cast(x=mb.add(x=self._arange(mask), y=np.int32(1)), dtype="fp32")
                weights = mb.mul(x=self._float_mask(mask), y=mb.expand_dims(x=ranks, axes=[0, 2]))
                return self._mean(x, weights, np.float32(1e-9), sqrt=False)  # i-th weighs i
            case PoolingMode.LAST_TOKEN | PoolingMode.EOS:
                real = mb.cast(x=mb.greater(x=mask, y=np.int32(0)), dtype="int32")
                length = mb.reduce_sum(x=real, axes=[1], keep_dims=False)  # [B]
                return self._gather_rows(x, mb.sub(x=length, y=np.int32(1)))  # right-padded

    def drop_prompt(self, mask: Var) -> Var:
        return mb.cast(x=mb.equal(x=mask, y=np.int32(1)), dtype="int32")

    def concat(self, xs: Sequence[Var]) -> Var:
        return mb.concat(values=list(xs), axis=-1)

    def l2_normalize(self, x: Var) -> Var:
        norm = mb.reduce_l2_norm(x=x, axes=[-1], keep_dims=True)
        return mb.real_div(x=x, y=mb.maximum(x=norm, y=np.float32(1e-12)))

    # --- building blocks -------------------------------------------------------------------------

    def _derive(self, key: tuple[object, ...], make: Callable[[], Var]) -> Var:
        """A value that depends only on the inputs (mask forms, score biases): recorded once."""
        if key not in self._derived:
            self._derived[key] = make()
        return self._derived[key]

    def _arange(self, ids: Var) -> Var:  # [B,T] -> [T] int32 holding 0..T-1
        def make() -> Var:
            length = mb.gather(x=mb.shape(x=ids), indices=np.int32(1), axis=0)
            return mb.range_1d(start=np.int32(0), end=length, step=np.int32(1))

        return self._derive(("arange", id(ids)), make)

    def _real3(self, mask: Var) -> Var:  # [B,T] -> [B,T,1] bool
        return mb.expand_dims(x=mb.greater(x=mask, y=np.int32(0)), axes=[2])

    def _float_mask(self, mask: Var) -> Var:  # [B,T] -> [B,T,1] float
        return self._derive(
            ("float3", id(mask)),
            lambda: mb.expand_dims(x=mb.cast(x=mask, dtype="fp32"), axes=[2]),
        )

    def _mean(self, x: Var, weights: Var, floor: np.float32, *, sqrt: bool) -> Var:
        """Σ weights·x / Σ weights over the tokens, with sentence-transformers' 1e-9 floor."""
        total = mb.reduce_sum(x=mb.mul(x=x, y=weights), axes=[1], keep_dims=False)  # [B,H]
        count = mb.maximum(x=mb.reduce_sum(x=weights, axes=[1], keep_dims=False), y=floor)
        return mb.real_div(x=total, y=mb.sqrt(x=count) if sqrt else count)  # count [B,1]

    def _first(self, hits: Var) -> Var:
        """[B,T] bool -> [B]: the first position that hits, 0 where none does (numpy's argmax).

        reduce_argmax leaves ties unspecified, so the first hit is found as the largest of
        hit·(T - position), which no two positions share.
        """
        arange = self._arange(hits)
        length = mb.gather(x=mb.shape(x=hits), indices=np.int32(1), axis=0)  # T
        countdown = mb.sub(x=length, y=arange)  # [T]: T, T-1, ..., 1
        score = mb.reduce_max(
            x=mb.mul(x=mb.cast(x=hits, dtype="int32"), y=countdown), axes=[1], keep_dims=False
        )  # [B]: T - first, or 0 without a hit
        return mb.mod(x=mb.sub(x=length, y=score), y=length)

    def _gather_rows(self, x: Var, where: Var) -> Var:  # [B,T,H] x [B] -> [B,H]: x[b, where[b]]
        picked = mb.gather(x=x, indices=mb.expand_dims(x=where, axes=[1]), axis=1, batch_dims=1)
        return mb.squeeze(x=picked, axes=[1])

    def _heads_shape(self, x: Var, heads: int, hd: int) -> Var:  # [B,T,·] -> [B,T,NH,HD]
        b_t = mb.slice_by_size(x=mb.shape(x=x), begin=[0], size=[2])
        return mb.concat(values=[b_t, np.array([heads, hd], dtype=np.int32)], axis=0)

    def _last_axis(self, x: Var, start: int, end: int) -> Var:  # x[..., start:end], rank 4
        return mb.slice_by_index(
            x=x,
            begin=[0, 0, 0, start],
            end=[0, 0, 0, end],
            begin_mask=[True, True, True, False],
            end_mask=[True, True, True, False],
        )

    def _rotary_tables(self, x: Var, base: float, dims: int) -> tuple[Var, Var]:
        """cos and sin [T,1,dims/2] at positions 0..T-1: domain.rotary's tables, the numpy
        engine's to the bit, as consts for max_tokens positions cut to the batch's T (or for T
        itself, where the program's T is fixed)."""
        fixed = x.shape[1] if isinstance(x.shape[1], int) else None
        length = self._max_tokens or fixed
        if length is None:
            msg = "rotary needs the most tokens the program will see (text_program's max_tokens)"
            raise ValueError(msg)
        cos, sin = rotary_tables(base, dims, length)  # [P, dims/2]

        def cut(table: Array) -> Var:
            return mb.gather(x=table[:, None, :], indices=self._arange(x), axis=0)

        key = ("rotary", repr(base), dims)
        cos_t = self._derive((*key, "cos"), lambda: cut(cos))
        sin_t = self._derive((*key, "sin"), lambda: cut(sin))
        return cos_t, sin_t

    def _score_bias(
        self, q: Var, mask: Var | None, *, causal: bool, window: int | None
    ) -> Var | None:
        """What attention scores get added: 0 where a key may be read, float32's min elsewhere."""
        if mask is None and not causal and window is None:
            return None
        key = ("bias", id(mask), causal, window)
        return self._derive(
            key, lambda: self._record_score_bias(q, mask, causal=causal, window=window)
        )

    def _record_score_bias(
        self, q: Var, mask: Var | None, *, causal: bool, window: int | None
    ) -> Var:
        kept: list[Var] = []  # which keys each query may read, all of them to hold
        if mask is not None:
            kept.append(mb.expand_dims(x=mb.greater(x=mask, y=np.int32(0)), axes=[1, 2]))
        if causal or window is not None:
            arange = self._arange(q if mask is None else mask)  # [T]
            keys = mb.expand_dims(x=arange, axes=[0])  # [1,T]
            queries = mb.expand_dims(x=arange, axes=[1])  # [T,1]
            offsets = mb.sub(x=keys, y=queries)  # [T,T]: j - i
            if causal:  # no key after its query
                kept.append(mb.less_equal(x=offsets, y=np.int32(0)))
            if window is not None:  # |j - i| < window, as two comparisons: no abs for ints
                kept.append(mb.greater(x=offsets, y=np.int32(-window)))
                kept.append(mb.less(x=offsets, y=np.int32(window)))
        keep = functools.reduce(lambda a, b: mb.logical_and(x=a, y=b), kept)  # [B|1,1,1|T,T]
        # select's result type ignores cond's shape, so the bias is computed, not selected
        blocked = mb.cast(x=mb.logical_not(x=keep), dtype="fp32")  # 1 where a key is hidden
        return mb.mul(x=blocked, y=np.float32(_NEG))


# --- whole programs -------------------------------------------------------------------------------

TextForward = Callable[[Ops[Any], Any, Any], Any]
ImageForward = Callable[[Ops[Any], Any], Any]


def text_program(forward: TextForward, *, max_tokens: int | None = None) -> Program:
    """`forward` recorded from input_ids and attention_mask, int32 [batch, tokens] each, for
    rows of at most `max_tokens` (the rotary tables' length; needed only where rotary is)."""
    batch, tokens = get_new_symbol(), get_new_symbol()
    ids = mb.TensorSpec(shape=(batch, tokens), dtype=types.int32)
    mask = mb.TensorSpec(shape=(batch, tokens), dtype=types.int32)

    @mb.program(input_specs=[ids, mask], opset_version=OPSET)  # type: ignore[untyped-decorator]
    def program(input_ids: Var, attention_mask: Var) -> Var:
        ops = MilOps(max_tokens=max_tokens)
        return mb.identity(x=forward(ops, input_ids, attention_mask), name=OUTPUT)

    return program


def image_program(forward: ImageForward, channels: int, size: int) -> Program:
    """`forward` recorded from pixel_values, float32 [batch, channels, size, size]."""
    pixels = mb.TensorSpec(shape=(get_new_symbol(), channels, size, size), dtype=types.fp32)

    @mb.program(input_specs=[pixels], opset_version=OPSET)  # type: ignore[untyped-decorator]
    def program(pixel_values: Var) -> Var:
        return mb.identity(x=forward(MilOps(), pixel_values), name=OUTPUT)

    return program
