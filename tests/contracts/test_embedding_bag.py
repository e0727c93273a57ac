"""The `embedding_bag` op on every Ops implementation against the numpy reference's.

Only numpy runs the static families today, but the graph recorders must compute the same op
should a graph ever record it: ONNX's recording run by ONNX Runtime, the MIL recording evaluated
by coremltools' value inference.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from adapters.engines.numpy_ref import NumpyOps
from tests.tolerances import MAX_ABS_DIFF

TABLE = np.random.default_rng(5).standard_normal((50, 8)).astype(np.float32)
# rows of 6, 3, 1 and 0 real tokens, right-padded with id 0 as application.batching pads
IDS = np.array(
    [[3, 7, 7, 49, 0, 12], [5, 1, 2, 0, 0, 0], [9, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]],
    dtype=np.int64,
)
MASK = np.array(
    [[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]],
    dtype=np.int64,
)


def _bag(ops: Any, ids: Any, mask: Any) -> Any:
    return ops.embedding_bag(TABLE, ids, mask)


def test_numpy_bag_is_the_mean_of_the_real_rows_and_zero_for_none() -> None:
    """Row by row: the mean of the table rows of the real ids; a row with no token is zero."""
    got = _bag(NumpyOps(), IDS, MASK)
    real = [[3, 7, 7, 49, 0, 12], [5, 1, 2], [9]]
    want = [*(TABLE[row].mean(axis=0) for row in real), np.zeros(8)]
    np.testing.assert_allclose(got, want, atol=MAX_ABS_DIFF)
    assert got.dtype == np.float32


def test_onnx_recording_of_the_bag_computes_what_numpy_computes() -> None:
    """The graph OnnxOps records, run by ONNX Runtime, gives numpy's vectors."""
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed")
    from adapters.engines.onnx_graph import text_graph

    graph = text_graph(_bag, "bag")
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input_ids": IDS, "attention_mask": MASK})
    np.testing.assert_allclose(got, _bag(NumpyOps(), IDS, MASK), atol=MAX_ABS_DIFF)


def test_mil_recording_of_the_bag_computes_what_numpy_computes() -> None:
    """The MIL ops MilOps records, evaluated by coremltools, give numpy's vectors."""
    pytest.importorskip("coremltools", reason="coremltools is not installed")
    from tests.contracts.test_coreml_build import _evaluated

    got = _evaluated(_bag, IDS.astype(np.int32), MASK.astype(np.int32))
    np.testing.assert_allclose(got, _bag(NumpyOps(), IDS, MASK), atol=MAX_ABS_DIFF)
