"""int8 for all-MiniLM-L6-v2, tried honestly (issue 6): speed and fidelity of each variant.

The issue's rule: int8 is not offered unless a variant keeps MIN cosine >= 0.999 to the fp32
vectors over the benchmark corpus. This script builds the quantized variants that
onnxruntime.quantization can make from embedserve's own recorded graphs, runs each over the
corpus (bench/corpus.py, the texts bench/engine_throughput.py embeds), and reports texts/s as
a ratio to the fp32 ONNX Runtime graph (the server's own, com.microsoft Attention) timed in
the same run, and the min / mean cosine of each variant's vectors to that graph's vectors.

Variants (weights of the linears: q, k, v, attention output, FFN intermediate and output):
- dynamic (quantize_dynamic: weights int8 offline, activations uint8 per tensor at run time),
  per-tensor or per-channel weights, s8 or u8 (ONNX Runtime's u8s8 kernel can saturate on
  AVX2 without VNNI; u8u8 cannot), on the standard-ops graph (the OpenVINO one), and on the
  com.microsoft graph (Attention -> QAttention, after ONNX Runtime's shape-inference pass);
- dynamic with some linears left fp32: the FFN, the attention (q, k, v, output), all but
  q, k, v, or the first and last layers;
- static QDQ (quantize_static, per-channel s8 weights, u8 activations calibrated MinMax on
  corpus texts outside the evaluated ones);
- a diagnostic, not a candidate: the weights rounded to int8 per channel and back, computed in
  fp32: the error that int8 weights alone bring, whatever is done about activations.
`--all` adds what a first run (128 texts, 32 calibration texts, load ~7) found no better:
per-channel with reduce_range, QAttention with s8 weights, all but the FFN output linear int8,
static QDQ calibrated by Percentile 99.999, the static QDQ files run by OpenVINO, and the fp32
standard-ops graph on ONNX Runtime and on OpenVINO.

All sessions are loaded in this process; the corpus's length-sorted batches of 32 go in a
fixed shuffled order, and every session runs each batch in turn (the order rotates by batch,
with a short pause between turns), so a shared machine's changing load falls on all alike.

    .venv/bin/python bench/int8_trials.py [--texts 1024] [--calibration 200] [--all]
        [--out bench/int8_results.md]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

_ROOT = Path(__file__).resolve().parent.parent
_BENCH = Path(__file__).resolve().parent
for _p in (_ROOT, _BENCH):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from engine_throughput import batches_of, minilm  # noqa: E402 - after the path is set

__all__ = ["Variant", "main"]

THRESHOLD = 0.999  # the bar: min cosine over the corpus
_SHUFFLE_SEED = 7
_SETTLE_S = 0.05  # between turns: the last session's spinning threads go to sleep
_BASELINE = "fp32 ORT graph (com.microsoft Attention)"
Feeds = dict[str, np.ndarray]


@dataclass(slots=True)
class Variant:
    name: str
    runtime: str = "ort"  # "ort" or "openvino"
    path: Path | None = None
    note: str = ""
    error: str = ""
    build_s: float = 0.0
    candidate: bool = True  # False: a diagnostic, not something that could ship
    run: Callable[[Feeds], np.ndarray] | None = None
    seconds: float = 0.0
    vectors: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# --- the graphs -------------------------------------------------------------------------------


def _graph(attention: str, cache: Path) -> Path:
    """The recorded graph file of all-MiniLM-L6-v2, as the engines record and cache it."""
    from adapters.engines.graph_cache import GraphCache
    from adapters.engines.model_graphs import load_graphs

    spec, folder = minilm()
    graphs = load_graphs(
        spec,
        folder,
        GraphCache(cache),
        attention=attention,  # type: ignore[arg-type]
        compile_graph=lambda path: path,
        unreadable=(),
    )
    return graphs.text


def _linears(path: Path) -> dict[str, list[str]]:
    """The standard-ops graph's weight MatMuls by role, in layer order.

    A layer records six, in this order (domain/architectures/bert.py): query, key, value,
    attention output, FFN intermediate ([384,1536]) and FFN output ([1536,384]); the two
    attention MatMuls between them multiply activations and have no weight."""
    model = onnx.load(str(path), load_external_data=False)
    weights = {i.name for i in model.graph.initializer}
    names = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in weights]
    if len(names) % 6:
        msg = f"{len(names)} weight MatMuls: not six a layer"
        raise ValueError(msg)
    layers = [names[i : i + 6] for i in range(0, len(names), 6)]
    return {
        "all": names,
        "qkv": [n for layer in layers for n in layer[:3]],
        "attention": [n for layer in layers for n in layer[:4]],  # q, k, v and output
        "ffn": [n for layer in layers for n in layer[4:]],
        "ffn_out": [layer[5] for layer in layers],
        "first_last": layers[0] + layers[-1],
    }


def _fake_quant_weights(src: Path, dst: Path, names: Sequence[str]) -> None:
    """Each named MatMul's weight rounded to symmetric int8 per output channel, and back."""
    model = onnx.load(str(src))
    wanted = {n.input[1] for n in model.graph.node if n.name in set(names)}
    for init in model.graph.initializer:
        if init.name in wanted:
            w = numpy_helper.to_array(init)  # [in, out]
            scale = np.maximum(np.abs(w).max(axis=0, keepdims=True), 1e-12) / 127.0
            q = np.clip(np.round(w / scale), -127, 127) * scale
            init.CopyFrom(numpy_helper.from_array(q.astype(np.float32), init.name))
    onnx.save_model(model, str(dst))


class _Reader:
    """Calibration feeds for quantize_static: the calibration texts, batched as the server."""

    def __init__(self, feeds: Sequence[Feeds]) -> None:
        self._feeds = list(feeds)
        self._at = 0

    def get_next(self) -> Feeds | None:
        if self._at >= len(self._feeds):
            return None
        self._at += 1
        return self._feeds[self._at - 1]

    def rewind(self) -> None:
        self._at = 0


def _build(  # noqa: C901, PLR0913 - one plan of variants; the graphs, folder and switch
    std: Path,
    ms: Path,
    work: Path,
    calibration: Sequence[Feeds],
    *,
    everything: bool,
    log: Callable[[str], None],
) -> list[Variant]:
    """Every variant, built (or failed, with the reason) into `work`; `everything` adds those
    that a first, smaller run found no better (the module's docstring lists them)."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_dynamic,
        quantize_static,
    )

    roles = _linears(std)
    every = set(roles["all"])
    s8, u8 = QuantType.QInt8, QuantType.QUInt8

    def dyn(nodes: Sequence[str], **kw: Any) -> Callable[[Path], None]:
        return lambda out: quantize_dynamic(
            std, out, op_types_to_quantize=["MatMul"], nodes_to_quantize=nodes, **kw
        )

    def qattention(weights: QuantType) -> Callable[[Path], None]:
        def make(out: Path) -> None:
            # the contrib Attention node needs ONNX Runtime's symbolic shape inference first
            pre = out.with_suffix(".pre.onnx")
            quant_pre_process(ms, pre, skip_optimization=True)
            quantize_dynamic(
                pre, out, op_types_to_quantize=["MatMul", "Attention"], weight_type=weights
            )

        return make

    def static(method: CalibrationMethod, **extra: Any) -> Callable[[Path], None]:
        def make(out: Path) -> None:
            quantize_static(
                std,
                out,
                _Reader(calibration),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=["MatMul"],
                nodes_to_quantize=roles["all"],
                per_channel=True,
                activation_type=u8,
                weight_type=s8,
                calibrate_method=method,
                extra_options={"MatMulConstBOnly": True, **extra},
            )

        return make

    def keep(role: str) -> list[str]:
        return sorted(every - set(roles[role]))

    calibrated = f"u8 activations, s8 weights; calibrated on {len(calibration)} batches"
    plan: list[tuple[str, str, Callable[[Path], None], bool]] = [  # name, note, build, core
        ("dyn per-tensor s8, all linears", "ORT's defaults", dyn(roles["all"]), True),
        (
            "dyn per-tensor u8, all linears",
            "u8 weights (no u8s8 saturation on AVX2)",
            dyn(roles["all"], weight_type=u8),
            True,
        ),
        (
            "dyn per-tensor u8, all linears + QAttention",
            "com.microsoft graph, Attention -> QAttention",
            qattention(u8),
            True,
        ),
        (
            "dyn per-tensor s8, all linears + QAttention",
            "com.microsoft graph, Attention -> QAttention",
            qattention(s8),
            False,
        ),
        ("dyn per-channel s8, all linears", "", dyn(roles["all"], per_channel=True), True),
        (
            "dyn per-channel u8, all linears",
            "",
            dyn(roles["all"], per_channel=True, weight_type=u8),
            True,
        ),
        (
            "dyn per-channel s8, reduce_range",
            "7-bit weights",
            dyn(roles["all"], per_channel=True, reduce_range=True),
            False,
        ),
        (
            "dyn per-channel s8, FFN fp32",
            "q, k, v, attention output int8",
            dyn(roles["attention"], per_channel=True),
            True,
        ),
        (
            "dyn per-channel s8, attention fp32",
            "the FFN's two linears int8",
            dyn(roles["ffn"], per_channel=True),
            True,
        ),
        (
            "dyn per-channel s8, FFN output fp32",
            "all but the 1536->384 linear int8",
            dyn(keep("ffn_out"), per_channel=True),
            False,
        ),
        (
            "dyn per-channel s8, q/k/v only",
            "attention output and FFN fp32",
            dyn(roles["qkv"], per_channel=True),
            True,
        ),
        (
            "dyn per-channel s8, first+last layer fp32",
            "layers 2-5 int8",
            dyn(keep("first_last"), per_channel=True),
            True,
        ),
        (
            "static QDQ per-channel, MinMax",
            calibrated,
            static(CalibrationMethod.MinMax),
            True,
        ),
        (
            "static QDQ per-channel, Percentile 99.999",
            calibrated,
            static(CalibrationMethod.Percentile, CalibPercentile=99.999),
            False,
        ),
    ]
    variants = [
        Variant(_BASELINE, path=ms, note="the server's ONNX Runtime graph: the reference"),
    ]
    if everything:
        variants.append(Variant("fp32 standard-ops graph on ORT", path=std, note="int8's source"))
    diag = Variant(
        "diagnostic: weights int8 per-channel, fp32 compute",
        path=work / "fake-weights.onnx",
        note="weights rounded to int8 and back: the weights' error alone, no speed-up",
        candidate=False,
    )
    assert diag.path is not None
    _fake_quant_weights(std, diag.path, roles["all"])
    variants.append(diag)
    for n, (name, note, make, core) in enumerate(plan):
        if not (core or everything):
            continue
        variant = Variant(name, path=work / f"v{n:02d}.onnx", note=note)
        started = time.perf_counter()
        try:
            assert variant.path is not None
            make(variant.path)
        except Exception as exc:  # noqa: BLE001 - a variant that fails to build is a result
            variant.error = f"build failed: {type(exc).__name__}: {str(exc)[:200]}"
        variant.build_s = time.perf_counter() - started
        log(f"  built {name} in {variant.build_s:.1f} s {variant.error}")
        variants.append(variant)
    if everything:  # OpenVINO reads the QDQ file itself and runs int8 kernels
        qdq = [v for v in variants if v.name.startswith("static") and not v.error]
        variants += [
            Variant(f"{v.name} on OpenVINO", runtime="openvino", path=v.path, note=v.note)
            for v in qdq
        ]
        variants.insert(
            2, Variant("fp32 standard-ops graph on OpenVINO", runtime="openvino", path=std)
        )
    return variants


# --- running ---------------------------------------------------------------------------------


def _ort_runner(path: Path) -> Callable[[Feeds], np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()  # as adapters/engines/onnx_runtime.py sets them
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(feeds: Feeds) -> np.ndarray:
        return np.asarray(session.run(["embeddings"], feeds)[0], dtype=np.float32)

    return run


def _openvino_runner(path: Path) -> Callable[[Feeds], np.ndarray]:
    import openvino as ov

    core = ov.Core()  # as adapters/engines/openvino_engine.py sets it, fp32
    config = {
        "INFERENCE_PRECISION_HINT": ov.Type.f32,
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
    }
    request = core.compile_model(str(path), "CPU", config).create_infer_request()

    def run(feeds: Feeds) -> np.ndarray:
        request.infer(feeds)
        return np.array(request.get_output_tensor(0).data, dtype=np.float32)

    return run


def _load(variants: Sequence[Variant], warm: Sequence[Feeds]) -> None:
    for v in variants:
        if v.error or v.path is None:
            continue
        try:
            v.run = (_openvino_runner if v.runtime == "openvino" else _ort_runner)(v.path)
            for feeds in warm:  # first calls allocate and plan
                v.run(feeds)
        except Exception as exc:  # noqa: BLE001 - a variant that fails to load is a result
            v.error = f"load failed: {type(exc).__name__}: {str(exc)[:200]}"
            v.run = None


def _interleaved(
    variants: Sequence[Variant], batches: Sequence[list[int]], feeds: Sequence[Feeds], n: int
) -> None:
    """Every batch through every variant in turn, order rotating by batch; vectors kept."""
    live = [v for v in variants if v.run is not None]
    for v in live:
        v.vectors = np.zeros((n, 384), dtype=np.float32)
    order = random.Random(_SHUFFLE_SEED).sample(range(len(batches)), len(batches))
    for turn, k in enumerate(order):
        rotated = live[turn % len(live) :] + live[: turn % len(live)]
        for v in rotated:
            assert v.run is not None
            assert v.vectors is not None
            started = time.perf_counter()
            out = v.run(feeds[k])
            v.seconds += time.perf_counter() - started
            v.vectors[batches[k]] = out
            time.sleep(_SETTLE_S)


def _cosines(ours: np.ndarray, reference: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1)
    cos: np.ndarray = (ours * reference).sum(axis=1) / np.maximum(norms, 1e-30)
    return cos


def _short(text: str, width: int = 60) -> str:
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _table(variants: Sequence[Variant], texts: Sequence[str]) -> list[str]:
    base = variants[0]
    assert base.vectors is not None
    base_rate = len(texts) / base.seconds
    rows = [
        (
            "| variant | texts/s | ratio to fp32 ORT | min cosine | mean cosine "
            f"| texts < {THRESHOLD} (of {len(texts)}) | min at (text, tokens) "
            f"| >= {THRESHOLD} | note |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for v in variants:
        if v.vectors is None:
            rows.append(f"| {v.name} | | | | | | | n/a | {v.error or 'not run'} |")
            continue
        rate = len(texts) / v.seconds
        cos = _cosines(v.vectors, base.vectors)
        worst = int(np.argmin(cos))
        below = int((cos < THRESHOLD).sum())
        met = "yes" if cos.min() >= THRESHOLD else "NO"
        if not v.candidate:
            met = f"({met}, diagnostic)"
        where = f"{_short(texts[worst])} ({v.extra['lengths'][worst]})"
        built = f"built in {v.build_s:.0f} s" if v.build_s >= 1 else ""
        note = "; ".join(part for part in (v.note, built) if part)
        rows.append(
            f"| {v.name} | {rate:.1f} | {rate / base_rate:.2f}x | {cos.min():.4f} | "
            f"{cos.mean():.5f} | {below} | {where} | {met} | {note} |"
        )
    return rows


def main() -> None:  # noqa: PLR0915 - one straight run, start to report
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=1024, help="evaluated corpus texts")
    parser.add_argument(
        "--calibration", type=int, default=200, help="calibration texts (not evaluated)"
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="also the variants a first run showed to add nothing, OpenVINO and Percentile",
    )
    parser.add_argument("--out", type=Path, help="also write the report (markdown) here")
    args = parser.parse_args()

    from corpus import corpus, fingerprint

    from adapters.tokenizers.by_family import load_tokenizer
    from application.batching import pad
    from domain.errors import ModelUnavailable

    started = time.perf_counter()
    load_start = os.getloadavg()
    log = print
    pool = corpus(args.texts + 4 * args.calibration)  # a prefix of it is corpus(args.texts)
    texts = pool[: args.texts]
    seen = set(texts)
    calib: list[str] = []
    for t in pool[args.texts :]:
        if t not in seen and len(calib) < args.calibration:
            calib.append(t)
            seen.add(t)
    spec, folder = minilm()
    tokenizer = load_tokenizer(spec, folder)
    if isinstance(tokenizer, ModelUnavailable):
        raise SystemExit(str(tokenizer))

    def batched(items: Sequence[str]) -> tuple[list[list[int]], list[Feeds], list[int]]:
        rows = [e.ids for e in tokenizer.encode(list(items))]
        lengths = [len(r) for r in rows]
        plan = batches_of(lengths, ordered=True)  # length-sorted batches of 32
        feeds = []
        for batch in plan:
            ids, mask = pad([rows[i] for i in batch])
            feeds.append({"input_ids": ids, "attention_mask": mask})
        return plan, feeds, lengths

    batches, feeds, lengths = batched(texts)
    _, calib_feeds, _ = batched(calib)
    log(
        f"corpus: {len(texts)} texts (fingerprint {fingerprint(texts)}), {len(batches)} "
        f"batches of 32; calibration: {len(calib)} other texts; load {load_start[0]:.1f}"
    )
    with tempfile.TemporaryDirectory(prefix="embedserve-int8-") as tmp:
        work = Path(tmp)
        std = _graph("onnx", work / "graphs")
        ms = _graph("com.microsoft", work / "graphs")
        log("building variants")
        variants = _build(
            std,
            ms,
            work,
            calib_feeds,
            everything=args.all,
            log=log,
        )
        log(f"loading {len(variants)} sessions")
        _load(variants, [feeds[0], feeds[len(feeds) // 2]])
        log("timing, interleaved")
        timed_at = time.perf_counter()
        _interleaved(variants, batches, feeds, len(texts))
        timed_s = time.perf_counter() - timed_at
    load_end = os.getloadavg()
    for v in variants:
        v.extra["lengths"] = lengths
    import onnxruntime

    lines = [
        "# int8 trials: all-MiniLM-L6-v2 (issue 6)",
        "",
        f"- command: `.venv/bin/python bench/int8_trials.py {' '.join(sys.argv[1:])}`".rstrip(),
        (
            f"- corpus: bench/corpus.py, {len(texts)} texts (fingerprint {fingerprint(texts)}), "
            f"length-sorted batches of 32; {len(calib)} calibration texts outside them"
        ),
        (
            f"- onnxruntime {onnxruntime.__version__}, onnx {onnx.__version__}, "
            f"{os.cpu_count()} CPUs; cosines are to the first row's vectors"
        ),
        (
            f"- load average (1/5/15 min) at start {'/'.join(f'{x:.1f}' for x in load_start)}, "
            f"at end {'/'.join(f'{x:.1f}' for x in load_end)}; timed part {timed_s:.0f} s, "
            f"whole run {time.perf_counter() - started:.0f} s"
        ),
        "",
        *_table(variants, texts),
        "",
    ]
    base = variants[0].vectors
    passing = [
        v.name
        for v in variants[1:]
        if v.candidate
        and v.vectors is not None
        and base is not None
        and v.path != variants[0].path
        and not v.name.startswith("fp32")
        and _cosines(v.vectors, base).min() >= THRESHOLD
    ]
    lines.append(
        f"int8 variants reaching min cosine >= {THRESHOLD}: {', '.join(passing) or 'none'}."
    )
    report = "\n".join(lines)
    print(report)
    if args.out:
        args.out.write_text(report + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
