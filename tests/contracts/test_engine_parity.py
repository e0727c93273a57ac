"""Every inference engine against the numpy reference, on every family it runs: one contract.

The graph engines run a graph recorded from the very forward functions the numpy engine executes
(adapters/engines/onnx_graph.py), so what this checks is the recorder and the runtimes: each op's
graph form, the pooling head inside the graph, masks and padding. Each case is one model folder
(small random models in real repo layouts, and the real all-MiniLM-L6-v2); its texts
(tests/corpus.py) are tokenized once and cut into the same padded batches for every engine, and
CLIP's pictures are prepared once by the numpy engine's image preprocessing.

Then, per engine: a text embeds the same alone as inside a mixed-length batch; a folder the
engine cannot run is a ModelUnavailable, not an exception. For the graph engines: the graph cache
(reuse, rebuild on changed weights, repair of a truncated file, no temporary files left), and
OpenVINO's bf16 against its fp32 where the CPU computes in bf16.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest

from adapters.engines.numpy_ref import NumpyEngine
from adapters.families import GRAPH_FAMILIES
from adapters.tokenizers.by_family import load_tokenizer
from application.batching import pad, pass_length
from application.catalogue import CATALOGUE
from application.engine_choice import Candidate, EngineSelector, Rebuilds
from domain.errors import ModelUnavailable
from domain.ports import KeepsShapes, OverlapsPasses
from tests.corpus import VARIED_TEXTS
from tests.model_factory import minilm_folder, write_bert_model
from tests.model_factory_clip import write_clip_model
from tests.model_factory_distilbert import write_distilbert_model
from tests.model_factory_modernbert import write_modernbert_model
from tests.model_factory_mpnet import write_mpnet_model
from tests.model_factory_roberta import write_roberta_model
from tests.parity.test_bert_parity import scaled_abs_diff
from tests.parity.test_clip_parity import PICTURES, picture_bytes
from tests.tolerances import BATCH_INVARIANCE, BF16_MIN_COSINE, MAX_ABS_DIFF

if TYPE_CHECKING:
    from domain.models import ModelSpec
    from domain.ops import Array, IdArray
    from domain.ports import Encoder, InferenceEngine


_SPECS = {spec.name: spec for spec in CATALOGUE if spec.tag == "latest"}
_BATCH = 16


# --- engines ------------------------------------------------------------------------------------

ENGINES = ("numpy", "onnxruntime", "openvino")
GRAPH_ENGINES = ("onnxruntime", "openvino")


def make_engine(name: str, cache: Path) -> InferenceEngine:
    """The engine by name, with its graphs cached under `cache`; skipped where not installed."""
    if name == "numpy":
        return NumpyEngine()
    if name == "onnxruntime":
        pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed")
        from adapters.engines.onnx_runtime import OnnxRuntimeEngine

        return OnnxRuntimeEngine(cache)
    pytest.importorskip("openvino", reason="OpenVINO is not installed")
    from adapters.engines.openvino_engine import OpenVinoEngine

    return OpenVinoEngine(cache)


@pytest.fixture(scope="session")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One graph cache for the parity cases: each graph is recorded once per test session."""
    return tmp_path_factory.mktemp("graphs")


@functools.cache
def _engine(name: str, cache: Path) -> InferenceEngine:
    return make_engine(name, cache)


def loaded(engine: InferenceEngine, spec: ModelSpec, folder: Path) -> Encoder:
    encoder = engine.load(spec, folder)
    assert not isinstance(encoder, ModelUnavailable), encoder
    return encoder


# --- cases --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One model folder: how to write it, and the catalogue entry it stands for."""

    id: str
    spec_name: str
    write: Callable[[Path], Path] | None = None  # None: the real all-MiniLM-L6-v2

    @property
    def spec(self) -> ModelSpec:
        return _SPECS[self.spec_name]


_bert, _roberta, _clip = write_bert_model, write_roberta_model, write_clip_model
CASES = [
    Case("all-MiniLM-L6-v2", "all-MiniLM-L6-v2"),
    Case("bert-cls", "msmarco-bert-base-dot-v5", functools.partial(_bert, pooling="cls", seed=1)),
    Case(
        "bert-max+mean-normalized",
        "gte-base",
        functools.partial(_bert, pooling=["max", "mean"], normalize=True, seed=2),
    ),
    Case("bert-weightedmean", "gte-base", functools.partial(_bert, pooling="weightedmean", seed=3)),
    Case(
        "bert-lasttoken+sqrt+cls-normalized",
        "gte-base",
        functools.partial(
            _bert,
            pooling=["lasttoken", "mean_sqrt_len_tokens", "cls"],
            normalize=True,
            seed=4,
        ),
    ),
    # no modules.json: the catalogue entry's pooling is the graph's
    Case(
        "bert-plain-transformers",
        "bert-base-uncased",
        functools.partial(_bert, layout="transformers", seed=5),
    ),
    Case("roberta", "roberta-base", functools.partial(_roberta, flavour="roberta", seed=6)),
    Case(
        "xlm-roberta-cls-normalized",
        "xlm-roberta-base",
        functools.partial(_roberta, flavour="xlm-roberta", pooling="cls", normalize=True, seed=7),
    ),
    Case(
        "distilbert-max-normalized",
        "multi-qa-distilbert-cos-v1",
        functools.partial(write_distilbert_model, pooling="max", normalize=True, seed=12),
    ),
    Case(
        "mpnet-cls+mean",
        "all-mpnet-base-v2",
        functools.partial(write_mpnet_model, pooling=["cls", "mean"], seed=13),
    ),
    # rotary, GeGLU, an 8-token window on the local layers: most texts reach past it
    Case(
        "modernbert-mean-window-8",
        "modernbert-embed-base",
        functools.partial(write_modernbert_model, pooling="mean", local_attention=8, seed=14),
    ),
    Case("clip-eos-first", "clip-vit-base-patch32", functools.partial(_clip, eos="first", seed=8)),
    Case(
        "clip-eos-legacy-gelu",
        "clip-vit-base-patch32",
        functools.partial(_clip, eos="legacy", hidden_act="gelu", seed=9, shortest_edge=40),
    ),
    Case(
        "clip-text-only", "clip-vit-base-patch32", functools.partial(_clip, text_only=True, seed=10)
    ),
]


@dataclass(frozen=True, eq=False)  # hashed by identity: one per case, made once
class Prepared:
    """A case's folder, batches and the numpy engine's answers, made once per session."""

    folder: Path
    spec: ModelSpec
    rows: list[tuple[int, ...]]
    batches: list[tuple[list[int], IdArray, IdArray]]  # text indices, ids [B,T], mask [B,T]
    reference: Array  # [N,D], the numpy engine's vectors in text order
    pixels: Array | None  # [P,C,S,S]: the pictures as the numpy engine prepares them
    reference_images: Array | None
    reference_has_images: bool
    max_tokens: int  # the tokenizer's limit: no row is longer


def _batches(rows: list[tuple[int, ...]]) -> list[tuple[list[int], IdArray, IdArray]]:
    """Length-sorted batches as the server makes them, and one in corpus order (mixed lengths)."""
    by_length = sorted(range(len(rows)), key=lambda n: len(rows[n]))
    plans = [by_length[i : i + _BATCH] for i in range(0, len(rows), _BATCH)]
    plans.append(list(range(_BATCH)))
    return [(plan, *pad([rows[n] for n in plan])) for plan in plans]


@functools.cache
def _prepare(case: Case, root: Path) -> Prepared:
    folder = minilm_folder() if case.write is None else case.write(root / case.id)
    tokenizer = load_tokenizer(case.spec, folder)
    assert not isinstance(tokenizer, ModelUnavailable), tokenizer
    rows = [e.ids for e in tokenizer.encode(VARIED_TEXTS)]
    batches = _batches(rows)
    numpy = loaded(NumpyEngine(), case.spec, folder)
    reference = np.zeros((len(rows), numpy.dimensions), dtype=np.float32)
    for plan, ids, mask in batches:
        reference[plan] = numpy.embed(ids, mask)
    pixels = reference_images = None
    if numpy.images is not None:
        prepared = [numpy.images.prepare(picture_bytes(p, seed=n)) for n, p in enumerate(PICTURES)]
        pixels = np.stack([p for p in prepared if isinstance(p, np.ndarray)])
        reference_images = numpy.images.embed(pixels)
    return Prepared(
        folder,
        case.spec,
        rows,
        batches,
        reference,
        pixels,
        reference_images,
        numpy.images is not None,
        tokenizer.max_tokens,
    )


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(params=CASES, ids=[c.id for c in CASES])
def case(request: pytest.FixtureRequest, models: Path) -> Prepared:
    return _prepare(request.param, models)


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, graphs: Path) -> InferenceEngine:
    return _engine(request.param, graphs)


_ENCODERS: dict[tuple[str, Path], Encoder] = {}


def _encoder(engine: InferenceEngine, case: Prepared) -> Encoder:
    """Each case loaded once per engine, for every test that compares them."""
    key = (engine.name, case.folder)
    if key not in _ENCODERS:
        _ENCODERS[key] = loaded(engine, case.spec, case.folder)
    return _ENCODERS[key]


def _worst(diff: np.ndarray) -> str:
    row = int(np.argmax(diff.max(axis=1)))
    return f"scaled abs diff {diff.max():.3g} at row {row}"


# --- the contract --------------------------------------------------------------------------------


def test_texts_embed_as_the_numpy_engine_embeds_them(
    engine: InferenceEngine, case: Prepared
) -> None:
    """On the same padded batches, every vector equals the numpy engine's within MAX_ABS_DIFF."""
    encoder = _encoder(engine, case)
    ours = np.full_like(case.reference, np.nan)
    for plan, ids, mask in case.batches:
        ours[plan] = encoder.embed(ids, mask)
    diff = scaled_abs_diff(ours, case.reference)
    assert diff.max() < MAX_ABS_DIFF, _worst(diff)


def test_images_embed_as_the_numpy_engine_embeds_them(
    engine: InferenceEngine, case: Prepared
) -> None:
    """The image tower is there exactly when numpy's is, and its vectors equal numpy's."""
    images = _encoder(engine, case).images
    assert (images is not None) == case.reference_has_images
    if images is None or case.pixels is None or case.reference_images is None:
        return
    diff = scaled_abs_diff(images.embed(case.pixels), case.reference_images)
    assert diff.max() < MAX_ABS_DIFF, _worst(diff)


def test_dimensions_are_the_numpy_engines(engine: InferenceEngine, case: Prepared) -> None:
    """The encoder reports the width its vectors have, the same width numpy reports."""
    encoder = _encoder(engine, case)
    _, ids, mask = case.batches[0]
    assert encoder.dimensions == case.reference.shape[1] == encoder.embed(ids, mask).shape[1]


# texts of very different lengths, the long ones past every model's limit
_MIXED = [n for n, text in enumerate(VARIED_TEXTS) if n % 9 == 0][:10]


def test_a_text_embeds_the_same_alone_as_in_a_mixed_batch(
    engine: InferenceEngine, case: Prepared
) -> None:
    """Pads never leak into a row: each text alone equals that text inside one padded batch."""
    encoder = _encoder(engine, case)
    rows = [case.rows[n] for n in _MIXED]
    assert len({len(r) for r in rows}) > 3  # lengths really differ
    together = encoder.embed(*pad(rows))
    alone = np.concatenate([encoder.embed(*pad([row])) for row in rows])
    assert np.abs(alone - together).max() < BATCH_INVARIANCE


def test_a_pass_padded_to_one_of_a_few_lengths_embeds_as_it_does_unpadded(
    engine: InferenceEngine, case: Prepared
) -> None:
    """Padding a text past its own length, up to `pass_length` (what the batcher does for an
    encoder that keeps shapes: domain.ports.KeepsShapes), changes none of its vector. Only
    OpenVINO asks for it: its compiled model keeps kernels and buffers for every shape."""
    encoder = _encoder(engine, case)
    keeps = isinstance(encoder, KeepsShapes) and encoder.keeps_shapes
    assert keeps == (engine.name == "openvino")
    length = functools.partial(pass_length, limit=case.max_tokens)
    rows = [case.rows[n] for n in _MIXED if length(len(case.rows[n])) > len(case.rows[n])]
    assert len(rows) > 3  # most texts get padding
    exact = np.concatenate([encoder.embed(*pad([row])) for row in rows])
    padded = np.concatenate([encoder.embed(*pad([row], length=length)) for row in rows])
    assert np.abs(exact - padded).max() < BATCH_INVARIANCE


def test_an_encoder_that_overlaps_passes_embeds_the_same_on_two_threads_at_once(
    engine: InferenceEngine, case: Prepared
) -> None:
    """Where an encoder lets the batcher run its passes side by side (domain.ports
    OverlapsPasses), passes on two threads at once give what they give one after another.
    Only ONNX Runtime says so: an OpenVINO infer request serves one caller at a time."""
    encoder = _encoder(engine, case)
    overlaps = isinstance(encoder, OverlapsPasses) and encoder.overlaps_passes
    assert overlaps == (engine.name == "onnxruntime")
    if not overlaps:
        return
    passes = [(ids, mask) for _, ids, mask in case.batches] * 4
    alone = [encoder.embed(ids, mask) for ids, mask in passes]
    with ThreadPoolExecutor(max_workers=2) as pool:
        side_by_side = list(pool.map(lambda p: encoder.embed(*p), passes))
    for one, other in zip(alone, side_by_side, strict=True):
        assert np.abs(one - other).max() < BATCH_INVARIANCE


def test_a_folder_the_engine_cannot_run_is_unavailable(
    engine: InferenceEngine, tmp_path: Path, models: Path
) -> None:
    """An unsupported config or missing weights is a ModelUnavailable with the reason."""
    source = _prepare(CASES[1], models).folder
    relu = Path(shutil.copytree(source, tmp_path / "relu"))
    config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    (relu / "config.json").write_text(json.dumps({**config, "hidden_act": "relu"}))
    empty = Path(shutil.copytree(source, tmp_path / "empty"))
    (empty / "model.safetensors").unlink()

    relu_result = engine.load(CASES[1].spec, relu)
    assert isinstance(relu_result, ModelUnavailable)
    assert "relu" in relu_result.reason
    empty_result = engine.load(CASES[1].spec, empty)
    assert isinstance(empty_result, ModelUnavailable)
    assert "model.safetensors" in empty_result.reason


# --- the graph cache ------------------------------------------------------------------------------


@pytest.fixture(params=GRAPH_ENGINES)
def graph_engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def small_bert(tmp_path: Path, models: Path) -> Path:
    """A copy of a small case's folder, free to change."""
    return Path(shutil.copytree(_prepare(CASES[1], models).folder, tmp_path / "model"))


def _graph_files(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.onnx"))


def _embeds_like_numpy(encoder: Encoder, folder: Path) -> None:
    spec = CASES[1].spec
    ids, mask = pad([(101, 7592, 2088, 102), (101, 102)])
    reference = loaded(NumpyEngine(), spec, folder).embed(ids, mask)
    assert scaled_abs_diff(encoder.embed(ids, mask), reference).max() < MAX_ABS_DIFF


def test_a_second_load_reads_the_cached_graph(
    graph_engine: str, small_bert: Path, tmp_path: Path
) -> None:
    """Loading again, even from another engine instance, records nothing and rewrites nothing."""
    cache, spec = tmp_path / "cache", CASES[1].spec
    loaded(make_engine(graph_engine, cache), spec, small_bert)
    [graph] = _graph_files(cache)
    before = graph.stat()
    _embeds_like_numpy(loaded(make_engine(graph_engine, cache), spec, small_bert), small_bert)
    after = graph.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert _graph_files(cache) == [graph]


def test_changed_weights_record_a_new_graph(
    graph_engine: str, small_bert: Path, tmp_path: Path
) -> None:
    """A new weights file (same name) is a new graph, and the new graph runs the new weights."""
    from safetensors.numpy import load_file, save_file

    cache, spec = tmp_path / "cache", CASES[1].spec
    loaded(make_engine(graph_engine, cache), spec, small_bert)
    [old] = _graph_files(cache)
    weights = small_bert / "model.safetensors"
    tensors = load_file(weights)
    tensors = {k: (v * 1.5 if k.endswith("query.weight") else v) for k, v in tensors.items()}
    save_file(tensors, weights)
    encoder = loaded(make_engine(graph_engine, cache), spec, small_bert)
    assert len(_graph_files(cache)) == 2
    assert old in _graph_files(cache)
    _embeds_like_numpy(encoder, small_bert)


def test_a_truncated_cached_graph_is_recorded_again(
    graph_engine: str, small_bert: Path, tmp_path: Path
) -> None:
    """A graph file cut short (a full disk, a killed copy) is replaced, and the model loads."""
    cache, spec = tmp_path / "cache", CASES[1].spec
    loaded(make_engine(graph_engine, cache), spec, small_bert)
    [graph] = _graph_files(cache)
    size = graph.stat().st_size
    with graph.open("r+b") as f:
        f.truncate(size // 2)
    _embeds_like_numpy(loaded(make_engine(graph_engine, cache), spec, small_bert), small_bert)
    assert graph.stat().st_size == size


def _perturb_graph(graph: Path) -> None:
    """The cached graph's largest weight scaled in place: a readable graph that is wrong."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(graph))
    largest = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    scaled = numpy_helper.to_array(largest) * np.float32(1.5)
    largest.CopyFrom(numpy_helper.from_array(scaled, largest.name))
    onnx.save(model, str(graph))


def _selector_for(graph_engine: str, cache: Path) -> EngineSelector:
    engine = make_engine(graph_engine, cache)
    candidate = Candidate(graph_engine, "fp32", GRAPH_FAMILIES, lambda: engine)
    return EngineSelector(NumpyEngine(), [candidate], forced=graph_engine)


def test_a_cached_graph_that_fails_the_gate_is_recorded_again_and_kept(
    graph_engine: str, small_bert: Path, tmp_path: Path
) -> None:
    """A cached graph whose weights were altered loads, fails the parity gate, is recorded again
    from the model's weights, and the engine passes and runs the model; the cache is repaired."""
    cache, spec = tmp_path / "cache", CASES[1].spec
    loaded(make_engine(graph_engine, cache), spec, small_bert)
    [graph] = _graph_files(cache)
    _perturb_graph(graph)
    tokenizer = load_tokenizer(spec, small_bert)
    assert not isinstance(tokenizer, ModelUnavailable)

    chosen = _selector_for(graph_engine, cache).choose(spec, small_bert, tokenizer)

    assert not isinstance(chosen, ModelUnavailable), chosen
    assert chosen.engine == graph_engine
    assert chosen.parity is not None
    assert chosen.parity.passed
    _embeds_like_numpy(chosen.encoder, small_bert)
    _embeds_like_numpy(loaded(make_engine(graph_engine, cache), spec, small_bert), small_bert)


def test_a_rebuild_records_again_only_what_another_process_cached(
    graph_engine: str, small_bert: Path, tmp_path: Path
) -> None:
    """`rebuild` trusts a graph its own engine recorded, and records anew one found on disk."""
    cache, spec = tmp_path / "cache", CASES[1].spec
    engine = make_engine(graph_engine, cache)
    assert isinstance(engine, Rebuilds)
    loaded(engine, spec, small_bert)
    [graph] = _graph_files(cache)
    recorded = graph.stat()
    assert not isinstance(engine.rebuild(spec, small_bert), ModelUnavailable)
    assert (graph.stat().st_ino, graph.stat().st_mtime_ns) == (
        recorded.st_ino,
        recorded.st_mtime_ns,
    )
    other = make_engine(graph_engine, cache)
    assert isinstance(other, Rebuilds)
    rebuilt = other.rebuild(spec, small_bert)
    assert not isinstance(rebuilt, ModelUnavailable)
    _embeds_like_numpy(rebuilt, small_bert)
    assert graph.stat().st_ino != recorded.st_ino


def test_the_cache_holds_only_finished_graphs(graph_engine: str, tmp_path: Path) -> None:
    """After loads of every kind (text, vision), the cache holds graphs, each with its weights
    beside it, and nothing else."""
    cache = tmp_path / "cache"
    clip = write_clip_model(tmp_path / "clip", seed=11)
    loaded(make_engine(graph_engine, cache), _SPECS["clip-vit-base-patch32"], clip)
    names = sorted(p.name for p in cache.iterdir())
    assert len(names) == 4
    graphs = ("-text.onnx", "-vision.onnx")
    assert all(n.endswith(graphs) or n.removesuffix(".data").endswith(graphs) for n in names), names


def _run_with(runtime: str) -> Callable[[Path, dict[str, np.ndarray]], np.ndarray]:
    """A graph file run by `runtime` directly, as its engine would run it."""
    if runtime == "onnxruntime":
        ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed")

        def run_ort(path: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            return np.asarray(session.run(["embeddings"], feeds)[0])

        return run_ort
    ov = pytest.importorskip("openvino", reason="OpenVINO is not installed")

    def run_ov(path: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
        compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        return np.asarray(compiled(feeds)[0])

    return run_ov


def test_a_graph_past_the_protobuf_limit_keeps_its_weights_beside_it(
    graph_engine: str, small_bert: Path, tmp_path: Path
) -> None:
    """Weights too large for one protobuf (2 GB) go to one .data file, and the graph still runs."""
    from adapters.engines.graph_cache import GraphCache
    from adapters.engines.model_graphs import load_graphs

    run = _run_with(graph_engine)
    cache = tmp_path / "cache"
    path = load_graphs(
        CASES[1].spec,
        small_bert,
        GraphCache(cache, inline_limit=0),  # every graph counts as too large
        attention="onnx",
        compile_graph=lambda p: p,
        unreadable=(),
    ).text
    assert sorted(p.name for p in cache.iterdir()) == [path.name, f"{path.name}.data"]
    assert path.stat().st_size < 100_000  # the nodes only
    ids, mask = pad([(101, 7592, 2088, 102), (101, 102)])
    ours = run(path, {"input_ids": ids, "attention_mask": mask})
    reference = loaded(NumpyEngine(), CASES[1].spec, small_bert).embed(ids, mask)
    assert scaled_abs_diff(ours, reference).max() < MAX_ABS_DIFF


# --- what each runtime offers here ---------------------------------------------------------------


def test_a_missing_onnx_runtime_provider_is_reported(small_bert: Path, tmp_path: Path) -> None:
    """Asking for an execution provider this ONNX Runtime lacks names it; nothing falls back."""
    ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is not installed")
    from adapters.engines.onnx_runtime import OnnxRuntimeEngine

    missing = "TensorrtExecutionProvider"
    if missing in ort.get_available_providers():
        pytest.skip(f"this ONNX Runtime has {missing}")
    engine = OnnxRuntimeEngine(tmp_path, providers=(missing, "CPUExecutionProvider"))
    result = engine.load(CASES[1].spec, small_bert)
    assert isinstance(result, ModelUnavailable)
    assert missing in result.reason


def _cpu_has_bf16() -> bool:
    try:
        import openvino as ov  # type: ignore[import-untyped]  # no stubs, no py.typed
    except ImportError:
        return False
    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def test_openvino_bf16_is_refused_where_the_cpu_lacks_it(small_bert: Path, tmp_path: Path) -> None:
    """Without native bf16, the bf16 engine says why instead of emulating it slowly."""
    pytest.importorskip("openvino", reason="OpenVINO is not installed")
    if _cpu_has_bf16():
        pytest.skip("this CPU computes in bf16: the bf16 parity test runs instead")
    from adapters.engines.openvino_engine import OpenVinoEngine

    result = OpenVinoEngine(tmp_path, precision="bf16").load(CASES[1].spec, small_bert)
    assert isinstance(result, ModelUnavailable)
    assert "bf16" in result.reason


@pytest.mark.skipif(not _cpu_has_bf16(), reason="the CPU does not compute in bf16 natively")
def test_openvino_bf16_keeps_the_direction_of_every_vector(graphs: Path, models: Path) -> None:
    """bf16 on all-MiniLM-L6-v2: every text's vector within BF16_MIN_COSINE of fp32's."""
    from adapters.engines.openvino_engine import OpenVinoEngine

    case = _prepare(CASES[0], models)
    fp32 = _encoder(_engine("openvino", graphs), case)
    bf16 = loaded(OpenVinoEngine(graphs, precision="bf16"), case.spec, case.folder)
    cosines = []
    for _, ids, mask in case.batches:
        a, b = fp32.embed(ids, mask), bf16.embed(ids, mask)
        cosines.append((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))
    assert np.concatenate(cosines).min() >= BF16_MIN_COSINE
