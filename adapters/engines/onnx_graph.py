"""The ops recorded into an ONNX graph: the domain's forward passes, written once, as a file.

`OnnxOps` implements domain.ops.Ops by appending ONNX nodes instead of computing. Running an
architecture's forward function (bert_sentence_embedding, clip_text_embedding, ...) with it
leaves a graph from `input_ids`/`attention_mask` (or `pixel_values`) to `embeddings`, pooling and
normalisation included, that ONNX Runtime and OpenVINO both run (docs/adr/0004).

Weights become initializers. A Linear's weight is stored transposed ([in,out]) once, so each
linear is one MatMul and one Add, the pattern both runtimes fuse into their GEMM. LayerNorm is
the opset-17 LayerNormalization node; exact GELU is the erf formula, which both runtimes fuse into
one Gelu (BiasGelu in ONNX Runtime). Attention is written out (MatMul, Softmax, MatMul), which
OpenVINO fuses into its own attention kernel; for ONNX Runtime, whose optimizer does not fuse
it, it is recorded as ONNX Runtime's com.microsoft Attention instead, q, k and v projections
packed into one GEMM (measured in docs/adr/0004-one-graph-two-runtimes.md), where that kernel
computes the same thing: not for grouped kv heads or a window, which are written out.

Rotary embedding reads domain.rotary's cos and sin tables, stored for the most tokens the model
takes and cut to each batch's length, so its angles are the numpy engine's to the bit. RMSNorm,
SiLU and GELU's tanh form are opset 17 arithmetic, spelled as the runtimes' fusions look for.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from domain.models import PoolingMode
from domain.ops import Array, Linear, Norm, Ops
from domain.rotary import rotary_tables

__all__ = [
    "GRAPH_BUILDER_VERSION",
    "OPSET",
    "AttentionKind",
    "OnnxOps",
    "Value",
    "image_graph",
    "initializer_bytes",
    "text_graph",
]

# Bump when the recorder's output changes: cached graphs from another version are not reused.
# 2: the last token found where the mask is above 0; 3: rotary, RMSNorm, gates, grouped-query
# and windowed attention, the score bias recorded for any mix of padding, causal and window
GRAPH_BUILDER_VERSION = 3
OPSET = 17  # LayerNormalization; every op here is in it, so both runtimes read the graph
_MS = "com.microsoft"
# how attention is recorded: written out in standard ONNX ops, which every runtime reads (and
# OpenVINO fuses itself), or as ONNX Runtime's own com.microsoft Attention kernel
AttentionKind = Literal["onnx", "com.microsoft"]
_NEG = float(np.finfo(np.float32).min)  # what transformers (and the numpy engine) use for masks


@dataclass(frozen=True, slots=True)
class Value:
    """A tensor in the graph being recorded: its name, and its last axis where known."""

    name: str
    width: int | None = None


class OnnxOps:
    """domain.ops.Ops that records nodes. One instance records one graph."""

    def __init__(self, *, attention: AttentionKind = "onnx", max_tokens: int | None = None) -> None:
        self._attention = attention
        self._max_tokens = max_tokens  # the longest row the graph will see: rotary's table rows
        self._nodes: list[onnx.NodeProto] = []
        self._initializers: list[TensorProto] = []
        # id(array) -> (initializer, array): none is stored twice, and holding the array keeps
        # its id from being reused by another
        self._weights: dict[int, tuple[str, Array]] = {}
        self._constants: dict[tuple[str, bytes, tuple[int, ...]], str] = {}
        self._derived: dict[tuple[str, ...], Value] = {}  # per-graph values made once (masks)
        self._count = itertools.count()
        self.uses_contrib_ops = False
        self._linears: dict[str, tuple[Value, Linear]] = {}  # a linear's output -> its input

    # --- the Ops protocol -----------------------------------------------------------------------

    def embedding(self, table: Array, ids: Value) -> Value:
        return self._op("Gather", self._weight(table, "table"), ids, axis=0, width=table.shape[1])

    def positions(self, ids: Value) -> Value:
        # [1,T], not [B,T]: every consumer broadcasts over the batch, so no Expand is spent
        t = self._op("Squeeze", self._op("Shape", ids, start=1, end=2), self._ints([0]))
        arange = self._op("Range", self._int(0), t, self._int(1))
        return self._op("Unsqueeze", arange, self._ints([0]))

    def make_positions(self, ids: Value, mask: Value, padding_idx: int) -> Value:
        real = self._op("Greater", mask, self._int(0))
        not_pad = self._op("Not", self._op("Equal", ids, self._int(padding_idx)))
        counted = self._op("Cast", self._op("And", real, not_pad), to=TensorProto.INT64)
        running = self._op("CumSum", counted, self._int(1))  # 1, 2, ... over counted tokens
        return self._op("Add", self._op("Mul", running, counted), self._int(padding_idx))

    def add(self, a: Value, b: Value | Array) -> Value:
        other = self._weight(b, "add") if isinstance(b, np.ndarray) else b
        return self._op("Add", a, other, width=a.width)

    def linear(self, x: Value, w: Linear) -> Value:
        out = w.weight.shape[0]
        y = self._op("MatMul", x, self._weight(w.weight, "weight", transpose=True), width=out)
        if not w.bias.any():  # CLIP's projections and patch embedding have none
            return y
        r = self._op("Add", y, self._weight(w.bias, "bias"), width=out)
        self._linears[r.name] = (x, w)
        return r

    def layer_norm(self, x: Value, w: Norm, eps: float) -> Value:
        scale, bias = self._weight(w.weight, "norm"), self._weight(w.bias, "norm")
        return self._op("LayerNormalization", x, scale, bias, axis=-1, epsilon=eps, width=x.width)

    def gelu_erf(self, x: Value) -> Value:
        # 0.5·x·(1+erf(x/√2)), spelled as the pattern both runtimes fuse into one Gelu
        erf = self._op("Erf", self._op("Div", x, self._float(math.sqrt(2.0))))
        half_x = self._op("Mul", x, self._float(0.5))
        return self._op("Mul", half_x, self._op("Add", erf, self._float(1.0)), width=x.width)

    def quick_gelu(self, x: Value) -> Value:
        gate = self._op("Sigmoid", self._op("Mul", x, self._float(1.702)))
        return self._op("Mul", x, gate, width=x.width)

    def tanh(self, x: Value) -> Value:
        return self._op("Tanh", x, width=x.width)

    def mul(self, a: Value, b: Value) -> Value:
        return self._op("Mul", a, b, width=a.width)

    def silu(self, x: Value) -> Value:
        return self._op("Mul", x, self._op("Sigmoid", x), width=x.width)

    def gelu_tanh(self, x: Value) -> Value:
        # 0.5·x·(1+tanh(√(2/π)·(x+0.044715·x³))), the pattern both runtimes fuse (FastGelu)
        cube = self._op("Mul", self._op("Pow", x, self._float(3.0)), self._float(0.044715))
        inner = self._op("Mul", self._op("Add", x, cube), self._float(math.sqrt(2 / math.pi)))
        half_x = self._op("Mul", x, self._float(0.5))
        one_plus = self._op("Add", self._op("Tanh", inner), self._float(1.0))
        return self._op("Mul", half_x, one_plus, width=x.width)

    def rms_norm(self, x: Value, weight: Array, eps: float, groups: int = 1) -> Value:
        parts = x
        if groups > 1:  # [...,H] -> [...,G,H/G]: each group is normalised on its own
            outer = self._op("Shape", x, end=-1)
            parts = self._op(
                "Reshape", x, self._op("Concat", outer, self._ints([groups, -1]), axis=0)
            )
        # x / sqrt(mean(x²) + eps) · weight, as OpenVINO's RMS fusion expects it spelled
        mean = self._op("ReduceMean", self._op("Pow", parts, self._float(2.0)), axes=[-1])
        root = self._op("Sqrt", self._op("Add", mean, self._float(eps)))
        scaled = self._op("Mul", parts, self._op("Div", self._float(1.0), root))
        normed = self._op("Mul", scaled, self._weight(weight, "rms_norm"))
        if groups == 1:
            return Value(normed.name, x.width)
        return self._op("Reshape", normed, self._op("Shape", x), width=x.width)

    def rotary(self, x: Value, heads: int, base: float, dims: int | None = None) -> Value:
        if x.width is None:
            msg = "rotary needs the width of its input (record it with linear)"
            raise ValueError(msg)
        hd = x.width // heads
        d = hd if dims is None else dims
        cos, sin = self._rotary_tables(x, base, d)  # [T,1,d/2]: broadcast over B and heads
        split = self._op("Reshape", x, self._ints([0, 0, heads, hd]))  # [B,T,NH,HD]
        first, second = self._last_axis(split, 0, d // 2), self._last_axis(split, d // 2, d)
        turned = [
            self._op("Sub", self._op("Mul", first, cos), self._op("Mul", second, sin)),
            self._op("Add", self._op("Mul", second, cos), self._op("Mul", first, sin)),
        ]
        if d < hd:  # the rest of each head passes through
            turned.append(self._last_axis(split, d, hd))
        joined = self._op("Concat", *turned, axis=-1)
        return self._op("Reshape", joined, self._ints([0, 0, x.width]), width=x.width)

    def attention(  # noqa: PLR0913 - the Ops signature
        self,
        q: Value,
        k: Value,
        v: Value,
        mask: Value | None,
        heads: int,
        *,
        causal: bool = False,
        bias: Value | None = None,
        kv_heads: int | None = None,
        window: int | None = None,
        scale: float | None = None,
    ) -> Value:
        if q.width is None:
            msg = "attention needs the width of its queries (record them with linear)"
            raise ValueError(msg)
        hd = q.width // heads
        kvh = heads if kv_heads is None else kv_heads
        factor = 1 / math.sqrt(hd) if scale is None else scale
        if self._attention == "com.microsoft" and kvh == heads and window is None:
            fused = self._fused_attention(
                q, k, v, mask, heads, causal=causal, bias=bias, scale=scale
            )
            if fused is not None:
                return fused
        qh = self._op("Transpose", self._split(q, heads, hd), perm=[0, 2, 1, 3])  # [B,NH,T,HD]
        kt = self._op("Transpose", self._split(k, kvh, hd), perm=[0, 2, 3, 1])  # [B,KVH,HD,T]
        vh = self._op("Transpose", self._split(v, kvh, hd), perm=[0, 2, 1, 3])  # [B,KVH,T,HD]
        if kvh != heads:  # grouped-query attention: each kv head serves NH/KVH query heads
            kt = self._repeat_heads(kt, heads // kvh, [0, heads, hd, -1])  # [B,NH,HD,T]
            vh = self._repeat_heads(vh, heads // kvh, [0, heads, -1, hd])  # [B,NH,T,HD]
        scores = self._op("Mul", self._op("MatMul", qh, kt), self._float(factor))  # [B,NH,T,T]
        if bias is not None:  # [1,NH,T,T], before the mask as the numpy engine adds it
            scores = self._op("Add", scores, bias)
        masked = self._score_bias(q, mask, causal=causal, window=window)  # [B|1,1,1|T,T]
        if masked is not None:
            scores = self._op("Add", scores, masked)
        probs = self._op("Softmax", scores, axis=-1)  # [B,NH,T,T]
        ctx = self._op("Transpose", self._op("MatMul", probs, vh), perm=[0, 2, 1, 3])
        return self._op("Reshape", ctx, self._ints([0, 0, q.width]), width=q.width)

    def patches(self, pixels: Value, size: int) -> Value:
        # [B,C,S,S] -> [B,C,S/p,p,S/p,p] -> [B,S/p,S/p,C,p,p] -> [B,N,C·p·p]
        b_c = self._op("Shape", pixels, start=0, end=2)
        rows = self._op("Div", self._op("Shape", pixels, start=2, end=3), self._ints([size]))
        cols = self._op("Div", self._op("Shape", pixels, start=3, end=4), self._ints([size]))
        p = self._ints([size])
        grid = self._op("Concat", b_c, rows, p, cols, p, axis=0)
        tiles = self._op("Transpose", self._op("Reshape", pixels, grid), perm=[0, 2, 4, 1, 3, 5])
        channels = self._op("Shape", pixels, start=1, end=2)
        flat = self._op("Mul", channels, self._ints([size * size]))
        target = self._op("Concat", self._ints([0, -1]), flat, axis=0)
        return self._op("Reshape", tiles, target)

    def prepend(self, x: Value, row: Array) -> Value:
        batch = self._op("Shape", x, start=0, end=1)
        shape = self._op("Concat", batch, self._ints([1, 1]), axis=0)
        first = self._op("Expand", self._weight(row.reshape(1, 1, -1), "row"), shape)  # [B,1,H]
        return self._op("Concat", first, x, axis=1, width=row.shape[-1])

    def embedding_bag(self, table: Array, ids: Value, mask: Value) -> Value:
        return self.pool(self.embedding(table, ids), mask, PoolingMode.MEAN)  # ONNX has no bag

    def token_at(self, x: Value, position: int) -> Value:
        return self._op("Gather", x, self._int(position), axis=1, width=x.width)

    def token_of(self, x: Value, ids: Value, token: int | None) -> Value:
        hits = ids if token is None else self._op("Equal", ids, self._int(token))
        scores = self._op("Cast", hits, to=TensorProto.INT32)
        where = self._op("ArgMax", scores, axis=1, keepdims=1)  # [B,1]: the first largest
        return self._op("GatherND", x, where, batch_dims=1, width=x.width)

    def offset_bias(self, ids: Value, table: Array) -> Value:
        def make() -> Value:
            reach = table.shape[0] // 2
            t = self._op("Squeeze", self._op("Shape", ids, start=1, end=2), self._ints([0]))
            arange = self._op("Range", self._int(0), t, self._int(1))
            keys = self._op("Unsqueeze", arange, self._ints([0]))  # [1,T]
            queries = self._op("Unsqueeze", arange, self._ints([1]))  # [T,1]
            offsets = self._op("Sub", keys, queries)  # [T,T]: j - i
            clipped = self._op("Min", self._op("Max", offsets, self._int(-reach)), self._int(reach))
            rows = self._op("Add", clipped, self._int(reach))
            picked = self._op("Gather", self._weight(table, "offset_bias"), rows, axis=0)
            heads_first = self._op("Transpose", picked, perm=[2, 0, 1])  # [NH,T,T]
            return self._op("Unsqueeze", heads_first, self._ints([0]))  # [1,NH,T,T]

        return self._derive(("offset_bias", ids.name, str(id(table))), make)

    def pool(self, x: Value, mask: Value, mode: PoolingMode) -> Value:
        match mode:
            case PoolingMode.CLS:
                return self.token_at(x, 0)
            case PoolingMode.MAX:
                real = self._derive(("real3", mask.name), lambda: self._real3(mask))
                masked = self._op("Where", real, x, self._float(-math.inf))
                return self._reduce("ReduceMax", masked, axis=1, width=x.width)
            case PoolingMode.MEAN:
                return self._mean(x, self._float_mask(mask))
            case PoolingMode.MEAN_SQRT_LEN:
                return self._mean(x, self._float_mask(mask), root=True)
            case PoolingMode.WEIGHTED_MEAN:
                ranks = self._op(
                    "Range", self._float(1.0), self._tokens_plus_one(mask), self._float(1.0)
                )
                weights = self._op(
                    "Mul", self._float_mask(mask), self._op("Unsqueeze", ranks, self._ints([0, 2]))
                )  # [B,T,1]: the i-th token weighs i
                return self._mean(x, weights)
            case PoolingMode.LAST_TOKEN | PoolingMode.EOS:
                real = self._op(
                    "Cast", self._op("Greater", mask, self._int(0)), to=TensorProto.INT64
                )
                length = self._reduce("ReduceSum", real, axis=1, keepdims=1)  # [B,1]
                last = self._op("Sub", length, self._int(1))  # rows are right-padded
                return self._op("GatherND", x, last, batch_dims=1, width=x.width)

    def drop_prompt(self, mask: Value) -> Value:
        return self._op("Cast", self._op("Equal", mask, self._int(1)), to=TensorProto.INT64)

    def concat(self, xs: Sequence[Value]) -> Value:
        widths = [x.width for x in xs]
        width = None if None in widths else sum(w or 0 for w in widths)
        return self._op("Concat", *xs, axis=-1, width=width)

    def l2_normalize(self, x: Value) -> Value:
        norm = self._reduce("ReduceL2", x, axis=-1, keepdims=1)
        return self._op("Div", x, self._op("Max", norm, self._float(1e-12)), width=x.width)

    # --- the finished graph ----------------------------------------------------------------------

    def model(
        self, inputs: Sequence[onnx.ValueInfoProto], output: Value, name: str
    ) -> onnx.ModelProto:
        """The recorded graph, from `inputs` to `output` (renamed `embeddings`), [batch, D]."""
        if output.width is None:
            msg = "the recorded output has no known width"
            raise ValueError(msg)
        self._nodes.append(helper.make_node("Identity", [output.name], ["embeddings"]))
        out = helper.make_tensor_value_info(
            "embeddings", TensorProto.FLOAT, ["batch", output.width]
        )
        nodes = _live(self._nodes, "embeddings")
        used = {name for node in nodes for name in node.input}
        graph = helper.make_graph(
            nodes,
            name,
            list(inputs),
            [out],
            [init for init in self._initializers if init.name in used],
        )
        opsets = [helper.make_opsetid("", OPSET)]
        if self.uses_contrib_ops:
            opsets.append(helper.make_opsetid(_MS, 1))
        return helper.make_model(
            graph,
            opset_imports=opsets,
            ir_version=helper.find_min_ir_version_for(opsets[:1]),  # the oldest IR that holds it
            producer_name="embedserve",
            producer_version=str(GRAPH_BUILDER_VERSION),
        )

    # --- building blocks -------------------------------------------------------------------------

    def _op(
        self,
        op: str,
        *inputs: Value | str,
        domain: str = "",
        width: int | None = None,
        **attrs: Any,
    ) -> Value:
        out = f"{op.lower()}_{next(self._count)}"
        names = [i.name if isinstance(i, Value) else i for i in inputs]
        self._nodes.append(helper.make_node(op, names, [out], name=out, domain=domain, **attrs))
        return Value(out, width)

    def _weight(self, array: Array, hint: str, *, transpose: bool = False) -> str:
        key = id(array) * 2 + transpose
        if key not in self._weights:
            data = np.ascontiguousarray(array.T if transpose else array, dtype=np.float32)
            name = f"{hint}_{next(self._count)}"
            self._initializers.append(numpy_helper.from_array(data, name))
            self._weights[key] = (name, array)
        return self._weights[key][0]

    def _constant(self, data: np.ndarray[Any, Any]) -> str:
        key = (data.dtype.str, data.tobytes(), data.shape)
        if key not in self._constants:
            name = f"const_{next(self._count)}"
            self._initializers.append(numpy_helper.from_array(data, name))
            self._constants[key] = name
        return self._constants[key]

    def _int(self, value: int) -> str:
        return self._constant(np.array(value, dtype=np.int64))

    def _ints(self, values: Sequence[int]) -> str:
        return self._constant(np.array(values, dtype=np.int64))

    def _float(self, value: float) -> str:
        return self._constant(np.array(value, dtype=np.float32))

    def _reduce(
        self, op: str, x: Value, *, axis: int, keepdims: int = 0, width: int | None = None
    ) -> Value:
        # opset 17: ReduceSum takes its axes as an input, the others as an attribute
        if op == "ReduceSum":
            return self._op(op, x, self._ints([axis]), keepdims=keepdims, width=width)
        return self._op(op, x, axes=[axis], keepdims=keepdims, width=width or x.width)

    def _derive(self, key: tuple[str, ...], make: Callable[[], Value]) -> Value:
        """A value that depends only on the inputs (mask forms, score biases): recorded once."""
        if key not in self._derived:
            self._derived[key] = make()
        return self._derived[key]

    def _real3(self, mask: Value) -> Value:  # [B,T] -> [B,T,1] bool
        real = self._op("Greater", mask, self._int(0))
        return self._op("Unsqueeze", real, self._ints([2]))

    def _float_mask(self, mask: Value) -> Value:  # [B,T] -> [B,T,1] float
        def make() -> Value:
            m = self._op("Cast", mask, to=TensorProto.FLOAT)
            return self._op("Unsqueeze", m, self._ints([2]))

        return self._derive(("float3", mask.name), make)

    def _tokens_plus_one(self, mask: Value) -> Value:  # T + 1 as a float scalar
        t = self._op("Squeeze", self._op("Shape", mask, start=1, end=2), self._ints([0]))
        return self._op("Add", self._op("Cast", t, to=TensorProto.FLOAT), self._float(1.0))

    def _mean(self, x: Value, weights: Value, *, root: bool = False) -> Value:
        """Σ weights·x / Σ weights over the tokens (or its square root), floored at 1e-9."""
        total = self._reduce("ReduceSum", self._op("Mul", x, weights), axis=1)  # [B,H]
        count = self._reduce("ReduceSum", weights, axis=1)  # [B,1]
        count = self._op("Max", count, self._float(1e-9))
        if root:
            count = self._op("Sqrt", count)
        return self._op("Div", total, count, width=x.width)

    def _split(self, x: Value, heads: int, hd: int) -> Value:  # [B,T,n·HD] -> [B,T,n,HD]
        return self._op("Reshape", x, self._ints([0, 0, heads, hd]))

    def _repeat_heads(self, x: Value, groups: int, target: Sequence[int]) -> Value:
        """[B,KVH,X,Y] -> `target` [B,NH,X,Y]: kv head h serves query heads h·G .. h·G+G-1
        (G = `groups` = NH/KVH), the unsqueeze, expand, reshape of transformers' repeat_kv."""
        grouped = self._op("Unsqueeze", x, self._ints([2]))  # [B,KVH,1,X,Y]
        wide = self._op("Expand", grouped, self._ints([1, 1, groups, 1, 1]))  # [B,KVH,G,X,Y]
        return self._op("Reshape", wide, self._ints(target))

    def _last_axis(self, x: Value, start: int, end: int) -> Value:  # x[..., start:end]
        return self._op("Slice", x, self._ints([start]), self._ints([end]), self._ints([-1]))

    def _rotary_tables(self, x: Value, base: float, dims: int) -> tuple[Value, Value]:
        """cos and sin [T,1,dims/2] at positions 0..T-1: domain.rotary's tables, the numpy
        engine's to the bit, stored for max_tokens positions and cut to the batch's T."""
        if self._max_tokens is None:
            msg = "rotary needs the most tokens the graph will see (text_graph's max_tokens)"
            raise ValueError(msg)
        cos, sin = rotary_tables(base, dims, self._max_tokens)  # [P, dims/2]

        def cut(table: Array, hint: str) -> Value:
            t = self._op("Shape", x, start=1, end=2)  # [1] holding T
            return self._op("Slice", self._weight(table[:, None, :], hint), self._ints([0]), t)

        key = ("rotary", repr(base), str(dims))
        cos_t = self._derive((*key, "cos"), lambda: cut(cos, "rotary_cos"))
        sin_t = self._derive((*key, "sin"), lambda: cut(sin, "rotary_sin"))
        return cos_t, sin_t

    def _score_bias(
        self, q: Value, mask: Value | None, *, causal: bool, window: int | None
    ) -> Value | None:
        """What attention scores get added: 0 where a key may be read, float32's min elsewhere."""
        if mask is None and not causal and window is None:
            return None
        key = ("bias", mask.name if mask else "", str(causal), str(window))
        return self._derive(
            key, lambda: self._record_score_bias(mask or q, mask, causal=causal, window=window)
        )

    def _record_score_bias(
        self, tokens: Value, mask: Value | None, *, causal: bool, window: int | None
    ) -> Value:
        """`tokens`: any [B,T,...] value, for T where there is no mask."""
        kept: list[Value] = []  # which keys each query may read, all of them to hold
        if mask is not None:
            real = self._op("Greater", mask, self._int(0))
            kept.append(self._op("Unsqueeze", real, self._ints([1, 2])))  # [B,1,1,T]
        if causal or window is not None:
            t = self._op("Squeeze", self._op("Shape", tokens, start=1, end=2), self._ints([0]))
            arange = self._op("Range", self._int(0), t, self._int(1))
            keys = self._op("Unsqueeze", arange, self._ints([0]))  # [1,T]
            queries = self._op("Unsqueeze", arange, self._ints([1]))  # [T,1]
            offsets = self._op("Sub", keys, queries)  # [T,T]: j - i
            if causal:  # no key after its query
                kept.append(self._op("Not", self._op("Greater", offsets, self._int(0))))
            if window is not None:
                kept.append(self._op("Less", self._op("Abs", offsets), self._int(window)))
        keep = functools.reduce(lambda a, b: self._op("And", a, b), kept)  # [B|1,1,1|T,T]
        return self._op("Where", keep, self._float(0.0), self._float(_NEG))

    def _fused_attention(  # noqa: PLR0913 - the attention signature
        self,
        q: Value,
        k: Value,
        v: Value,
        mask: Value | None,
        heads: int,
        *,
        causal: bool,
        bias: Value | None,
        scale: float | None,
    ) -> Value | None:
        """ONNX Runtime's Attention kernel: the q, k, v projections as one [H,3H] GEMM, then
        attention over the padding mask (int32 [B,T]) and a score bias (its `attention_bias`
        input, [1,NH,T,T]), scores times `scale`; the three linears are left unused.

        None where q, k and v are not linears of one input: the written-out form serves then
        (as it does for grouped kv heads and windows, which the kernel does not take).
        """
        sources = [self._linears.get(x.name) for x in (q, k, v)]
        found = [s for s in sources if s is not None]
        if len(found) != len(sources) or len({x.name for x, _ in found}) != 1:
            return None
        self.uses_contrib_ops = True
        weight = np.concatenate([w.weight for _, w in found]).T  # [H,3H]
        qkv_bias = np.concatenate([w.bias for _, w in found])  # [3H]
        padding: Value | str = ""  # none: every position is real
        if mask is not None:
            padding = self._derive(
                ("int32", mask.name), lambda: self._op("Cast", mask, to=TensorProto.INT32)
            )
        inputs: list[Value | str] = [found[0][0], self._weight(weight, "qkv")]
        inputs += [self._weight(qkv_bias, "qkv"), padding]
        if bias is not None:
            inputs += ["", bias]  # no past state; then attention_bias
        return self._op(
            "Attention",
            *inputs,
            domain=_MS,
            num_heads=heads,
            unidirectional=int(causal),
            width=q.width,
            **({} if scale is None else {"scale": scale}),
        )


def _live(nodes: Sequence[onnx.NodeProto], output: str) -> list[onnx.NodeProto]:
    """The nodes `output` depends on, in recording order."""
    producer = {out: n for n, node in enumerate(nodes) for out in node.output}
    needed, stack = set(), [output]
    while stack:
        n = producer.get(stack.pop())
        if n is None or n in needed:
            continue
        needed.add(n)
        stack.extend(nodes[n].input)
    return [node for n, node in enumerate(nodes) if n in needed]


def initializer_bytes(model: onnx.ModelProto) -> int:
    return sum(len(init.raw_data) for init in model.graph.initializer)


# --- whole graphs ---------------------------------------------------------------------------------

TextForward = Callable[[Ops[Value], Value, Value], Value]
ImageForward = Callable[[Ops[Value], Value], Value]


def text_graph(
    forward: TextForward,
    name: str,
    *,
    attention: AttentionKind = "onnx",
    max_tokens: int | None = None,
) -> onnx.ModelProto:
    """`forward` recorded from input_ids and attention_mask, int64 [batch, tokens] each, for
    rows of at most `max_tokens` (the rotary tables' length; needed only where rotary is)."""
    ops = OnnxOps(attention=attention, max_tokens=max_tokens)
    ids, mask = Value("input_ids"), Value("attention_mask")
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
    ]
    return ops.model(inputs, forward(ops, ids, mask), name)


def image_graph(
    forward: ImageForward, name: str, channels: int, size: int, *, attention: AttentionKind = "onnx"
) -> onnx.ModelProto:
    """`forward` recorded from pixel_values, float32 [batch, channels, size, size]."""
    ops = OnnxOps(attention=attention)
    inputs = [
        helper.make_tensor_value_info(
            "pixel_values", TensorProto.FLOAT, ["batch", channels, size, size]
        )
    ]
    return ops.model(inputs, forward(ops, Value("pixel_values")), name)
