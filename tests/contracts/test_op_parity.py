"""The ops added for MPNet, on every engine that records them, against the numpy engine.

`offset_bias` (a per-head score bias gathered by the keys' clipped offset from the query) and
attention's `bias` argument are recorded by the ONNX recorder (run by ONNX Runtime, with
attention written out and as its com.microsoft Attention kernel, and by OpenVINO) and by the MIL
recorder (evaluated by coremltools' value inference, as tests/contracts/test_coreml_build.py
does, since Core ML runs on macOS only). Each computes a small attention block over a padded
batch whose lengths reach past the table's clipping distance, so clipped and unclipped offsets,
pads and the bias's place before the mask are all in the comparison.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from adapters.engines.numpy_ref import NumpyOps
from adapters.engines.onnx_graph import AttentionKind, text_graph
from application.batching import pad
from domain.models import PoolingMode
from domain.ops import Linear
from tests.contracts.test_engine_parity import _run_with
from tests.tolerances import MAX_ABS_DIFF

if TYPE_CHECKING:
    from pathlib import Path

    from domain.ops import Ops

_HEADS, _HIDDEN, _VOCAB, _REACH = 4, 16, 50, 6
_RNG = np.random.default_rng(0)
_TABLE = _RNG.standard_normal((_VOCAB, _HIDDEN)).astype(np.float32)
# each head's bias for offsets -_REACH.._REACH: large and distinct, so a wrong row shows
_OFFSETS = (3 * _RNG.standard_normal((2 * _REACH + 1, _HEADS))).astype(np.float32)


def _linear() -> Linear:
    weight = _RNG.standard_normal((_HIDDEN, _HIDDEN)).astype(np.float32) / 4
    return Linear(weight, _RNG.standard_normal(_HIDDEN).astype(np.float32))


_Q, _K, _V = _linear(), _linear(), _linear()


def _block(ops: Ops[Any], ids: Any, mask: Any) -> Any:
    x = ops.embedding(_TABLE, ids)  # [B,T,H]
    q, k, v = ops.linear(x, _Q), ops.linear(x, _K), ops.linear(x, _V)
    bias = ops.offset_bias(ids, _OFFSETS)  # [1,NH,T,T]
    ctx = ops.attention(q, k, v, mask, _HEADS, bias=bias)  # [B,T,H]
    return ops.concat([ops.pool(ctx, mask, PoolingMode.MEAN), ops.pool(ctx, mask, PoolingMode.CLS)])


def _batch(lengths: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    rows = [tuple(int(i) for i in _RNG.integers(1, _VOCAB, n)) for n in lengths]
    return pad(rows)


BATCHES = {"one-token": (1,), "within-reach": (5, 2, 4), "past-reach": (19, 3, 11, 1)}


def _close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    assert float(np.abs(got - want).max()) <= MAX_ABS_DIFF * max(1.0, float(np.abs(want).max()))


@pytest.mark.parametrize("lengths", BATCHES.values(), ids=BATCHES.keys())
@pytest.mark.parametrize(
    ("runtime", "attention"),
    [("onnxruntime", "onnx"), ("onnxruntime", "com.microsoft"), ("openvino", "onnx")],
)
def test_the_onnx_graph_computes_what_numpy_computes(
    runtime: str, attention: AttentionKind, lengths: tuple[int, ...], tmp_path: Path
) -> None:
    """offset_bias and a biased attention, recorded into one ONNX graph, equal numpy's."""
    import onnx

    path = tmp_path / "block.onnx"
    onnx.save(text_graph(_block, "block", attention=attention), str(path))
    ids, mask = _batch(lengths)
    _close(
        _run_with(runtime)(path, {"input_ids": ids, "attention_mask": mask}),
        _block(NumpyOps(), ids, mask),
    )


@pytest.mark.parametrize("lengths", BATCHES.values(), ids=BATCHES.keys())
def test_the_mil_program_computes_what_numpy_computes(lengths: tuple[int, ...]) -> None:
    """The same block recorded as MIL ops and evaluated by coremltools equals numpy's."""
    from tests.contracts.test_coreml_build import _evaluated

    ids, mask = _batch(lengths)
    got = _evaluated(_block, ids.astype(np.int32), mask.astype(np.int32))
    _close(got, _block(NumpyOps(), ids, mask))


def test_numpy_offset_bias_reads_the_row_of_each_clipped_offset() -> None:
    """Query i, key j, head h: the table's row clip(j - i) + reach, column h."""
    t = 2 * _REACH + 5
    bias = NumpyOps().offset_bias(np.zeros((2, t), dtype=np.int64), _OFFSETS)
    assert bias.shape == (1, _HEADS, t, t)
    for i in range(t):
        for j in range(t):
            row = min(max(j - i, -_REACH), _REACH) + _REACH
            np.testing.assert_array_equal(bias[0, :, i, j], _OFFSETS[row])
