"""A model folder as recorded graphs: what the graph engines (ONNX Runtime, OpenVINO) share.

Which forward pass is recorded from which reading of the folder (the family tables say:
adapters/families.py and domain/families.py); which files key the cached graph; and the Encoder
over compiled graphs. The engines differ only in how a
graph file becomes something that runs (`compile_graph`, `runner`) and in the exceptions that
mean "this file is unreadable" (a truncated cache entry, recorded again).

Both runtimes keep the working memory of the largest pass they ran (ONNX Runtime's arena,
OpenVINO's intermediate buffers): ~200 MB for all-MiniLM-L6-v2 after one pass of 8,192 tokens.
The encoder gives it back when the model is idle (`release_memory`), if a large pass ran since.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import onnx
from safetensors import safe_open

from adapters.engines.graph_cache import GraphCache, GraphKey
from adapters.engines.onnx_graph import (
    GRAPH_BUILDER_VERSION,
    AttentionKind,
    Value,
    image_graph,
    text_graph,
)
from adapters.families import FAMILY_READERS, GRAPH_FAMILIES
from adapters.heap import give_back_freed_memory
from adapters.weights.images import ClipImageProcessor, read_clip_image_processor
from adapters.weights.model_folder import read_json
from domain.architectures.clip import ClipConfig
from domain.errors import InvalidInput
from domain.families import FAMILIES
from domain.models import ModelSpec
from domain.ops import Array, IdArray, Ops

__all__ = ["GraphEncoder", "GraphImages", "Runner", "graph_encoder", "load_graphs"]

_WEIGHTS = "model.safetensors"

C = TypeVar("C")  # a runtime's compiled graph
# below this many padded tokens a pass keeps a few MB: not worth giving back and taking again
LARGE_PASS_TOKENS = 1024


class Runner(Protocol):
    """A compiled graph, run: feeds by input name -> `embeddings`."""

    def __call__(self, feeds: Mapping[str, np.ndarray]) -> Array: ...

    def release(self) -> None:
        """Gives back the working memory the runtime kept from earlier runs."""
        ...


@dataclass(frozen=True, slots=True)
class LoadedGraphs(Generic[C]):
    text: C
    vision: C | None
    clip: ClipConfig | None  # for the image side: tokens per image, preprocessing size


class GraphEncoder:
    """A loaded model on a graph engine: padded ids in, the graph's `embeddings` out."""

    def __init__(
        self,
        dimensions: int,
        run: Runner,
        images: GraphImages | None = None,
        *,
        overlaps_passes: bool = False,
        keeps_shapes: bool = False,
    ) -> None:
        self.dimensions = dimensions
        self.images = images
        self.overlaps_passes = overlaps_passes  # whether `run` may be called on two threads at once
        self.keeps_shapes = keeps_shapes  # whether `run` keeps state for every shape it ran
        self._run = run
        self._large = False  # a large pass ran since the last release

    def release_memory(self) -> None:
        if self._large:
            self._large = False
            self._run.release()
            give_back_freed_memory()  # what the runtime freed, from the heap to the system

    def embed(self, ids: IdArray, mask: IdArray) -> Array:
        self._large = self._large or ids.size >= LARGE_PASS_TOKENS
        feeds = {
            "input_ids": np.ascontiguousarray(ids, dtype=np.int64),
            "attention_mask": np.ascontiguousarray(mask, dtype=np.int64),
        }
        return self._run(feeds)


class GraphImages:
    """CLIP's vision graph behind the model's own image preprocessing."""

    def __init__(self, tokens: int, processor: ClipImageProcessor, run: Runner) -> None:
        self.tokens = tokens
        self._processor = processor
        self._run = run

    def prepare(self, data: bytes) -> Array | InvalidInput:
        return self._processor.prepare(data)

    def embed(self, pixels: Array) -> Array:
        return self._run({"pixel_values": np.ascontiguousarray(pixels, dtype=np.float32)})


def graph_encoder(  # noqa: PLR0913 - the model, and what its runtime allows
    folder: Path,
    graphs: LoadedGraphs[C],
    runner: Callable[[C], Runner],
    dimensions: int,
    *,
    overlaps_passes: bool = False,
    keeps_shapes: bool = False,
) -> GraphEncoder:
    """The Encoder over a model's compiled graphs; CLIP's images prepared as numpy's are.
    `overlaps_passes`: the runner may be called on two threads at once; `keeps_shapes`: it keeps
    state for every input shape it has run (domain.ports.KeepsShapes)."""
    images = None
    if graphs.vision is not None and graphs.clip is not None:
        processor = read_clip_image_processor(folder, graphs.clip.image_size)
        images = GraphImages(graphs.clip.image_tokens, processor, runner(graphs.vision))
    return GraphEncoder(
        dimensions,
        runner(graphs.text),
        images,
        overlaps_passes=overlaps_passes,
        keeps_shapes=keeps_shapes,
    )


def load_graphs(  # noqa: PLR0913 - the cache, the runtime's two hooks, and trust in the cache
    spec: ModelSpec,
    folder: Path,
    cache: GraphCache,
    *,
    attention: AttentionKind,
    compile_graph: Callable[[Path], C],
    unreadable: tuple[type[Exception], ...],
    fresh: bool = False,
) -> LoadedGraphs[C]:
    """The model's graphs, compiled; recorded from the folder first where the cache lacks them
    (or, `fresh`, where this process did not record them itself).

    Raises what reading a bad folder raises (OSError, ValueError, KeyError, ...); the engines
    turn those into ModelUnavailable.
    """
    if spec.family not in GRAPH_FAMILIES:
        msg = f"no graph is recorded for the {spec.family} family"
        raise ValueError(msg)
    weights = folder / _WEIGHTS
    if not weights.is_file():
        msg = f"the model folder has no {_WEIGHTS}"
        raise ValueError(msg)
    key = _key(spec, folder, attention)
    recorder = _Recorder(spec, folder, attention)
    text = cache.open(key, "text", recorder.text, compile_graph, unreadable, fresh=fresh)
    if FAMILIES[spec.family].image_forward is None:
        return LoadedGraphs(text, None, None)
    clip = ClipConfig.from_json(read_json(folder / "config.json"))
    if not _has_vision_tower(weights):
        return LoadedGraphs(text, None, clip)
    vision = cache.open(key, "vision", recorder.vision, compile_graph, unreadable, fresh=fresh)
    return LoadedGraphs(text, vision, clip)


def _key(spec: ModelSpec, folder: Path, attention: AttentionKind) -> GraphKey:
    """Everything a recorded graph depends on; the tokenizer's files are not among them."""
    key = GraphKey(str(GRAPH_BUILDER_VERSION), spec.family.value, spec.pooling.value, attention)
    key.add_file_identity(folder / _WEIGHTS)
    # config.json (the architecture), modules.json and each module's config.json (the head)
    key.add_file_contents([folder / "config.json", folder / "modules.json"])
    key.add_file_contents(sorted(folder.glob("*/config.json")))
    for dense in sorted(folder.glob("*_Dense/*")):  # a Dense module's weights (2_Dense/...)
        if dense.name in {"model.safetensors", "pytorch_model.bin"}:
            key.add_file_identity(dense)
    return key


def _has_vision_tower(weights: Path) -> bool:
    """As load_clip_weights decides, from the checkpoint's header alone."""
    with safe_open(weights, framework="np") as f:
        return any(name.startswith("vision_model.") for name in f.keys())  # noqa: SIM118 - not a dict


class _Recorder:
    """Records the folder's graphs; reads the weights once, and only if a graph is recorded."""

    def __init__(self, spec: ModelSpec, folder: Path, attention: AttentionKind) -> None:
        self._spec = spec
        self._folder = folder
        self._attention = attention
        self._traits = FAMILIES[spec.family]

    @functools.cached_property
    def _model(self) -> Any:
        return FAMILY_READERS[self._spec.family].read(self._folder, self._spec.pooling)

    def text(self) -> onnx.ModelProto:
        model, forward = self._model, self._traits.text_forward

        def text(ops: Ops[Value], ids: Value, mask: Value) -> Value:
            return forward(ops, ids, mask, model)

        return text_graph(
            text, self._spec.name, attention=self._attention, max_tokens=model.max_tokens
        )

    def vision(self) -> onnx.ModelProto:
        model, forward = self._model, self._traits.image_forward
        if forward is None:
            msg = f"the {self._spec.family} family has no image tower"
            raise ValueError(msg)
        cfg = model.config

        def image(ops: Ops[Value], pixels: Value) -> Value:
            return forward(ops, pixels, model)

        return image_graph(
            image,
            f"{self._spec.name}-vision",
            cfg.num_channels,
            cfg.image_size,
            attention=self._attention,
        )
