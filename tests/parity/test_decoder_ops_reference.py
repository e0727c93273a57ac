"""The numpy engine's ops for today's architectures against torch and transformers.

Rotary embedding (against transformers' own apply_rotary_pos_emb and its float32 angles),
attention with grouped key/value heads, a sliding window, a causal mask, a set scale and padded
keys (against torch's scaled_dot_product_attention given the same allowed-key mask), SiLU,
GELU's tanh form and a per-head RMSNorm. The architectures' parity tests check them again in
place; these say which op is wrong when one is.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers.models.qwen3.modeling_qwen3 import apply_rotary_pos_emb

from adapters.engines.numpy_ref import NumpyOps
from tests.tolerances import MAX_ABS_DIFF

_OPS = NumpyOps()
_RNG = np.random.default_rng(0)
_B, _T, _NH, _KVH, _HD = 2, 11, 4, 2, 16


def _rand(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (scale * _RNG.standard_normal(shape)).astype(np.float32)


def _heads(x: np.ndarray, n: int) -> torch.Tensor:  # [B,T,n·HD] -> [B,n,T,HD]
    return torch.from_numpy(x).view(_B, _T, n, -1).transpose(1, 2)


def _flat(x: torch.Tensor) -> np.ndarray:  # [B,n,T,HD] -> [B,T,n·HD]
    return x.transpose(1, 2).reshape(_B, _T, -1).numpy()


def _close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    assert float(np.abs(got - want).max()) <= MAX_ABS_DIFF * max(1.0, float(np.abs(want).max()))


@pytest.mark.parametrize("base", [10_000.0, 1_000_000.0])
@pytest.mark.parametrize("dims", [None, 8])
def test_rotary_turns_as_transformers_does(base: float, dims: int | None) -> None:
    """rotate-half rotary at positions 0..T-1, whole heads or their first dims only."""
    d = _HD if dims is None else dims
    inv_freq = 1.0 / (base ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
    angles = torch.arange(_T).float()[:, None] * inv_freq[None, :]
    both = torch.cat([angles, angles], dim=-1)
    cos, sin = both.cos()[None], both.sin()[None]
    q, k = _rand(_B, _T, _NH * _HD), _rand(_B, _T, _KVH * _HD)
    tq, tk = _heads(q, _NH), _heads(k, _KVH)
    rq, rk = apply_rotary_pos_emb(tq[..., :d], tk[..., :d], cos, sin)
    want_q = _flat(torch.cat([rq, tq[..., d:]], dim=-1))
    want_k = _flat(torch.cat([rk, tk[..., d:]], dim=-1))
    _close(_OPS.rotary(q, _NH, base, dims), want_q)
    _close(_OPS.rotary(k, _KVH, base, dims), want_k)


@pytest.mark.parametrize("direction", ["both ways", "causal"])
@pytest.mark.parametrize("window", [None, 3])
@pytest.mark.parametrize("kv_heads", [None, _KVH])
def test_attention_masks_groups_and_scales_as_torch_does(
    direction: str, window: int | None, kv_heads: int | None
) -> None:
    """Padded keys, causal, |i - j| < window and shared kv heads: the same allowed keys."""
    causal = direction == "causal"
    kvh = _NH if kv_heads is None else kv_heads
    q, k, v = _rand(_B, _T, _NH * _HD), _rand(_B, _T, kvh * _HD), _rand(_B, _T, kvh * _HD)
    mask = np.ones((_B, _T), dtype=np.int64)
    mask[1, 7:] = 0
    offsets = torch.arange(_T)[None, :] - torch.arange(_T)[:, None]  # key minus query
    allowed = torch.from_numpy(mask > 0)[:, None, None, :].expand(_B, 1, _T, _T).clone()
    if causal:
        allowed &= offsets <= 0
    if window is not None:
        allowed &= offsets.abs() < window
    want = torch.nn.functional.scaled_dot_product_attention(
        _heads(q, _NH),
        _heads(k, kvh),
        _heads(v, kvh),
        attn_mask=allowed,
        scale=0.3,
        enable_gqa=True,
    )
    got = _OPS.attention(
        q, k, v, mask, _NH, causal=causal, kv_heads=kv_heads, window=window, scale=0.3
    )
    _close(got[0], _flat(want)[0])
    _close(got[1, :7], _flat(want)[1, :7])  # a padded query's own row is nobody's business


def test_the_gates_activations_are_torchs() -> None:
    x = _rand(3, 5, 8, scale=4.0)
    _close(_OPS.silu(x), torch.nn.functional.silu(torch.from_numpy(x)).numpy())
    want = torch.nn.functional.gelu(torch.from_numpy(x), approximate="tanh").numpy()
    _close(_OPS.gelu_tanh(x), want)
    _close(_OPS.mul(x, x), x * x)


@pytest.mark.parametrize("groups", [1, 2])
def test_rms_norm_normalises_each_group(groups: int) -> None:
    """Qwen3RMSNorm's arithmetic, over the whole row or per head (q/k norm)."""
    x, weight = _rand(3, 5, 8, scale=3.0), _rand(8 // groups)
    parts = torch.from_numpy(x).view(3, 5, groups, -1)
    normed = parts * torch.rsqrt(parts.pow(2).mean(-1, keepdim=True) + 1e-6)
    want = (torch.from_numpy(weight) * normed).reshape(3, 5, 8).numpy()
    _close(_OPS.rms_norm(x, weight, 1e-6, groups), want)
