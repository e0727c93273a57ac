"""The CoreML engine's build path, which runs on any OS: packages built, saved, keyed and reused.

Each case is a model folder: the real all-MiniLM-L6-v2 from its package, or a small random-weight
BERT, RoBERTa, XLM-RoBERTa or CLIP model from the test factories. For each, the saved .mlpackage
is read back with coremltools (its spec, and its MIL program through coremltools' MIL frontend)
and checked for the inputs the encoder feeds, the output the pipeline reads, and weights equal
to the ones we loaded, bit for bit. Core ML itself only runs on macOS; on Linux the recording is
checked by coremltools' own value inference instead (each MIL op's numpy definition, run while
the program is built from constant inputs) against the numpy reference, and the engine's load
must say, in one line, that it cannot predict here. On macOS the packages are also run.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
from coremltools.converters.mil import (  # type: ignore[import-untyped]
    Builder as mb,  # noqa: N813 - the name coremltools' documentation gives it
)
from coremltools.converters.mil.frontend.milproto.load import (  # type: ignore[import-untyped]
    load as load_milproto,
)
from coremltools.converters.mil.mil import types  # type: ignore[import-untyped]

from adapters.engines.coreml_engine import MAX_BATCH, CoreMLEngine, build_coreml_package
from adapters.engines.mil_ops import OPSET, MilOps, ct
from adapters.engines.numpy_ref import NumpyEngine, NumpyOps
from adapters.families import FAMILY_READERS
from domain.architectures.bert import BertEmbeddings, BertModel
from domain.architectures.clip import ClipModel, clip_image_embedding
from domain.architectures.cross_encoder import (
    BertCrossEncoder,
    ModernBertCrossEncoder,
    RobertaCrossEncoder,
)
from domain.architectures.mpnet import PADDING_IDX, MPNetModel
from domain.architectures.nomic_bert import NomicBertEmbeddings
from domain.architectures.roberta import RobertaModel
from domain.errors import ModelUnavailable
from domain.families import FAMILIES
from domain.models import Family, ModelSpec, PoolingMode
from domain.sentence_head import PROMPT_TOKEN
from tests.model_factory import DenseModule, minilm_folder, write_bert_model
from tests.model_factory_clip import write_clip_model
from tests.model_factory_cross_encoder import write_cross_encoder
from tests.model_factory_distilbert import write_distilbert_model
from tests.model_factory_gemma3 import write_gemma3_model
from tests.model_factory_modernbert import write_modernbert_model
from tests.model_factory_mpnet import write_mpnet_model
from tests.model_factory_nomic import write_nomic_bert_model
from tests.model_factory_qwen3 import write_qwen3_model
from tests.model_factory_repos import write_repo_layout
from tests.model_factory_roberta import write_roberta_model
from tests.tolerances import MAX_ABS_DIFF

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = [
    # ct.convert drops a TemporaryDirectory of its own (the weights it stages) without closing it
    pytest.mark.filterwarnings("ignore:Implicitly cleaning up <TemporaryDirectory:ResourceWarning"),
]

ON_MACOS = sys.platform == "darwin"
_CROSS_ENCODERS = (BertCrossEncoder, RobertaCrossEncoder, ModernBertCrossEncoder)


@dataclass(frozen=True)
class Case:
    """One model folder: how to write it, and what the package must look like."""

    id: str
    family: Family
    factory: Callable[[Path], Path] | None = None  # None: the real all-MiniLM-L6-v2
    # the token axis's upper bound, the tokens the position table holds: BERT's 512 rows; of
    # RoBERTa's 514, the two below the first token's position; CLIP's 77
    max_tokens: int = 512
    vision: bool = False  # a CLIP model with a vision tower: an image package too

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec(
            name=f"test-{self.id}",
            repo_id=f"local/{self.id}",
            family=self.family,
            dimensions=0,  # the engine reads the width from the folder
            max_tokens=None,
            pooling=PoolingMode.MEAN,
        )


CASES = [
    Case("real-all-MiniLM-L6-v2", Family.BERT),
    Case("bert-mean", Family.BERT, lambda d: write_bert_model(d, pooling="mean", seed=1)),
    Case(
        "bert-all-modes-normalized",
        Family.BERT,
        lambda d: write_bert_model(
            d,
            pooling=["lasttoken", "max", "cls", "weightedmean", "mean_sqrt_len_tokens", "mean"],
            normalize=True,
            seed=2,
        ),
    ),
    Case(
        "bert-dense-tanh-identity-normalized",
        Family.BERT,
        lambda d: write_bert_model(
            d,
            dense=[DenseModule(24), DenseModule(16, "Identity", bias=False)],
            normalize=True,
            seed=8,
        ),
    ),
    Case(
        "bert-modes-without-prompt",
        Family.BERT,
        lambda d: write_bert_model(
            d,
            pooling=["lasttoken", "max", "cls", "weightedmean", "mean"],
            include_prompt=False,
            seed=9,
        ),
    ),
    # google/embeddinggemma-300m's layout: rotary, windowed grouped attention, two Dense
    Case(
        "gemma3-embeddinggemma",
        Family.GEMMA3,
        lambda d: write_gemma3_model(d, seed=14),
        max_tokens=2048,
    ),
    # cross-encoder/ms-marco-MiniLM-L6-v2's and BAAI/bge-reranker-v2-m3's: a score head, token
    # types in the mask
    Case(
        "bert-cross-encoder",
        Family.BERT_CROSS_ENCODER,
        lambda d: write_cross_encoder(d, "ms-marco", seed=17),
    ),
    Case(
        "xlm-roberta-cross-encoder",
        Family.XLM_ROBERTA_CROSS_ENCODER,
        lambda d: write_cross_encoder(d, "bge-m3", seed=18),
        max_tokens=8192,
    ),
    # Alibaba-NLP/gte-reranker-modernbert-base's: ModernBERT, its head on the mean of the tokens
    Case(
        "modernbert-cross-encoder",
        Family.MODERNBERT_CROSS_ENCODER,
        lambda d: write_cross_encoder(d, "gte-reranker-modernbert-base", seed=19),
        max_tokens=8192,
    ),
    # Alibaba-NLP/gte-modernbert-base's layout: rotary, GeGLU, global and windowed layers
    Case(
        "modernbert-gte",
        Family.MODERNBERT,
        lambda d: write_modernbert_model(d, seed=16),
        max_tokens=8192,
    ),
    # Qwen/Qwen3-Embedding-0.6B's layout: causal, grouped, q/k-normed, last token
    Case(
        "qwen3-embedding",
        Family.QWEN3,
        lambda d: write_qwen3_model(d, max_seq_length=512, seed=15),
        max_tokens=32768,  # its config's max_position_embeddings: rotary has no table to end
    ),
    Case(
        "roberta-cls-normalized",
        Family.ROBERTA,
        lambda d: write_roberta_model(d, pooling="cls", normalize=True, seed=3),
    ),
    # BAAI/bge-m3's layout: 8,194 position rows, so the token axis reaches 8,192
    Case(
        "xlm-roberta-8194-positions-cls",
        Family.XLM_ROBERTA,
        lambda d: write_repo_layout("BAAI/bge-m3", d, seed=13),
        max_tokens=8192,
    ),
    Case(
        "xlm-roberta-mean",
        Family.XLM_ROBERTA,
        lambda d: write_roberta_model(d, flavour="xlm-roberta", seed=4),
    ),
    Case(
        "distilbert-cls",
        Family.DISTILBERT,
        lambda d: write_distilbert_model(d, pooling="cls", seed=11),
    ),
    # a relative position bias, and positions from padding_idx + 1: 514 rows hold 512 tokens
    Case("mpnet-mean-normalized", Family.MPNET, lambda d: write_mpnet_model(d, seed=12)),
    # rotary positions (no table: n_positions bounds the axis), SwiGLU, Nomic's config names
    Case(
        "nomic-bert-mean",
        Family.NOMIC_BERT,
        lambda d: write_nomic_bert_model(d, seed=13),
        max_tokens=8192,
    ),
    Case("clip", Family.CLIP, lambda d: write_clip_model(d, seed=5), max_tokens=77, vision=True),
    Case(
        "clip-legacy-eos-gelu",
        Family.CLIP,
        lambda d: write_clip_model(d, seed=6, eos="legacy", hidden_act="gelu"),
        max_tokens=77,
        vision=True,
    ),
    Case(
        "clip-text-only",
        Family.CLIP,
        lambda d: write_clip_model(d, seed=7, text_only=True),
        max_tokens=77,
    ),
]


VISION_CASES = [c for c in CASES if c.vision]


@dataclass(frozen=True)
class Built:
    case: Case
    folder: Path
    model: Any  # BertModel | RobertaModel | ClipModel, as the numpy engine reads the folder
    text: Path
    image: Path | None


class _Workshop:
    """Writes each case's folder and builds its packages once, into one cache, on first use."""

    def __init__(self, tmp: pytest.TempPathFactory) -> None:
        self._tmp = tmp
        self.cache = tmp.mktemp("coreml-cache")
        self._built: dict[str, Built] = {}

    def __call__(self, case: Case) -> Built:
        if case.id not in self._built:
            folder = (
                minilm_folder() if case.factory is None else case.factory(self._tmp.mktemp(case.id))
            )
            text = build_coreml_package(case.spec, folder, self.cache)
            image = None
            if case.vision:
                image = build_coreml_package(case.spec, folder, self.cache, tower="image")
            self._built[case.id] = Built(case, folder, _read(case.family, folder), text, image)
        return self._built[case.id]


@pytest.fixture(scope="module")
def workshop(tmp_path_factory: pytest.TempPathFactory) -> _Workshop:
    return _Workshop(tmp_path_factory)


@pytest.fixture(scope="module", params=CASES, ids=[c.id for c in CASES])
def built(request: pytest.FixtureRequest, workshop: _Workshop) -> Built:
    return workshop(request.param)


@pytest.fixture(scope="module", params=VISION_CASES, ids=[c.id for c in VISION_CASES])
def built_vision(request: pytest.FixtureRequest, workshop: _Workshop) -> Built:
    return workshop(request.param)


def _read(family: Family, folder: Path) -> Any:
    return FAMILY_READERS[family].read(folder, PoolingMode.MEAN)


# --- reading a saved package back ---------------------------------------------------------------


@functools.cache
def _saved(path: Path) -> tuple[Any, Any]:
    """The package's spec, and its main function as coremltools' MIL frontend reads it back."""
    model = ct.models.MLModel(str(path), skip_model_load=True)
    spec = model.get_spec()
    program = load_milproto(spec, spec.specificationVersion, model.weights_dir)
    return spec, program.functions["main"]


def _width(model: Any) -> int:
    if isinstance(model, ClipModel):
        return model.config.projection_dim
    if isinstance(model, _CROSS_ENCODERS):
        return model.dimensions  # the logit and the score
    config = getattr(model.config, "encoder", model.config)  # BERT's, under other families
    return model.head.width(config.hidden_size)  # pooling modes concatenate; a Dense sets it


def _arrays(weights: object) -> Iterator[np.ndarray[Any, Any]]:
    """Every array a weights dataclass holds, at any depth; of token types, the row used."""
    if isinstance(weights, np.ndarray):
        yield weights
    elif isinstance(weights, tuple):
        for item in weights:
            yield from _arrays(item)
    elif dataclasses.is_dataclass(weights):
        for f in dataclasses.fields(weights):
            value = getattr(weights, f.name)
            is_embeddings = isinstance(weights, (BertEmbeddings, NomicBertEmbeddings))
            if is_embeddings and f.name == "token_type_embeddings":
                value = value[0]  # every token is type 0: the forward pass adds row 0 alone
            yield from _arrays(value)


# --- the package's interface --------------------------------------------------------------------


def test_text_package_takes_int32_ids_and_mask_of_any_batch_and_length(built: Built) -> None:
    """input_ids and attention_mask: int32, 1..MAX_BATCH rows of 1..the model's position limit."""
    spec, _ = _saved(built.text)
    inputs = {i.name: i.type.multiArrayType for i in spec.description.input}
    assert list(inputs) == ["input_ids", "attention_mask"]
    for array in inputs.values():
        assert array.dataType == ct.proto.FeatureTypes_pb2.ArrayFeatureType.INT32
        ranges = [(r.lowerBound, r.upperBound) for r in array.shapeRange.sizeRanges]
        assert ranges == [(1, MAX_BATCH), (1, built.case.max_tokens)]


def test_text_package_answers_one_float32_vector_per_row(built: Built) -> None:
    """The output is `embeddings`, float32 [batch, D], D the pooled (and projected) width."""
    spec, main = _saved(built.text)
    assert [o.name for o in spec.description.output] == ["embeddings"]
    assert spec.description.output[0].type.multiArrayType.dataType == (
        ct.proto.FeatureTypes_pb2.ArrayFeatureType.FLOAT32
    )
    (out,) = main.outputs
    assert out.rank == 2
    assert out.shape[1] == _width(built.model)
    assert out.dtype == types.fp32


def test_image_package_takes_float32_pixels_and_answers_vectors(built_vision: Built) -> None:
    """CLIP's vision package: pixel_values [1..MAX_BATCH, C, S, S] in, embeddings [batch, D]."""
    built = built_vision
    assert built.image is not None
    spec, main = _saved(built.image)
    (pixels,) = spec.description.input
    cfg = built.model.config
    assert pixels.name == "pixel_values"
    array = pixels.type.multiArrayType
    assert array.dataType == ct.proto.FeatureTypes_pb2.ArrayFeatureType.FLOAT32
    assert list(array.shape)[1:] == [cfg.num_channels, cfg.image_size, cfg.image_size]
    batch = array.shapeRange.sizeRanges[0]
    assert (batch.lowerBound, batch.upperBound) == (1, MAX_BATCH)
    (out,) = main.outputs
    assert [o.name for o in spec.description.output] == ["embeddings"]
    assert (out.rank, out.shape[1]) == (2, cfg.projection_dim)


# --- the package's weights ----------------------------------------------------------------------


def _assert_holds_bit_for_bit(package: Path, weights: list[np.ndarray[Any, Any]]) -> None:
    _, main = _saved(package)
    consts = {
        op.outputs[0].val.tobytes()
        for op in main.operations
        if op.op_type == "const"
        and isinstance(op.outputs[0].val, np.ndarray)
        and op.outputs[0].val.dtype == np.float32
    }
    assert len(weights) > 10
    missing = [w.shape for w in weights if np.ascontiguousarray(w).tobytes() not in consts]
    assert not missing, (
        f"{len(missing)} of {len(weights)} weights are not in the package: {missing}"
    )


def test_text_package_holds_every_weight_bit_for_bit_in_float32(built: Built) -> None:
    """Every embedding table, Linear and Norm tensor we loaded is a float32 const of the package."""
    model = built.model
    weights = model.text if isinstance(model, ClipModel) else model.weights
    if isinstance(model, BertCrossEncoder):  # its type rows are read through types_by_mask
        types = dataclasses.replace(weights.embeddings, token_type_embeddings=model.types_by_mask)
        weights = dataclasses.replace(weights, embeddings=types)
    arrays = list(_arrays(weights))
    if isinstance(model, BertCrossEncoder):
        # _arrays gave the table's row 0, as for BERT's own types: the package holds the table
        at = next(n for n, a in enumerate(arrays) if np.shares_memory(a, model.types_by_mask))
        arrays[at] = model.types_by_mask
    if isinstance(model, _CROSS_ENCODERS):
        arrays += list(_arrays(model.head))
    _assert_holds_bit_for_bit(built.text, arrays)


def test_image_package_holds_every_weight_bit_for_bit_in_float32(built_vision: Built) -> None:
    """The vision tower's patch embedding, class token, positions, layers, norms, projection."""
    assert built_vision.image is not None
    _assert_holds_bit_for_bit(built_vision.image, list(_arrays(built_vision.model.vision)))


# --- what the recording computes ----------------------------------------------------------------


def _evaluated(forward: Callable[..., Any], *arrays: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """`forward` recorded by MilOps from constant inputs: coremltools' value inference computes
    each op as it is added (its numpy definition of the op), so the result is what the program
    computes, as coremltools defines each MIL op."""
    result: dict[str, Any] = {}

    @mb.program(  # type: ignore[untyped-decorator]
        input_specs=[mb.TensorSpec(shape=(1,), dtype=types.fp32)], opset_version=OPSET
    )
    def program(unused: Any) -> Any:
        out = forward(MilOps(), *(mb.const(val=a) for a in arrays))
        result["value"] = out.val
        return mb.identity(x=unused)

    assert program is not None
    assert result["value"] is not None, "an op without value inference broke the chain"
    return np.asarray(result["value"], dtype=np.float32)


def _token_batch(model: Any) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Three right-padded rows of 9, 5 and 2 tokens, with the ids each family singles out."""
    rng = np.random.default_rng(0)
    vocab = getattr(model.config, "encoder", model.config).vocab_size
    ids = rng.integers(0, vocab - 1, (3, 9))
    mask = np.zeros((3, 9), dtype=np.int64)
    for row, length in enumerate((9, 5, 2)):
        mask[row, :length] = 1
        ids[row, length:] = 0  # what application.batching pads with
    if isinstance(model, ClipModel):
        eos = model.config.eos_token_id or vocab - 1  # None: the largest id marks the end
        ids[0, [4, 8]] = eos  # twice: the first one counts
        ids[1, 4] = eos
        ids[2, 1] = eos
    if isinstance(model, RobertaModel):
        ids[0, 3] = model.config.padding_idx  # a pad id inside a row gets no position
    if isinstance(model, MPNetModel):
        ids[0, 3] = PADDING_IDX
    if isinstance(model, BertModel) and not model.head.include_prompt:
        mask[:2, :3] = PROMPT_TOKEN  # a prompt's tokens: attended, left out of pooling
    return ids, mask


def _text_forward(family: Family, model: Any) -> Callable[..., Any]:
    forward = FAMILIES[family].text_forward
    return lambda ops, ids, mask: forward(ops, ids, mask, model)


def _assert_close(got: np.ndarray[Any, Any], want: np.ndarray[Any, Any]) -> None:
    assert got.shape == want.shape
    scale = max(1.0, float(np.abs(want).max()))  # float32 error is relative (tests/tolerances.py)
    assert float(np.abs(got - want).max()) <= MAX_ABS_DIFF * scale


def test_recorded_text_tower_computes_what_the_numpy_reference_computes(built: Built) -> None:
    """The MIL ops MilOps records, evaluated by coremltools, give the numpy engine's vectors."""
    ids, mask = _token_batch(built.model)
    forward = _text_forward(built.case.family, built.model)
    got = _evaluated(forward, ids.astype(np.int32), mask.astype(np.int32))
    _assert_close(got, forward(NumpyOps(), ids, mask))


def _pixels(model: ClipModel, rows: int) -> np.ndarray[Any, Any]:
    cfg = model.config
    shape = (rows, cfg.num_channels, cfg.image_size, cfg.image_size)
    return np.random.default_rng(rows).standard_normal(shape).astype(np.float32)


def test_recorded_image_tower_computes_what_the_numpy_reference_computes(
    built_vision: Built,
) -> None:
    """CLIP's vision tower, recorded and evaluated by coremltools, against the numpy engine."""
    model = built_vision.model

    def forward(ops: Any, pixels: Any) -> Any:
        return clip_image_embedding(ops, pixels, model)

    pixels = _pixels(model, 2)
    _assert_close(_evaluated(forward, pixels), forward(NumpyOps(), pixels))


# --- the engine's load ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small BERT with max pooling; tests that change it change a copy."""
    return write_bert_model(tmp_path_factory.mktemp("small-bert"), pooling="max", seed=9)


@pytest.fixture
def converts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts coremltools' conversions (one per package built)."""
    calls: list[int] = []
    convert = ct.convert

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return convert(*args, **kwargs)

    monkeypatch.setattr(ct, "convert", counting)
    return calls


def _bert_spec() -> ModelSpec:
    return ModelSpec("small-bert", "local/small-bert", Family.BERT, 32, None, PoolingMode.MEAN)


def _packages(cache: Path) -> dict[str, int]:
    """Every entry of the cache folder, with its Manifest.json's mtime (0 for other entries)."""
    manifest = {p.name: p / "Manifest.json" for p in cache.iterdir()}
    return {name: m.stat().st_mtime_ns if m.is_file() else 0 for name, m in manifest.items()}


@pytest.mark.skipif(ON_MACOS, reason="on macOS the engine loads the package and predicts")
def test_load_off_macos_builds_the_package_then_says_in_one_line_it_cannot_predict(
    small_bert: Path, tmp_path: Path, converts: list[int]
) -> None:
    """Off macOS, load builds and saves the package, then answers one line naming the fix."""
    result = CoreMLEngine(tmp_path).load(_bert_spec(), small_bert)
    assert isinstance(result, ModelUnavailable)
    assert result.reason == (
        f"the coreml engine predicts on macOS only (this is {platform.system()}); "
        "use --engine onnxruntime, openvino or numpy"
    )
    assert "\n" not in result.message
    assert converts == [1]
    (name,) = _packages(tmp_path)  # the package alone: no staging folder left behind
    assert name.startswith("coreml-bert-text-")
    assert name.endswith(".mlpackage")


@pytest.mark.skipif(ON_MACOS, reason="on macOS the engine loads the package and predicts")
def test_a_second_load_reuses_the_saved_package(
    small_bert: Path, tmp_path: Path, converts: list[int]
) -> None:
    """Loading the same folder again converts nothing and leaves the package untouched."""
    engine = CoreMLEngine(tmp_path)
    first = engine.load(_bert_spec(), small_bert)
    before = _packages(tmp_path)
    second = CoreMLEngine(tmp_path).load(_bert_spec(), small_bert)
    assert second == first
    assert converts == [1]
    assert _packages(tmp_path) == before


@pytest.mark.skipif(ON_MACOS, reason="on macOS the engine loads the package and predicts")
def test_load_builds_both_towers_of_a_clip_model(tmp_path: Path, converts: list[int]) -> None:
    """A CLIP model with a vision tower gets a text package and an image package."""
    folder = write_clip_model(tmp_path / "clip", seed=10)
    spec = ModelSpec("clip", "local/clip", Family.CLIP, 24, None, PoolingMode.EOS)
    assert isinstance(CoreMLEngine(tmp_path / "cache").load(spec, folder), ModelUnavailable)
    names = sorted(n.rsplit("-", 1)[0] for n in _packages(tmp_path / "cache"))
    assert names == ["coreml-clip-image", "coreml-clip-text"]
    assert converts == [1, 1]


@pytest.mark.parametrize("change", ["weights touched", "config edited", "pooling changed"])
def test_a_changed_folder_gets_a_new_package(small_bert: Path, tmp_path: Path, change: str) -> None:
    """The cache key covers the weights file's size and mtime, config.json and the head."""
    folder = Path(shutil.copytree(small_bert, tmp_path / "model"))
    first = build_coreml_package(_bert_spec(), folder, tmp_path / "cache")
    match change:
        case "weights touched":
            weights = folder / "model.safetensors"
            stat = weights.stat()
            os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        case "config edited":
            config = folder / "config.json"
            config.write_text(config.read_text().replace("{", '{"note": 1,', 1))
        case "pooling changed":
            pooling = next(folder.glob("*_Pooling/config.json"))
            pooling.write_text(pooling.read_text().replace('"max"', '"mean"'))
    second = build_coreml_package(_bert_spec(), folder, tmp_path / "cache")
    assert second != first
    assert first.is_dir()
    assert second.is_dir()


def test_the_engine_refuses_families_it_does_not_record(tmp_path: Path) -> None:
    """Static and word-vector families have no forward pass worth a Core ML program."""
    engine = CoreMLEngine(tmp_path)
    assert engine.families == {
        Family.BERT,
        Family.ROBERTA,
        Family.XLM_ROBERTA,
        Family.DISTILBERT,
        Family.MPNET,
        Family.GEMMA3,
        Family.QWEN3,
        Family.MODERNBERT,
        Family.NOMIC_BERT,
        Family.BERT_CROSS_ENCODER,
        Family.XLM_ROBERTA_CROSS_ENCODER,
        Family.MODERNBERT_CROSS_ENCODER,
        Family.CLIP,
    }
    spec = ModelSpec("glove", "local/glove", Family.WORD2VEC, 50, None, PoolingMode.MEAN)
    assert isinstance(engine.load(spec, tmp_path), ModelUnavailable)
    assert not any(tmp_path.iterdir())


# --- macOS: the packages run ----------------------------------------------------------------------


@pytest.mark.skipif(not ON_MACOS, reason="Core ML predicts on macOS only")
def test_on_macos_the_packages_embed_as_the_numpy_engine_does(built: Built, tmp_path: Path) -> None:
    """Core ML on the CPU (float32 throughout) gives the numpy engine's vectors."""
    engine = CoreMLEngine(tmp_path, compute_units="cpu_only")
    encoder = engine.load(built.case.spec, built.folder)
    reference = NumpyEngine().load(built.case.spec, built.folder)
    assert not isinstance(encoder, ModelUnavailable), encoder
    assert not isinstance(reference, ModelUnavailable), reference
    ids, mask = _token_batch(built.model)
    _assert_close(encoder.embed(ids, mask), reference.embed(ids, mask))
    if built.image is not None:
        assert encoder.images is not None
        assert reference.images is not None
        pixels = _pixels(built.model, 3)
        _assert_close(encoder.images.embed(pixels), reference.images.embed(pixels))
