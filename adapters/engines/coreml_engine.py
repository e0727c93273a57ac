"""The Core ML engine: the domain's forward passes as ML programs, run by Core ML on macOS.

A model's text tower (and a CLIP model's vision tower) is recorded once as a MIL program by
`MilOps` (adapters/engines/mil_ops.py), converted by coremltools into an ML program with float32
weights and float32 compute, and saved as an .mlpackage in the cache folder, keyed by what it was
built from (`_package_key`); later loads reuse the package. A text package takes int32
`input_ids` and `attention_mask` [batch, tokens], an image package float32 `pixel_values`
[batch, C, S, S]; both answer `embeddings` [batch, D], pooling and normalisation included.

coremltools builds and saves packages on any OS, but only macOS can run them. Elsewhere `load`
still builds and saves the packages (so the build path is exercised, and tested, on Linux), then
answers ModelUnavailable saying so.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from safetensors import SafetensorError

from adapters.engines.mil_ops import (
    MIL_BUILDER_VERSION,
    OPSET,
    OUTPUT,
    ct,
    image_program,
    text_program,
)
from adapters.families import FAMILY_READERS, GRAPH_FAMILIES
from adapters.weights.images import ClipImageProcessor, read_clip_image_processor
from adapters.weights.model_folder import read_json
from domain.architectures.clip import ClipConfig
from domain.errors import InvalidInput, ModelUnavailable
from domain.families import FAMILIES, ImageForward
from domain.models import ModelSpec
from domain.ops import Array, IdArray
from domain.ports import Encoder

__all__ = [
    "MAX_BATCH",
    "ComputeUnits",
    "CoreMLEngine",
    "Tower",
    "build_coreml_package",
]

ComputeUnits = Literal["all", "cpu_only", "cpu_and_gpu", "cpu_and_ne"]
Tower = Literal["text", "image"]

_COMPUTE_UNITS: dict[str, Any] = {
    "all": ct.ComputeUnit.ALL,
    "cpu_only": ct.ComputeUnit.CPU_ONLY,
    "cpu_and_gpu": ct.ComputeUnit.CPU_AND_GPU,
    "cpu_and_ne": ct.ComputeUnit.CPU_AND_NE,
}
# the files a model's weights may be read from; those present key the cache
_WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin")
# a Dense module's weights, in its own folder (2_Dense/...); those present key the cache too
_DENSE_WEIGHTS = ("*_Dense/model.safetensors", "*_Dense/pytorch_model.bin")
# Rows per prediction: packages take 1 to this many, and the encoders cut larger batches. A
# bounded shape lets Core ML plan memory ahead for the GPU and the Neural Engine.
MAX_BATCH = 256

# --- building ---------------------------------------------------------------------------------


def build_coreml_package(
    spec: ModelSpec, folder: Path, cache_dir: Path, *, tower: Tower = "text"
) -> Path:
    """The model's `tower` as an .mlpackage under `cache_dir`: built and saved unless there.

    Raises what reading the folder raises (OSError, ValueError, KeyError, SafetensorError),
    ValueError for a family or tower this engine does not build, and what coremltools raises
    when it cannot convert.
    """
    return _build(spec, folder, cache_dir, tower, lambda: _read(spec, folder))


def _build(
    spec: ModelSpec, folder: Path, cache_dir: Path, tower: Tower, read: Callable[[], Any]
) -> Path:
    path = _package_path(spec, folder, cache_dir, tower)
    if not path.is_dir():
        program, inputs = _recording(spec, read(), tower)
        _convert_and_save(program, inputs, path)
    return path


def _package_path(spec: ModelSpec, folder: Path, cache_dir: Path, tower: Tower) -> Path:
    if spec.family not in GRAPH_FAMILIES:
        msg = f"no coreml engine for {spec.family}"
        raise ValueError(msg)
    key = _package_key(spec, folder, tower)
    return cache_dir / f"coreml-{spec.family.value}-{tower}-{key}.mlpackage"


def _package_key(spec: ModelSpec, folder: Path, tower: Tower) -> str:
    """What a package is built from: the builder, the weights files as they stand on disk
    (path, size, mtime), config.json's contents, and the sentence head: modules.json and each
    module's config.json as they read, and the catalogue's pooling for a folder without them."""
    weights = []
    dense = [str(path.relative_to(folder)) for p in _DENSE_WEIGHTS for path in folder.glob(p)]
    for name in (*_WEIGHTS_FILES, *sorted(dense)):
        path = folder / name
        if path.is_file():
            stat = path.stat()
            weights.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    head = [spec.pooling.value]
    for path in [folder / "modules.json", *sorted(folder.glob("*/config.json"))]:
        if path.is_file():
            head += [str(path.relative_to(folder)), path.read_text(encoding="utf-8")]
    facts = {
        "builder": MIL_BUILDER_VERSION,
        "coremltools": ct.__version__,
        "opset": OPSET.name,
        "max_batch": MAX_BATCH,
        "family": spec.family.value,
        "tower": tower,
        "weights": weights,
        "config": read_json(folder / "config.json"),
        "head": head,
    }
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode())
    return digest.hexdigest()[:24]


def _read(spec: ModelSpec, folder: Path) -> Any:
    return FAMILY_READERS[spec.family].read(folder, spec.pooling)


def _recording(spec: ModelSpec, model: Any, tower: Tower) -> tuple[Any, list[Any]]:
    """The tower's MIL program, and the converter's description of its inputs."""
    traits = FAMILIES[spec.family]
    if tower == "image":
        if traits.image_forward is None or model.vision is None:
            msg = "the model has no image tower"
            raise ValueError(msg)
        return _image_recording(traits.image_forward, model)
    forward = traits.text_forward
    program = text_program(
        lambda ops, ids, mask: forward(ops, ids, mask, model), max_tokens=model.max_tokens
    )
    return program, _token_inputs(model.max_tokens)


def _image_recording(forward: ImageForward, model: Any) -> tuple[Any, list[Any]]:
    cfg = model.config
    program = image_program(
        lambda ops, pixels: forward(ops, pixels, model),
        cfg.num_channels,
        cfg.image_size,
    )
    shape = (ct.RangeDim(1, MAX_BATCH), cfg.num_channels, cfg.image_size, cfg.image_size)
    return program, [ct.TensorType(name="pixel_values", shape=shape, dtype=np.float32)]


def _token_inputs(max_tokens: int) -> list[Any]:
    """input_ids and attention_mask: int32, 1..MAX_BATCH rows of 1..max_tokens tokens."""
    shape = (ct.RangeDim(1, MAX_BATCH), ct.RangeDim(1, max_tokens))
    return [
        ct.TensorType(name=name, shape=shape, dtype=np.int32)
        for name in ("input_ids", "attention_mask")
    ]


def _convert_and_save(program: Any, inputs: list[Any], path: Path) -> None:
    """Convert into a temporary folder beside `path`, then move it into place in one rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".coreml-build-") as tmp:
        staged = Path(tmp) / path.name
        ct.convert(
            program,
            convert_to="mlprogram",
            inputs=inputs,
            compute_precision=ct.precision.FLOAT32,  # weights and arithmetic stay float32
            minimum_deployment_target=OPSET,
            package_dir=str(staged),
            skip_model_load=True,  # loaded later, from its place in the cache
        )
        try:
            staged.replace(path)
        except OSError:
            if not path.is_dir():  # unless a concurrent build of the same package got there first
                raise


# --- running (macOS) --------------------------------------------------------------------------


def _predict(model: Any, inputs: dict[str, np.ndarray[Any, Any]], width: int) -> Array:
    """`embeddings` for every row, MAX_BATCH rows per prediction."""
    rows = len(next(iter(inputs.values())))
    parts = [
        np.asarray(
            model.predict({k: v[n : n + MAX_BATCH] for k, v in inputs.items()})[OUTPUT],
            dtype=np.float32,
        )
        for n in range(0, rows, MAX_BATCH)
    ]
    return np.concatenate(parts) if parts else np.zeros((0, width), dtype=np.float32)


class _CoreMLImages:
    """CLIP's vision tower package behind the model's own image preprocessing."""

    def __init__(self, model: Any, config: ClipConfig, processor: ClipImageProcessor) -> None:
        self.tokens = config.image_tokens
        self._model = model
        self._width = config.projection_dim
        self._processor = processor

    def prepare(self, data: bytes) -> Array | InvalidInput:
        return self._processor.prepare(data)

    def embed(self, pixels: Array) -> Array:
        inputs = {"pixel_values": np.ascontiguousarray(pixels, dtype=np.float32)}
        return _predict(self._model, inputs, self._width)


class _CoreMLEncoder:
    """A text package, and the image tower's where the model has one."""

    def __init__(self, model: Any, dimensions: int, images: _CoreMLImages | None) -> None:
        self.dimensions = dimensions
        self.images = images
        self._model = model

    def embed(self, ids: IdArray, mask: IdArray) -> Array:
        inputs = {
            "input_ids": np.ascontiguousarray(ids, dtype=np.int32),
            "attention_mask": np.ascontiguousarray(mask, dtype=np.int32),
        }
        return _predict(self._model, inputs, self.dimensions)


def _dimensions(spec: ModelSpec, folder: Path) -> int:
    """The width of the text package's vectors, from the folder's configs alone."""
    width = FAMILY_READERS[spec.family].graph_width
    if width is None:
        msg = f"no coreml engine for {spec.family}"
        raise ValueError(msg)
    return width(folder, spec.pooling)


def _macos_only() -> str:
    return (
        f"the coreml engine predicts on macOS only (this is {platform.system() or 'unknown'}); "
        "use --engine onnxruntime, openvino or numpy"
    )


class CoreMLEngine:
    """domain.ports.InferenceEngine over Core ML; packages are cached under `cache_dir`."""

    name = "coreml"
    families = GRAPH_FAMILIES

    def __init__(self, cache_dir: Path, *, compute_units: ComputeUnits = "all") -> None:
        units = _COMPUTE_UNITS.get(compute_units)  # the composition root passes a setting's text
        if units is None:
            msg = f"compute_units is one of {sorted(_COMPUTE_UNITS)}, not {compute_units!r}"
            raise ValueError(msg)
        self._cache_dir = cache_dir
        self._compute_units = units

    def load(self, spec: ModelSpec, folder: Path) -> Encoder | ModelUnavailable:
        if spec.family not in GRAPH_FAMILIES:
            return ModelUnavailable(spec.qualified_name, f"no coreml engine for {spec.family}")
        try:
            return self._load(spec, folder)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as exc:
            return ModelUnavailable(spec.qualified_name, f"coreml: {exc}")

    def _load(self, spec: ModelSpec, folder: Path) -> Encoder | ModelUnavailable:
        read = functools.cache(lambda: _read(spec, folder))  # at most once, for both towers
        text = _build(spec, folder, self._cache_dir, "text", read)
        image = self._image_package(spec, folder, read)
        if platform.system() != "Darwin":
            return ModelUnavailable(spec.qualified_name, _macos_only())
        images = None
        if image is not None:
            config = ClipConfig.from_json(read_json(folder / "config.json"))
            processor = read_clip_image_processor(folder, config.image_size)
            images = _CoreMLImages(self._open(image), config, processor)
        return _CoreMLEncoder(self._open(text), _dimensions(spec, folder), images)

    def _image_package(self, spec: ModelSpec, folder: Path, read: Callable[[], Any]) -> Path | None:
        """The vision tower's package; None for text-only families and checkpoints."""
        if FAMILIES[spec.family].image_forward is None:
            return None
        if not _package_path(spec, folder, self._cache_dir, "image").is_dir():
            model = read()
            if model.vision is None:
                return None
        return _build(spec, folder, self._cache_dir, "image", read)

    def _open(self, package: Path) -> Any:
        return ct.models.MLModel(str(package), compute_units=self._compute_units)
