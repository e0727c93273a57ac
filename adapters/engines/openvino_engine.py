"""OpenVINO running the recorded graph of a model (adapters/engines/onnx_graph.py).

OpenVINO reads the ONNX file itself. The precision is always set, never left to the device:
OpenVINO's CPU plugin picks bf16 by itself on CPUs with AMX, so fp32 must ask for f32. bf16 is
offered only where the CPU multiplies bf16 natively (OPTIMIZATION_CAPABILITIES lists BF16);
elsewhere OpenVINO would emulate it, slower than fp32, and the load says so instead.
One stream with a latency hint: the server runs one forward pass at a time (docs/adr/0004).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from safetensors import SafetensorError

from adapters.engines.graph_cache import GraphCache
from adapters.engines.model_graphs import graph_encoder, load_graphs
from adapters.engines.onnx_graph import AttentionKind
from adapters.families import GRAPH_FAMILIES
from adapters.mapped_files import drop_resident_pages
from domain.errors import ModelUnavailable
from domain.models import ModelSpec
from domain.ops import Array
from domain.ports import Encoder

# `import openvino` imports its model converter (openvino.tools.ovc) if it can, and the
# converter's import starts OpenVINO's telemetry: it writes ~/intel/openvino_ga_cid and
# ~/intel/stats, and sends an "import" event. The server only reads ONNX files, which the
# runtime does without the converter, and writes only under --home: the converter is kept out
# (openvino/__init__.py skips it on ImportError, which a None in sys.modules raises).
if "openvino.tools.ovc" not in sys.modules:
    sys.modules["openvino.tools.ovc"] = None  # type: ignore[assignment]  # a blocked import
import openvino as ov  # type: ignore[import-untyped]

__all__ = ["OpenVinoEngine", "Precision"]

Precision = Literal["fp32", "bf16"]

_ATTENTION: AttentionKind = "onnx"  # standard ops only: OpenVINO fuses them itself
_HINTS: Mapping[Precision, ov.Type] = {"fp32": ov.Type.f32, "bf16": ov.Type.bf16}
# OpenVINO reports a file it cannot read, or a graph it cannot compile, as RuntimeError
_UNREADABLE = (RuntimeError,)


class OpenVinoEngine:
    families = GRAPH_FAMILIES

    def __init__(
        self,
        cache_dir: Path,
        *,
        device: str = "CPU",
        threads: int | None = None,
        precision: Precision = "fp32",
    ) -> None:
        self._cache = GraphCache(cache_dir)
        self._device = device
        self._threads = threads
        self._precision: Precision = precision
        self._core = ov.Core()

    @property
    def name(self) -> str:
        return "openvino" if self._precision == "fp32" else f"openvino-{self._precision}"

    def load(self, spec: ModelSpec, folder: Path) -> Encoder | ModelUnavailable:
        return self._load(spec, folder, fresh=False)

    def rebuild(self, spec: ModelSpec, folder: Path) -> Encoder | ModelUnavailable:
        """As `load`, with the graphs recorded again from the weights (application.engine_choice
        asks when a cached graph fails the parity gate)."""
        return self._load(spec, folder, fresh=True)

    def _load(self, spec: ModelSpec, folder: Path, *, fresh: bool) -> Encoder | ModelUnavailable:
        refused = self._refusal()
        if refused is not None:
            return ModelUnavailable(spec.qualified_name, refused)
        try:
            graphs = load_graphs(
                spec,
                folder,
                self._cache,
                attention=_ATTENTION,
                compile_graph=self._compile,
                unreadable=_UNREADABLE,
                fresh=fresh,
            )
            # a compiled model keeps kernels and buffers for every shape it runs (its runtime
            # cache holds 5,000 entries): ~1 MB a shape for all-MiniLM-L6-v2, whose server
            # kept ~110 MB more after mixed load than before it (bench/memory_under_load.py)
            return graph_encoder(folder, graphs, _Runner, _width(graphs.text), keeps_shapes=True)
        except (OSError, ValueError, KeyError, TypeError, SafetensorError, RuntimeError) as exc:
            return ModelUnavailable(spec.qualified_name, str(exc))

    def _refusal(self) -> str | None:
        """Why this engine cannot run here, or None."""
        if self._device not in self._core.available_devices:
            devices = ", ".join(self._core.available_devices)
            return f"OpenVINO has no {self._device} device here (it has {devices})"
        if self._precision == "bf16":
            capabilities = self._core.get_property(self._device, "OPTIMIZATION_CAPABILITIES")
            if "BF16" not in capabilities:
                return (
                    f"OpenVINO's {self._device} here does not compute in bf16 natively "
                    f"(it offers {', '.join(capabilities)}); use fp32"
                )
        return None

    def _compile(self, path: Path) -> ov.CompiledModel:
        config: dict[str, Any] = {
            "INFERENCE_PRECISION_HINT": _HINTS[self._precision],
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1,
        }
        if self._threads is not None:
            config["INFERENCE_NUM_THREADS"] = self._threads
        compiled = self._core.compile_model(str(path), self._device, config)
        # compiling read every weight; a pass reads under half of them, in place: the rest of
        # the mapped file need not stay resident (adapters/mapped_files.py)
        drop_resident_pages(GraphCache.weights_file(path))
        applied = compiled.get_property("INFERENCE_PRECISION_HINT")
        if applied != _HINTS[self._precision]:  # a device that ignores the hint: never guess
            msg = f"OpenVINO ran at {applied}, not {_HINTS[self._precision]}"
            raise ValueError(msg)
        return compiled


class _Runner:
    """One infer request, one caller at a time: requests are not safe to share."""

    def __init__(self, compiled: ov.CompiledModel) -> None:
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        self._lock = threading.Lock()

    def __call__(self, feeds: Mapping[str, np.ndarray]) -> Array:
        with self._lock:
            self._request.infer(dict(feeds))
            out: Array = np.array(self._request.get_output_tensor(0).data, dtype=np.float32)
        return out

    def release(self) -> None:
        # the compiled model keeps the intermediate buffers of its largest shape so far
        with self._lock:
            self._compiled.release_memory()


def _width(compiled: ov.CompiledModel) -> int:
    return int(compiled.output(0).get_partial_shape()[1].get_length())
