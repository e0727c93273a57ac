"""The ops added for today's architectures, on every engine that records them, against numpy.

mul, silu, gelu_tanh, rms_norm (over the whole row and per head), rotary (whole heads and their
first dims, two bases) and attention with grouped kv heads, a window, a causal mask, both, and a
set scale are recorded by the ONNX recorder (run by ONNX Runtime, with attention written out and
with its com.microsoft kernel, and by OpenVINO) and by the MIL recorder (evaluated by
coremltools' value inference, as tests/contracts/test_coreml_build.py does, since Core ML runs
on macOS only). Each case is one small layer in the shape of the architecture that uses the op,
over padded mixed-length batches (left-padded too, for the causal ones), with rows longer than
the window, up to the most tokens the rotary tables hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from adapters.engines.numpy_ref import NumpyOps
from adapters.engines.onnx_graph import AttentionKind, text_graph
from domain.models import PoolingMode
from domain.ops import Linear, Norm
from domain.rotary import rotary_tables
from tests.contracts.test_engine_parity import _cpu_has_bf16, _run_with
from tests.tolerances import BF16_MIN_COSINE, MAX_ABS_DIFF

if TYPE_CHECKING:
    from pathlib import Path

    import onnx

    from domain.ops import Ops

_NH, _HD, _VOCAB, _I = 4, 8, 50, 24
_H = _NH * _HD
_MAX_TOKENS = 24  # the rotary tables' rows: the longest batch below reaches it
_RNG = np.random.default_rng(0)
_TABLE = _RNG.standard_normal((_VOCAB, _H)).astype(np.float32)


def _rand(*shape: int, scale: float = 1.0) -> np.ndarray:
    return (scale * _RNG.standard_normal(shape)).astype(np.float32)


def _linear(out: int, width: int, *, bias: bool) -> Linear:
    b = _rand(out) if bias else np.zeros(out, dtype=np.float32)
    return Linear(_rand(out, width, scale=width**-0.5), b)


@dataclass(frozen=True)
class Layer:
    """One pre-norm layer: what each architecture asks of the new ops, and its weights."""

    kv_heads: int | None = None  # grouped-query attention where below _NH
    rotary_dims: int | None = None  # None: the whole head
    base: float | None = 10_000.0  # None: no rotary at all
    qk_norm: bool = False  # Qwen3's and Gemma 3's RMSNorm per head on q and k
    causal: bool = False
    window: int | None = None
    scale: float | None = None
    gate: str = "silu"  # SwiGLU or GeGLU (tanh GELU)
    bias: bool = False  # biased projections: ONNX Runtime's fused kernel can take them

    def weights(self) -> dict[str, Any]:
        kv = (self.kv_heads or _NH) * _HD
        return {
            "norm": _rand(_H, scale=0.5) + 1,
            "q": _linear(_H, _H, bias=self.bias),
            "k": _linear(kv, _H, bias=self.bias),
            "v": _linear(kv, _H, bias=self.bias),
            "q_norm": _rand(_HD, scale=0.5) + 1,
            "k_norm": _rand(_HD, scale=0.5) + 1,
            "o": _linear(_H, _H, bias=self.bias),
            "mlp_norm": Norm(_rand(_H, scale=0.5) + 1, _rand(_H, scale=0.1)),
            "gate": _linear(_I, _H, bias=self.bias),
            "up": _linear(_I, _H, bias=self.bias),
            "down": _linear(_H, _I, bias=self.bias),
        }


LAYERS = {
    # Qwen3: causal, RMSNorm, q/k norm per head, grouped-query, whole-head rotary, SwiGLU
    "qwen3": Layer(kv_heads=2, qk_norm=True, causal=True, base=1_000_000.0),
    # Gemma 3's local layers: one kv head, windowed both ways, a set scale, GeGLU
    "gemma3-local": Layer(kv_heads=1, qk_norm=True, window=3, scale=0.3, gate="gelu_tanh"),
    # ModernBERT's local layers (its global ones are "qwen3" less causal); NomicBERT's rotary on
    # half of each head
    "partial-rotary-window": Layer(rotary_dims=_HD // 2, window=4, gate="gelu_tanh", bias=True),
    "causal-window": Layer(kv_heads=2, causal=True, window=5, scale=0.5),
    # no rotary, no grouping, no window: q, k and v are linears of one input, which ONNX
    # Runtime's com.microsoft kernel takes, with its scale
    "fused-kernel": Layer(base=None, scale=0.2, bias=True),
}
_WEIGHTS = {name: layer.weights() for name, layer in LAYERS.items()}


def _block(layer: Layer, w: dict[str, Any]) -> Any:
    def block(ops: Ops[Any], ids: Any, mask: Any) -> Any:
        x = ops.embedding(_TABLE, ids)  # [B,T,H]
        h = ops.rms_norm(x, w["norm"], 1e-6)
        q, k, v = ops.linear(h, w["q"]), ops.linear(h, w["k"]), ops.linear(h, w["v"])
        kvh = layer.kv_heads or _NH
        if layer.qk_norm:
            q = ops.rms_norm(q, w["q_norm"], 1e-6, groups=_NH)
            k = ops.rms_norm(k, w["k_norm"], 1e-6, groups=kvh)
        if layer.base is not None:
            q = ops.rotary(q, _NH, layer.base, layer.rotary_dims)
            k = ops.rotary(k, kvh, layer.base, layer.rotary_dims)
        a = ops.attention(
            q,
            k,
            v,
            mask,
            _NH,
            causal=layer.causal,
            kv_heads=layer.kv_heads,
            window=layer.window,
            scale=layer.scale,
        )
        x = ops.add(x, ops.linear(a, w["o"]))
        h = ops.layer_norm(x, w["mlp_norm"], 1e-5)
        act = ops.silu if layer.gate == "silu" else ops.gelu_tanh
        gated = ops.mul(act(ops.linear(h, w["gate"])), ops.linear(h, w["up"]))  # [B,T,I]
        x = ops.add(x, ops.linear(gated, w["down"]))
        return ops.concat([ops.pool(x, mask, PoolingMode.MEAN), ops.pool(x, mask, PoolingMode.MAX)])

    return block


def _batch(lengths: tuple[int, ...], *, left: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Rows of these many tokens, padded to the longest on the right (or the left)."""
    rng, t = np.random.default_rng(len(lengths) + left), max(lengths)
    ids = np.zeros((len(lengths), t), dtype=np.int64)
    mask = np.zeros((len(lengths), t), dtype=np.int64)
    for row, n in enumerate(lengths):
        where = slice(t - n, t) if left else slice(0, n)
        ids[row, where] = rng.integers(1, _VOCAB, n)
        mask[row, where] = 1
    return ids, mask


BATCHES = {
    "one-token": ((1,), False),
    "mixed": ((9, 2, 6), False),
    "mixed-left": ((9, 2, 6), True),
    "longest": ((_MAX_TOKENS, 3, 13, 1), False),
}


def _close(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    assert float(np.abs(got - want).max()) <= MAX_ABS_DIFF * max(1.0, float(np.abs(want).max()))


def _graph(name: str, attention: AttentionKind) -> onnx.ModelProto:
    block = _block(LAYERS[name], _WEIGHTS[name])
    return text_graph(block, name, attention=attention, max_tokens=_MAX_TOKENS)


@pytest.mark.parametrize("batch", BATCHES.values(), ids=BATCHES.keys())
@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize(
    ("runtime", "attention"),
    [("onnxruntime", "onnx"), ("onnxruntime", "com.microsoft"), ("openvino", "onnx")],
)
def test_the_onnx_graph_computes_what_numpy_computes(
    runtime: str,
    attention: AttentionKind,
    name: str,
    batch: tuple[tuple[int, ...], bool],
    tmp_path: Path,
) -> None:
    """The layer recorded into one ONNX graph gives numpy's vectors, each batch's T cut from
    the same rotary tables."""
    import onnx

    path = tmp_path / "layer.onnx"
    onnx.save(_graph(name, attention), str(path))
    lengths, left = batch
    ids, mask = _batch(lengths, left=left)
    _close(
        _run_with(runtime)(path, {"input_ids": ids, "attention_mask": mask}),
        _block(LAYERS[name], _WEIGHTS[name])(NumpyOps(), ids, mask),
    )


@pytest.mark.parametrize("name", LAYERS)
def test_the_fused_kernel_is_recorded_only_where_it_computes_the_same(name: str) -> None:
    """ONNX Runtime's Attention kernel stands in for attention over linears of one input with
    no grouping, window or rotary between; everything else is written out."""
    ops = {node.op_type for node in _graph(name, "com.microsoft").graph.node}
    assert ("Attention" in ops) == (name == "fused-kernel")


def test_the_rotary_tables_are_the_numpy_engines_to_the_bit() -> None:
    """The graph holds domain.rotary's cos and sin for _MAX_TOKENS positions, as computed."""
    from onnx import numpy_helper

    graph = _graph("partial-rotary-window", "onnx").graph
    stored = {
        i.name.split("_")[1]: numpy_helper.to_array(i)
        for i in graph.initializer
        if i.name.startswith("rotary_")  # rotary_cos_N, rotary_sin_N
    }
    assert sorted(stored) == ["cos", "sin"]
    cos, sin = rotary_tables(10_000.0, _HD // 2, _MAX_TOKENS)
    np.testing.assert_array_equal(stored["cos"][:, 0, :], cos)
    np.testing.assert_array_equal(stored["sin"][:, 0, :], sin)


def test_rotary_without_max_tokens_is_refused_at_record_time() -> None:
    """A graph that would outgrow its tables at run time is never recorded."""
    block = _block(LAYERS["qwen3"], _WEIGHTS["qwen3"])
    with pytest.raises(ValueError, match="max_tokens"):
        text_graph(block, "qwen3")


@pytest.mark.skipif(not _cpu_has_bf16(), reason="the CPU does not compute in bf16 natively")
@pytest.mark.parametrize("name", LAYERS)
def test_openvino_bf16_keeps_the_direction_of_the_new_ops_vectors(
    name: str, tmp_path: Path
) -> None:
    """OpenVINO compiles the layer in bf16 and every vector stays within BF16_MIN_COSINE of
    numpy's fp32 one."""
    import onnx
    import openvino as ov

    path = tmp_path / "layer.onnx"
    onnx.save(_graph(name, "onnx"), str(path))
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "bf16"})
    ids, mask = _batch((_MAX_TOKENS, 3, 13, 1))
    got = np.asarray(compiled({"input_ids": ids, "attention_mask": mask})[0])
    want = _block(LAYERS[name], _WEIGHTS[name])(NumpyOps(), ids, mask)
    cosines = (got * want).sum(-1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(want, axis=-1)
    assert cosines.min() >= BF16_MIN_COSINE


@pytest.mark.parametrize("tables", ["for-max-tokens", "for-T"])
@pytest.mark.parametrize("batch", BATCHES.values(), ids=BATCHES.keys())
@pytest.mark.parametrize("name", LAYERS)
def test_the_mil_program_computes_what_numpy_computes(
    name: str, batch: tuple[tuple[int, ...], bool], tables: str
) -> None:
    """The same layer recorded as MIL ops and evaluated by coremltools equals numpy's, its
    rotary tables held for _MAX_TOKENS positions (as the engine records it) or for the fixed T
    of the constant inputs."""
    from adapters.engines.mil_ops import MilOps
    from tests.contracts.test_coreml_build import _evaluated

    lengths, left = batch
    ids, mask = _batch(lengths, left=left)
    block = _block(LAYERS[name], _WEIGHTS[name])
    max_tokens = _MAX_TOKENS if tables == "for-max-tokens" else None

    def recorded(_ops: Ops[Any], ids: Any, mask: Any) -> Any:
        return block(MilOps(max_tokens=max_tokens), ids, mask)

    got = _evaluated(recorded, ids.astype(np.int32), mask.astype(np.int32))
    _close(got, block(NumpyOps(), ids, mask))


@pytest.mark.filterwarnings("ignore:Implicitly cleaning up <TemporaryDirectory:ResourceWarning")
@pytest.mark.parametrize("name", ["qwen3", "partial-rotary-window"])
def test_the_mil_program_converts_for_any_batch_and_holds_the_tables(
    name: str, tmp_path: Path
) -> None:
    """Recorded for 1..max_tokens tokens (T unknown), the layer converts into an ML program
    whose consts include domain.rotary's tables for max_tokens positions, bit for bit."""
    from adapters.engines.coreml_engine import _convert_and_save, _token_inputs
    from adapters.engines.mil_ops import text_program
    from tests.contracts.test_coreml_build import _saved

    layer, package = LAYERS[name], tmp_path / "layer.mlpackage"
    program = text_program(_block(layer, _WEIGHTS[name]), max_tokens=_MAX_TOKENS)
    _convert_and_save(program, _token_inputs(_MAX_TOKENS), package)
    _, main = _saved(package)
    values = [op.outputs[0].val for op in main.operations if op.op_type == "const"]
    consts = {v.tobytes() for v in values if isinstance(v, np.ndarray)}
    assert layer.base is not None
    for table in rotary_tables(layer.base, layer.rotary_dims or _HD, _MAX_TOKENS):
        assert table.tobytes() in consts
