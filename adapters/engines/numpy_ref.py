"""The reference engine: the ops executed eagerly in float32 numpy.

numpy has no erf; scipy.special.erf is exact to float precision, which keeps this engine the
yardstick the faster engines are measured against (docs/adr/0002-exact-gelu.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from safetensors import SafetensorError

from adapters.families import FAMILY_READERS
from adapters.weights.images import ClipImageProcessor, read_clip_image_processor
from domain.errors import InvalidInput, ModelUnavailable
from domain.families import FAMILIES, ImageForward
from domain.models import ModelSpec, PoolingMode
from domain.ops import Array, IdArray, Linear, Norm
from domain.ports import Encoder, ImageEncoder
from domain.rotary import rotary_tables

__all__ = ["NumpyEngine", "NumpyOps"]

# Ops[T] takes ids, masks and states as one tensor type: for numpy, any ndarray.
Tensor = npt.NDArray[Any]

_NEG = np.float32(np.finfo(np.float32).min)  # what transformers adds for masked-out keys


class NumpyOps:
    """domain.ops.Ops over ndarrays; every result is float32."""

    def embedding(self, table: Array, ids: Tensor) -> Tensor:
        return table[ids]

    def embedding_bag(self, table: Array, ids: Tensor, mask: Tensor) -> Tensor:
        # A sparse [B,V] matrix of ones at each row's real ids, times the table: one gather
        # and sum over the concatenated ids at C speed, with no [B,T,H] copy of the rows.
        # np.add.reduceat over the gathered rows would be the same sums, but it adds along the
        # strided axis (~15x slower here); each sum still runs in token order, in float32.
        from scipy.sparse import csr_matrix  # ~0.5 s at import: only static models need it

        real = mask > 0  # [B,T]
        lengths = real.sum(axis=1)  # [B]
        starts = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        flat = ids[real]  # [N], the rows' real ids one after another
        bags = csr_matrix(
            (np.ones(len(flat), dtype=np.float32), flat, starts), shape=(len(lengths), len(table))
        )
        summed = np.asarray(bags @ table, dtype=np.float32)  # [B,H]
        return summed / np.maximum(lengths, 1).astype(np.float32)[:, None]  # no token: zero

    def positions(self, ids: Tensor) -> Tensor:
        return np.broadcast_to(np.arange(ids.shape[1], dtype=np.int64), ids.shape)

    def make_positions(self, ids: Tensor, mask: Tensor, padding_idx: int) -> Tensor:
        counted = (mask > 0) & (ids != padding_idx)  # [B,T]
        return np.where(counted, np.cumsum(counted, axis=1), 0) + padding_idx

    def add(self, a: Tensor, b: Tensor) -> Tensor:
        return a + b

    def linear(self, x: Tensor, w: Linear) -> Tensor:
        flat = x.reshape(-1, x.shape[-1])  # one GEMM for the whole batch
        return (flat @ w.weight.T + w.bias).reshape(*x.shape[:-1], -1)

    def layer_norm(self, x: Tensor, w: Norm, eps: float) -> Tensor:
        mean = x.mean(axis=-1, keepdims=True)
        var = np.square(x - mean).mean(axis=-1, keepdims=True)
        return (x - mean) / np.sqrt(var + np.float32(eps)) * w.weight + w.bias

    def gelu_erf(self, x: Tensor) -> Tensor:
        from scipy.special import erf  # ~0.2 s at import: only GELU needs it

        return np.float32(0.5) * x * (np.float32(1.0) + erf(x * np.float32(1 / np.sqrt(2))))

    def quick_gelu(self, x: Tensor) -> Tensor:
        from scipy.special import expit

        return x * expit(np.float32(1.702) * x)  # expit: no overflow warning far below zero

    def tanh(self, x: Tensor) -> Tensor:
        return np.tanh(x)

    def mul(self, a: Tensor, b: Tensor) -> Tensor:
        return a * b

    def silu(self, x: Tensor) -> Tensor:
        from scipy.special import expit

        return x * expit(x)

    def gelu_tanh(self, x: Tensor) -> Tensor:
        inner = np.float32(np.sqrt(2 / np.pi)) * (x + np.float32(0.044715) * x * x * x)
        return np.float32(0.5) * x * (np.float32(1.0) + np.tanh(inner))

    def rms_norm(self, x: Tensor, weight: Array, eps: float, groups: int = 1) -> Tensor:
        parts = x.reshape(*x.shape[:-1], groups, x.shape[-1] // groups)
        scale = 1 / np.sqrt(np.square(parts).mean(axis=-1, keepdims=True) + np.float32(eps))
        return (parts * scale * weight).reshape(x.shape)

    def rotary(self, x: Tensor, heads: int, base: float, dims: int | None = None) -> Tensor:
        b, t, width = x.shape
        hd = width // heads
        d = hd if dims is None else dims
        cos, sin = rotary_tables(base, d, t)  # [T, d/2]
        cos, sin = cos[None, :, None, :], sin[None, :, None, :]
        split = x.reshape(b, t, heads, hd)
        first, second = split[..., : d // 2], split[..., d // 2 : d]
        turned = np.concatenate(
            [first * cos - second * sin, second * cos + first * sin, split[..., d:]], axis=-1
        )
        return turned.reshape(b, t, width)

    def attention(  # noqa: PLR0913 - the Ops signature
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        mask: Tensor | None,
        heads: int,
        *,
        causal: bool = False,
        bias: Tensor | None = None,
        kv_heads: int | None = None,
        window: int | None = None,
        scale: float | None = None,
    ) -> Tensor:
        b, t, width = q.shape
        hd = width // heads
        kvh = heads if kv_heads is None else kv_heads

        def split(x: Tensor, n: int) -> Tensor:  # [B,T,n·HD] -> [B,NH,T,HD], contiguous for BLAS
            parts = x.reshape(b, t, n, hd).transpose(0, 2, 1, 3)
            return np.ascontiguousarray(np.repeat(parts, heads // n, axis=1))  # query heads' kv

        scores = split(q, heads) @ split(k, kvh).transpose(0, 1, 3, 2)  # [B,NH,T,T]
        scores *= np.float32(1 / np.sqrt(hd) if scale is None else scale)
        if bias is not None:
            scores += bias  # before the mask, as MPNet adds it
        if mask is not None:
            scores += np.where(mask > 0, np.float32(0), _NEG)[:, None, None, :]  # pads: no weight
        arange = np.arange(t)
        offsets = arange[None, :] - arange[:, None]  # [T,T], key minus query
        if causal:
            scores[:, :, offsets > 0] = _NEG  # keys after their query
        if window is not None:
            scores[:, :, np.abs(offsets) >= window] = _NEG
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        return (scores @ split(v, kvh)).transpose(0, 2, 1, 3).reshape(b, t, width)

    def offset_bias(self, ids: Tensor, table: Array) -> Tensor:
        reach, t = table.shape[0] // 2, ids.shape[1]
        arange = np.arange(t)
        offsets = np.clip(arange[None, :] - arange[:, None], -reach, reach) + reach  # [T,T]
        return np.ascontiguousarray(table[offsets].transpose(2, 0, 1))[None]  # [1,NH,T,T]

    def pool(self, x: Tensor, mask: Tensor, mode: PoolingMode) -> Tensor:
        m = mask[:, :, None].astype(np.float32)  # [B,T,1]
        lengths = m.sum(axis=1)  # [B,1]
        match mode:
            case PoolingMode.CLS:
                return x[:, 0]
            case PoolingMode.MAX:
                return np.where(m > 0, x, -np.inf).max(axis=1).astype(np.float32)
            case PoolingMode.MEAN:
                # einsum adds in the order (x * m).sum(axis=1) does, without the [B,T,H] product
                summed = np.einsum("bth,bt->bh", x, m[:, :, 0])
                return summed / np.maximum(lengths, np.float32(1e-9))
            case PoolingMode.MEAN_SQRT_LEN:
                return (x * m).sum(axis=1) / np.sqrt(np.maximum(lengths, np.float32(1e-9)))
            case PoolingMode.WEIGHTED_MEAN:
                w = m * np.arange(1, x.shape[1] + 1, dtype=np.float32)[None, :, None]
                return (x * w).sum(axis=1) / np.maximum(w.sum(axis=1), np.float32(1e-9))
            case PoolingMode.LAST_TOKEN | PoolingMode.EOS:
                last = (mask > 0).sum(axis=1) - 1  # rows are right-padded
                return x[np.arange(x.shape[0]), last]

    def drop_prompt(self, mask: Tensor) -> Tensor:
        return (mask == 1).astype(mask.dtype)

    def patches(self, pixels: Tensor, size: int) -> Tensor:
        b, c, h, w = pixels.shape
        grid = pixels.reshape(b, c, h // size, size, w // size, size)
        return np.ascontiguousarray(grid.transpose(0, 2, 4, 1, 3, 5)).reshape(
            b, (h // size) * (w // size), c * size * size
        )

    def prepend(self, x: Tensor, row: Array) -> Tensor:
        first = np.broadcast_to(row, (x.shape[0], 1, x.shape[2]))
        return np.concatenate([first, x], axis=1)

    def token_at(self, x: Tensor, position: int) -> Tensor:
        return x[:, position]

    def token_of(self, x: Tensor, ids: Tensor, token: int | None) -> Tensor:
        where = ids.argmax(axis=1) if token is None else (ids == token).argmax(axis=1)
        return x[np.arange(x.shape[0]), where]

    def concat(self, xs: Sequence[Tensor]) -> Tensor:
        return np.concatenate(xs, axis=-1)

    def l2_normalize(self, x: Tensor) -> Tensor:
        norm = np.linalg.norm(x, axis=-1, keepdims=True)
        return x / np.maximum(norm, np.float32(1e-12))


_OPS = NumpyOps()


class _NumpyEncoder:
    """A loaded model: its forward pass, bound to the numpy ops and the model's weights."""

    def __init__(
        self,
        dimensions: int,
        forward: Callable[[Tensor, Tensor], Tensor],
        images: ImageEncoder | None = None,
        *,
        pads_for_free: bool = False,
    ) -> None:
        self.dimensions = dimensions
        self.images = images
        self.pads_for_free = pads_for_free  # domain.ports.PadsForFree
        self._forward = forward

    def embed(self, ids: IdArray, mask: IdArray) -> Array:
        return self._forward(ids, mask)


class _NumpyImages:
    """An image tower behind the model's own image preprocessing (CLIP's vision tower)."""

    def __init__(self, forward: ImageForward, model: Any, processor: ClipImageProcessor) -> None:
        self.tokens = model.config.image_tokens
        self._forward = forward
        self._model = model
        self._processor = processor

    def prepare(self, data: bytes) -> Array | InvalidInput:
        return self._processor.prepare(data)

    def embed(self, pixels: Array) -> Array:
        return self._forward(_OPS, pixels, self._model)


def _encoder(spec: ModelSpec, folder: Path) -> _NumpyEncoder:
    """The family's forward passes over the model its reader makes of the folder."""
    traits = FAMILIES[spec.family]
    model = FAMILY_READERS[spec.family].read(folder, spec.pooling)
    text = traits.text_forward
    images = None
    # a checkpoint of an image family may still carry its text tower alone (vision None)
    if traits.image_forward is not None and model.vision is not None:
        processor = read_clip_image_processor(folder, model.config.image_size)
        images = _NumpyImages(traits.image_forward, model, processor)
    return _NumpyEncoder(
        model.dimensions,
        lambda ids, mask: text(_OPS, ids, mask, model),
        images,
        # a windowless family's pass is one embedding_bag, which reads the real ids alone
        pads_for_free=traits.windowless,
    )


class NumpyEngine:
    name = "numpy"
    families = frozenset(FAMILY_READERS)  # every family: the reference runs them all

    def load(self, spec: ModelSpec, folder: Path) -> Encoder | ModelUnavailable:
        if spec.family not in self.families:
            return ModelUnavailable(spec.qualified_name, f"no numpy engine for {spec.family}")
        try:
            return _encoder(spec, folder)
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
            return ModelUnavailable(spec.qualified_name, str(exc))
