"""Every family, downloaded by the real server from a stand-in hub, equals its reference library.

One hub stand-in (tests/hub_standin.py) serves, under each row's real catalogue repo id, a small
model with random weights in the family's real file layout, plus the files real repos carry and
no family reads (DECOYS). The real server (the console script, as a subprocess) starts with
HF_ENDPOINT at the stand-in and an empty home. Every model embeds the same texts through
`POST /v1/embeddings` (the official openai SDK: encoding_format float, then base64) and
`POST /api/embed` (the official ollama SDK), and must equal its reference library on the same
generated folder: L2-normalised on both by default, the model's own output with
`"normalize": false`. The files
under `<home>/Embeddings/<repo_id>/` must be exactly those the family reads.

Then the server and the stand-in stop, and a second server starts on the same home, offline
(HF_HUB_OFFLINE=1, HF_ENDPOINT at a port where nothing listens): every model must answer exactly
as before, from the cache.

Both phases run once, in one module fixture, before any assertion (one server start each); what
went wrong for one model is kept as text and fails only that model's tests.

Adding a family is one row in ROWS: the catalogue name it is asked by, a writer of its repo, its
reference output, and the files it reads.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import ollama
import openai
import pytest

from adapters.tokenizers.word_level import words
from application.catalogue import CATALOGUE
from tests.corpus import VARIED_TEXTS
from tests.hub_standin import HubStandIn, Seen, unreachable_url
from tests.model_factory import DenseModule, reference_model, write_bert_model
from tests.model_factory_clip import write_clip_model
from tests.model_factory_repos import write_repo_layout
from tests.model_factory_roberta import write_roberta_model
from tests.model_factory_static import write_model2vec_model, write_static_model
from tests.model_factory_word2vec import random_vectors, write_word2vec_text
from tests.parity.test_bert_parity import scaled_abs_diff
from tests.server_process import running_server
from tests.tolerances import MAX_ABS_DIFF, MIN_COSINE

pytestmark = [pytest.mark.slow, pytest.mark.reference]


# The shared corpus: multilingual, emoji, empty and whitespace-only, and texts past every limit.
TEXTS = VARIED_TEXTS

# What hub repos carry besides the files a family reads: other frameworks' weights, a second
# weights file (pickle-based, beside the safetensors every generated repo has), exports, git.
DECOYS = {
    ".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
    "pytorch_model.bin": b"a pickle that must never be fetched",
    "tf_model.h5": b"tensorflow",
    "flax_model.msgpack": b"flax",
    "rust_model.ot": b"rust",
    "onnx/model.onnx": b"onnx",
    "onnx/config.json": b"{}",
    "onnx/tokenizer.json": b"{}",
    "openvino/openvino_model.xml": b"<net/>",
    "openvino/openvino_model.bin": b"openvino",
}

WAYS = ("openai-float", "openai-base64", "openai-model-output", "ollama", "ollama-model-output")

Vectors = np.ndarray
Answer = Vectors | str  # the vectors, or what went wrong


# --- the families ----------------------------------------------------------------------------


def sentence_transformers_output(folder: Path, texts: list[str]) -> Vectors:
    model = reference_model(folder)
    return np.asarray(model.encode(texts, batch_size=32, convert_to_numpy=True), np.float32)


def model2vec_output(folder: Path, texts: list[str]) -> Vectors:
    from model2vec import StaticModel

    model = StaticModel.from_pretrained(folder)
    return np.asarray(model.encode(texts, use_multiprocessing=False), np.float32)


def mean_of_known_words(folder: Path, texts: list[str]) -> Vectors:
    """No library defines a GloVe sentence vector: the mean of the text's known words' rows,
    the table read here from the word2vec text file (words split by the server's rule)."""
    [path] = folder.glob("*.txt")
    header, *lines = path.read_text(encoding="utf-8").splitlines()
    dim = int(header.split()[1])
    rows = [line.rsplit(" ", dim) for line in lines]
    index = {row[0]: n for n, row in reversed(list(enumerate(rows)))}
    table = np.asarray([row[1:] for row in rows], dtype=np.float64)
    out = np.zeros((len(texts), dim))
    for n, text in enumerate(texts):
        known = [index[w] for w in words(text) if w in index]
        if known:
            out[n] = table[known].mean(axis=0)
    return out.astype(np.float32)


def _glove_twitter_25(folder: Path) -> Path:
    """jkrukowski/glove-twitter-25's layout: one word2vec text file; every other corpus word."""
    vocabulary = ["<user>", "<url>", *sorted({w for t in TEXTS for w in words(t)})[::2]]
    vectors = random_vectors(len(vocabulary), 25, seed=25)
    write_word2vec_text(folder, vocabulary, vectors, "glove-twitter-25.txt")
    return folder


def clip_text_features(folder: Path, texts: list[str]) -> Vectors:
    from tests.parity.test_clip_parity import reference_text

    return reference_text(folder, texts)[0]


def _bert_with_a_torch_checkpoint(folder: Path) -> Path:
    """A plain transformers BERT repo from before safetensors: pytorch_model.bin only."""
    import torch
    from safetensors.torch import load_file

    write_bert_model(folder, layout="transformers", seed=8)
    torch.save(load_file(folder / "model.safetensors"), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    return folder


# one repo, two readings (Model2Vec and Static): both rows name this one writer
_m2v_base_output = functools.partial(
    write_model2vec_model, shared_rows=50, token_weights=True, normalize=True, seed=15
)

_ST_BERT_READS = frozenset(
    {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "modules.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
        "1_Pooling/config.json",
    }
)
_PLAIN_ROBERTA_READS = frozenset(
    {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
    }
)
# both readings of a model2vec repo share its folder, so each brings the other's files
_MODEL2VEC_READS = frozenset({"config.json", "model.safetensors", "tokenizer.json", "modules.json"})


@dataclass(frozen=True)
class Row:
    model: str  # the catalogue name (and tag) both dialects ask for
    write: Callable[[Path], Path]  # writes the repo's files into a folder
    reference: Callable[[Path, list[str]], Vectors]  # the reference library's output
    reads: frozenset[str]  # the repo files the family reads: all that may be downloaded

    @property
    def repo_id(self) -> str:
        name, _, tag = self.model.partition(":")
        return next(s.repo_id for s in CATALOGUE if s.name == name and s.tag == (tag or "latest"))


ROWS = [
    Row(
        "gte-base",  # BERT, sentence-transformers files in the legacy format, Normalize
        functools.partial(write_bert_model, config_format="legacy", normalize=True, seed=1),
        sentence_transformers_output,
        _ST_BERT_READS,
    ),
    Row(
        "msmarco-bert-base-dot-v5",  # CLS, then two Dense modules (one a torch pickle)
        functools.partial(
            write_bert_model,
            pooling="cls",
            dense=[DenseModule(24), DenseModule(16, "Identity", bias=False, weights="bin")],
            include_prompt=False,
            seed=20,
        ),
        sentence_transformers_output,
        _ST_BERT_READS
        | {
            "2_Dense/config.json",
            "2_Dense/model.safetensors",
            "3_Dense/config.json",
            "3_Dense/pytorch_model.bin",
        },
    ),
    Row(
        "roberta-base",  # a plain transformers repo: RobertaForMaskedLM keys, byte-level BPE
        functools.partial(
            write_roberta_model,
            flavour="roberta",
            layout="transformers",
            prefixed=True,
            max_seq_length=128,  # the real 512 costs seconds a request here
            seed=2,
        ),
        sentence_transformers_output,
        _PLAIN_ROBERTA_READS,
    ),
    Row(
        "xlm-roberta-base",  # a plain transformers repo: XLMRobertaForMaskedLM keys, Unigram
        functools.partial(
            write_roberta_model,
            flavour="xlm-roberta",
            layout="transformers",
            prefixed=True,
            max_seq_length=128,  # the real 512 costs seconds a request here
            seed=3,
        ),
        sentence_transformers_output,
        _PLAIN_ROBERTA_READS,
    ),
    Row(
        "paraphrase-multilingual-mpnet-base-v2",  # XLM-R in sentence-transformers layout
        functools.partial(
            write_roberta_model,
            flavour="xlm-roberta",
            config_format="legacy",
            max_seq_length=128,
            seed=4,
        ),
        sentence_transformers_output,
        _ST_BERT_READS | {"special_tokens_map.json"},
    ),
    Row(
        "glove-twitter-25",
        _glove_twitter_25,
        mean_of_known_words,
        frozenset({"glove-twitter-25.txt"}),
    ),
    Row(
        "potion-base-2M",
        functools.partial(write_model2vec_model, normalize=True, token_weights=True, seed=5),
        model2vec_output,
        _MODEL2VEC_READS,
    ),
    # the Model2Vec reading of M2V_base_output first, so the Static reading finds its folder
    Row("M2V_base_output", _m2v_base_output, model2vec_output, _MODEL2VEC_READS),
    Row(
        "static-similarity-mrl-multilingual-v1",  # 0_StaticEmbedding/, as the hub repo has it
        functools.partial(write_static_model, tokenizer="unigram", seed=6),
        sentence_transformers_output,
        frozenset(
            {
                "modules.json",
                "0_StaticEmbedding/model.safetensors",
                "0_StaticEmbedding/tokenizer.json",
            }
        ),
    ),
    Row("M2V_base_output:static", _m2v_base_output, sentence_transformers_output, _MODEL2VEC_READS),
    Row(
        "clip-vit-base-patch32",  # the text tower; images go through HTTP in test_clip_parity
        functools.partial(write_clip_model, seed=9),
        clip_text_features,
        frozenset(
            {
                "config.json",
                "model.safetensors",
                "tokenizer.json",
                "tokenizer_config.json",
                "preprocessor_config.json",
            }
        ),
    ),
    Row(
        "bert-base-uncased",  # weights in a torch pickle, read as data
        _bert_with_a_torch_checkpoint,
        sentence_transformers_output,
        (_PLAIN_ROBERTA_READS - {"model.safetensors"}) | {"pytorch_model.bin"},
    ),
    Row(  # DistilBERT, legacy sentence-transformers files, mean pooling
        "msmarco-distilbert-base-v4",
        functools.partial(write_repo_layout, "sentence-transformers/msmarco-distilbert-base-v4"),
        sentence_transformers_output,
        _ST_BERT_READS,
    ),
    Row(  # MPNet, legacy files, Normalize: its Normalize folder holds nothing to read
        "all-mpnet-base-v2",
        functools.partial(write_repo_layout, "sentence-transformers/all-mpnet-base-v2", seed=17),
        sentence_transformers_output,
        _ST_BERT_READS,
    ),
]


# --- one run: generate, serve, ask, stop, ask again offline ----------------------------------


@dataclass(frozen=True)
class Phase:
    """What one server start answered, and what it left on disk."""

    answers: dict[tuple[str, str], Answer]  # (model, way) -> vectors or the failure
    files: dict[str, dict[str, bytes]]  # repo id -> files under <home>/Embeddings/<repo id>
    partial: list[str]  # whatever is left under <home>/Embeddings/.partial
    requests: list[Seen]  # what the hub stand-in was asked, in order


@dataclass(frozen=True)
class Run:
    sources: dict[str, dict[str, bytes]]  # repo id -> the generated files, decoys aside
    references: dict[str, Vectors]  # model -> the reference output on TEXTS
    online: Phase
    offline: Phase


def _files(folder: Path) -> dict[str, bytes]:
    """What was downloaded into the folder: the copies a load keeps beside a word2vec text
    (`.embedserve/`, adapters/weights/table_cache.py) are the server's, not the repo's."""
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and ".embedserve" not in path.relative_to(folder).parts
    }


def _generate(root: Path) -> dict[str, Path]:
    """One folder per repo; rows that share a repo share its writer."""
    folders: dict[str, Path] = {}
    writers: dict[str, Callable[[Path], Path]] = {}
    for row in ROWS:
        if row.repo_id in writers:
            assert writers[row.repo_id] is row.write, f"{row.model}: one repo, two writers"
            continue
        writers[row.repo_id] = row.write
        folders[row.repo_id] = row.write(root / row.repo_id.replace("/", "--"))
    return folders


@dataclass(frozen=True)
class _Clients:
    oai: openai.OpenAI
    oll: ollama.Client
    url: str

    def embed(self, way: str, model: str) -> Vectors:
        """TEXTS embedded by `model`, one of WAYS, as float32 rows."""
        match way:
            case "openai-float":
                result = self.oai.embeddings.create(
                    model=model, input=TEXTS, encoding_format="float"
                )
                return np.asarray([d.embedding for d in result.data], dtype=np.float32)
            case "openai-base64":  # little-endian float32, as the wire carries it
                result = self.oai.embeddings.create(
                    model=model, input=TEXTS, encoding_format="base64"
                )
                rows = [base64.b64decode(str(d.embedding)) for d in result.data]
                return np.stack([np.frombuffer(row, dtype="<f4") for row in rows])
            case "openai-model-output":  # embedserve's `normalize: false`
                result = self.oai.embeddings.create(
                    model=model, input=TEXTS, extra_body={"normalize": False}
                )
                return np.asarray([d.embedding for d in result.data], dtype=np.float32)
            case "ollama":
                embedded = self.oll.embed(model=model, input=TEXTS).embeddings
                return np.asarray(embedded, dtype=np.float32)
            case "ollama-model-output":  # the ollama SDK sends only its own fields
                response = httpx.post(
                    f"{self.url}/api/embed",
                    json={"model": model, "input": TEXTS, "normalize": False},
                    timeout=120,
                )
                response.raise_for_status()
                return np.asarray(response.json()["embeddings"], dtype=np.float32)
            case _:
                raise ValueError(way)


def _ask(url: str) -> dict[tuple[str, str], Answer]:
    answers: dict[tuple[str, str], Answer] = {}
    oai = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    with oai, ollama.Client(host=url) as oll:
        clients = _Clients(oai, oll, url)
        for row in ROWS:
            for way in WAYS:
                try:
                    answers[row.model, way] = clients.embed(way, row.model)
                except (
                    openai.OpenAIError,
                    ollama.ResponseError,
                    httpx.HTTPError,
                    ValueError,
                ) as err:
                    answers[row.model, way] = f"{way}: {type(err).__name__}: {err}"
    return answers


def _phase(home: Path, log: Path, env: dict[str, str], hub: HubStandIn | None) -> Phase:
    with running_server(home, log, env) as url:
        answers = _ask(url)
    embeddings = home / "Embeddings"
    partial = embeddings / ".partial"
    return Phase(
        answers,
        {row.repo_id: _files(embeddings / row.repo_id) for row in ROWS},
        sorted(p.relative_to(partial).as_posix() for p in partial.rglob("*")),
        list(hub.requests) if hub is not None else [],
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("families")
    folders = _generate(root / "repos")
    sources = {repo_id: _files(folder) for repo_id, folder in folders.items()}
    references = {row.model: row.reference(folders[row.repo_id], TEXTS) for row in ROWS}
    home = root / "home"
    # a repo's own files win over a decoy of the same name (bert-base-uncased's .bin is real)
    with HubStandIn({repo_id: DECOYS | files for repo_id, files in sources.items()}) as hub:
        online = _phase(home, root / "online.log", {"HF_ENDPOINT": hub.url}, hub)
    offline_env = {"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": unreachable_url()}
    offline = _phase(home, root / "offline.log", offline_env, None)
    return Run(sources, references, online, offline)  # the logs stay in `root`


# --- checks ------------------------------------------------------------------------------------


def _vectors(phase: Phase, row: Row, way: str) -> Vectors:
    answer = phase.answers[row.model, way]
    assert not isinstance(answer, str), answer
    return answer


def _unit(vectors: Vectors) -> Vectors:
    """Rows at unit length; a zero row (no token to average) stays zero, as the server sends."""
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1, keepdims=True)
    unit: Vectors = np.where(norms > 0, vectors / np.maximum(norms, 1e-30), 0.0)
    return unit


def _assert_close(ours: Vectors, reference: Vectors) -> None:
    """Per component within MAX_ABS_DIFF (scaled for vectors longer than 1), cosine above
    MIN_COSINE, and zero exactly where the reference is zero."""
    assert ours.shape == reference.shape
    assert np.isfinite(ours).all()
    diff = scaled_abs_diff(ours, reference)
    worst = int(np.argmax(diff.max(axis=1)))
    assert diff.max() < MAX_ABS_DIFF, f"{diff.max():.3g} at text {worst}: {TEXTS[worst][:60]!r}"
    zero = np.linalg.norm(reference, axis=1) == 0
    assert not ours[zero].any()
    cosine = (_unit(ours) * _unit(reference)).sum(axis=1)[~zero]
    assert cosine.min() > MIN_COSINE, TEXTS[int(np.argmin(cosine))][:60]


_BY_MODEL = pytest.mark.parametrize("row", ROWS, ids=[row.model for row in ROWS])


@_BY_MODEL
def test_openai_floats_equal_the_normalised_reference(run: Run, row: Row) -> None:
    """/v1/embeddings with encoding_format float is the reference output at unit length."""
    _assert_close(_vectors(run.online, row, "openai-float"), _unit(run.references[row.model]))


@_BY_MODEL
def test_openai_base64_carries_the_float_answer_bit_for_bit(run: Run, row: Row) -> None:
    """encoding_format base64 decodes (little-endian float32) to exactly the float answer."""
    b64 = _vectors(run.online, row, "openai-base64")
    assert np.array_equal(b64, _vectors(run.online, row, "openai-float"))
    _assert_close(b64, _unit(run.references[row.model]))


@_BY_MODEL
def test_normalize_false_is_the_reference_librarys_own_output(run: Run, row: Row) -> None:
    """`"normalize": false`, on /v1/embeddings and /api/embed alike, is the model's output."""
    for way in ("openai-model-output", "ollama-model-output"):
        _assert_close(_vectors(run.online, row, way), run.references[row.model])


@_BY_MODEL
def test_ollama_embed_equals_the_normalised_reference(run: Run, row: Row) -> None:
    """/api/embed is the reference output at unit length (zero stays zero)."""
    _assert_close(_vectors(run.online, row, "ollama"), _unit(run.references[row.model]))


@_BY_MODEL
def test_only_the_files_the_family_reads_are_downloaded(run: Run, row: Row) -> None:
    """<home>/Embeddings/<repo id> holds exactly the family's files, as the repo has them, each
    fetched once: no decoy, no second weights file."""
    assert row.reads <= set(run.sources[row.repo_id]), "the row names a file its repo lacks"
    expected = {name: run.sources[row.repo_id][name] for name in row.reads}
    assert run.online.files[row.repo_id] == expected
    prefix = f"/{row.repo_id}/resolve/"
    gets = [
        s
        for s in run.online.requests
        if s.file is not None and s.method == "GET" and s.path.startswith(prefix)
    ]
    # a bounded range (bytes=0-N) reads a safetensors header for the size check before any
    # download (application/loading.py): not a fetch of the file, and only of a weights file
    headers = [s.file for s in gets if s.range is not None and not s.range.endswith("-")]
    fetched = [s.file for s in gets if s.range is None or s.range.endswith("-")]
    assert sorted(fetched) == sorted(row.reads)
    assert all(str(f).endswith(".safetensors") and f in row.reads for f in headers), headers


@_BY_MODEL
def test_no_decoy_is_ever_asked_for(run: Run, row: Row) -> None:
    """Not even a HEAD request reaches a file the family does not read."""
    prefix = f"/{row.repo_id}/resolve/"
    asked = {s.file for s in run.online.requests if s.file and s.path.startswith(prefix)}
    assert asked.isdisjoint(set(DECOYS) - row.reads)


def test_downloads_leave_nothing_behind(run: Run) -> None:
    """No .partial leftovers once every model is in place."""
    assert run.online.partial == []


@_BY_MODEL
def test_an_offline_restart_embeds_identically_from_the_cache(run: Run, row: Row) -> None:
    """With the hub gone and HF_HUB_OFFLINE=1, a second server answers every way as the first."""
    for way in WAYS:
        assert np.array_equal(_vectors(run.offline, row, way), _vectors(run.online, row, way)), way


def test_an_offline_restart_leaves_the_cache_as_it_was(run: Run) -> None:
    """The offline start neither adds nor drops a file."""
    assert run.offline.files == run.online.files
    assert run.offline.partial == []
