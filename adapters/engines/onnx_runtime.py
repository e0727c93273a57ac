"""ONNX Runtime running the recorded graph of a model (adapters/engines/onnx_graph.py).

fp32 on any execution provider ONNX Runtime has here: CPU always; CUDA where onnxruntime-gpu
is installed. A provider asked for but missing is reported as the model being unavailable on
this engine, never silently replaced by another.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from safetensors import SafetensorError

from adapters.engines.graph_cache import GraphCache
from adapters.engines.model_graphs import graph_encoder, load_graphs
from adapters.engines.onnx_graph import AttentionKind
from adapters.families import GRAPH_FAMILIES
from domain.errors import ModelUnavailable
from domain.models import ModelSpec
from domain.ops import Array
from domain.ports import Encoder

# ONNX Runtime (1.2x on Linux) writes a device id and a telemetry database under
# ~/.cache/Microsoft/DeveloperTools when it is imported, unless this is set first: the server
# writes only under --home. setdefault: whoever sets it themselves decides.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
import onnxruntime as ort  # type: ignore[import-untyped]

__all__ = ["OnnxRuntimeEngine"]

# ONNX Runtime's optimizer does not fuse written-out attention; its own kernel, with q, k and v
# in one GEMM, ran ~8% faster (docs/adr/0004-one-graph-two-runtimes.md)
_ATTENTION: AttentionKind = "com.microsoft"
# what InferenceSession raises for a file it cannot parse or a graph it cannot build
_UNREADABLE = (
    ort.capi.onnxruntime_pybind11_state.Fail,
    ort.capi.onnxruntime_pybind11_state.InvalidProtobuf,
    ort.capi.onnxruntime_pybind11_state.InvalidGraph,
    ort.capi.onnxruntime_pybind11_state.NoSuchFile,
)

# a run with this option frees the arena's chunks that nothing holds once it ends
_SHRINK = ort.RunOptions()
_SHRINK.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
_ONE_TOKEN = {
    "input_ids": np.zeros((1, 1), dtype=np.int64),
    "attention_mask": np.ones((1, 1), dtype=np.int64),
}


class OnnxRuntimeEngine:
    name = "onnxruntime"
    families = GRAPH_FAMILIES

    def __init__(
        self,
        cache_dir: Path,
        *,
        providers: Sequence[str] = ("CPUExecutionProvider",),
        threads: int | None = None,
    ) -> None:
        self._cache = GraphCache(cache_dir)
        self._providers = tuple(providers)
        self._threads = threads

    def load(self, spec: ModelSpec, folder: Path) -> Encoder | ModelUnavailable:
        return self._load(spec, folder, fresh=False)

    def rebuild(self, spec: ModelSpec, folder: Path) -> Encoder | ModelUnavailable:
        """As `load`, with the graphs recorded again from the weights (application.engine_choice
        asks when a cached graph fails the parity gate)."""
        return self._load(spec, folder, fresh=True)

    def _load(self, spec: ModelSpec, folder: Path, *, fresh: bool) -> Encoder | ModelUnavailable:
        missing = [p for p in self._providers if p not in ort.get_available_providers()]
        if missing:
            return ModelUnavailable(
                spec.qualified_name,
                f"ONNX Runtime here has no {', '.join(missing)} "
                f"(it has {', '.join(ort.get_available_providers())})",
            )
        try:
            graphs = load_graphs(
                spec,
                folder,
                self._cache,
                attention=_ATTENTION,
                compile_graph=self._session,
                unreadable=_UNREADABLE,
                fresh=fresh,
            )
            fallen_back = [p for p in self._providers if p not in graphs.text.get_providers()]
            if fallen_back:  # e.g. CUDA listed, but its libraries failed to load
                return ModelUnavailable(
                    spec.qualified_name, f"ONNX Runtime could not start {', '.join(fallen_back)}"
                )
            # a session takes calls from several threads at once
            return graph_encoder(folder, graphs, _Runner, _width(graphs.text), overlaps_passes=True)
        except (OSError, ValueError, KeyError, TypeError, SafetensorError, *_UNREADABLE) as exc:
            return ModelUnavailable(spec.qualified_name, str(exc))

    def _session(self, path: Path) -> ort.InferenceSession:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self._threads is not None:
            options.intra_op_num_threads = self._threads
        options.log_severity_level = 3  # errors only: the cache's own retries are expected
        return ort.InferenceSession(str(path), options, providers=list(self._providers))


class _Runner:
    def __init__(self, session: ort.InferenceSession) -> None:
        self._session = session

    def __call__(self, feeds: Mapping[str, np.ndarray]) -> Array:
        out: Array = self._session.run(["embeddings"], dict(feeds))[0]
        return out

    def release(self) -> None:
        """The arena keeps every chunk it grew to; ONNX Runtime shrinks it only at the end of a
        run that asks, so the smallest run asks (a pass over one token: ~1 ms)."""
        names = {i.name for i in self._session.get_inputs()}
        if names == set(_ONE_TOKEN):  # a text graph; an image graph's arena stays as it is
            self._session.run(["embeddings"], dict(_ONE_TOKEN), _SHRINK)


def _width(session: ort.InferenceSession) -> int:
    return int(session.get_outputs()[0].shape[1])
