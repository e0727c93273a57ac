"""Model2Vec and Static on the numpy engine against model2vec and sentence-transformers.

Each case is a small random model written by the library that defines its layout
(tests/model_factory_static.py). Model2Vec folders are compared with model2vec's own
`StaticModel.from_pretrained(folder).encode(texts)`; Static folders with sentence-transformers'
`SentenceTransformer(folder).encode(texts)`, including a model2vec folder read as a
StaticEmbedding (the catalogue's `M2V_base_output:static`). Our side runs as the server does
(tests/parity/test_bert_parity.py's loop: length-bucketed batches, right padding, order
restored), on the shared corpus plus the tokenizers' special and unknown tokens written out.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest

from adapters.engines.numpy_ref import NumpyEngine
from adapters.tokenizers.by_family import load_tokenizer
from application.batching import pad
from application.catalogue import CATALOGUE, Catalogue
from application.embedding import EmbeddingService
from application.lifecycle import ModelRegistry
from domain.errors import InputTooLong, ModelUnavailable
from domain.models import Family
from domain.requests import EmbeddingRequest, EmbeddingResult, Normalization, Truncation
from tests.corpus import VARIED_TEXTS
from tests.fakes import FakeDecoder, FakeStore
from tests.model_factory import reference_model
from tests.model_factory_static import write_model2vec_model, write_static_model
from tests.parity.test_bert_parity import embed_like_the_server, mismatched_ids, scaled_abs_diff
from tests.tolerances import BATCH_INVARIANCE, MAX_ABS_DIFF

if TYPE_CHECKING:
    from pathlib import Path

    from domain.models import ModelSpec
    from domain.ports import Encoded, Encoder, Tokenizer

_SPECS = {spec.qualified_name: spec for spec in CATALOGUE}

TEXTS = [
    *VARIED_TEXTS,
    "[UNK]",
    "[CLS] inside [SEP] the text [PAD]",
    "<unk> <s> </s> <pad>",
    "😀 😀 😀",  # unknown to the WordPiece vocabulary: model2vec drops them, Static keeps them
]


@dataclass(frozen=True)
class Case:
    id: str
    model: str  # the catalogue's `name:tag`
    factory: dict[str, Any] = field(default_factory=dict)
    without_modules_json: bool = False  # a model2vec repo older than its modules.json

    @property
    def spec(self) -> ModelSpec:
        return _SPECS[self.model]

    def write(self, folder: Path) -> Path:
        # M2V_base_output:static is a model2vec repo read as a StaticEmbedding
        if self.spec.family is Family.MODEL2VEC or self.spec.repo_id.startswith("minishlab/"):
            write_model2vec_model(folder, **self.factory)
        else:
            write_static_model(folder, **self.factory)
        if self.without_modules_json:
            (folder / "modules.json").unlink()
        return folder


_M2V, _STATIC = "M2V_base_output:static", "static-similarity-mrl-multilingual-v1:latest"

CASES = [
    Case("m2v-plain", "potion-base-8M:latest", {"seed": 1}),
    Case(
        "m2v-normalized-weights",
        "potion-base-2M:latest",
        {"normalize": True, "token_weights": True, "seed": 2},
    ),
    Case(
        "m2v-unigram-mapping-weights-no-max-length-key",
        "potion-retrieval-32M:latest",
        {
            "tokenizer": "unigram",
            "shared_rows": 40,
            "token_weights": True,
            "normalize": True,
            "max_length": "unset",
            "seed": 3,
        },
    ),
    # 16 tokens and 16 x 6 = 96 characters: both of model2vec's cuts bite on the corpus
    Case("m2v-max-length-16", "potion-base-4M:latest", {"max_length": 16, "seed": 4}),
    Case("m2v-no-limit", "M2V_base_output:latest", {"max_length": None, "seed": 5}),
    Case("static-unigram-plain", _STATIC, {"tokenizer": "unigram", "seed": 11}),
    Case(
        "static-normalized-file-truncation",
        _STATIC,
        {"normalize": True, "truncation": "file", "seed": 12},
    ),
    Case("static-truncate-left-32", _STATIC, {"truncation": 32, "truncate_left": True, "seed": 13}),
    Case("static-saved-in-root", _STATIC, {"normalize": True, "in_root": True, "seed": 14}),
    Case(
        "m2v-folder-as-static",
        _M2V,
        {"shared_rows": 50, "token_weights": True, "normalize": True, "seed": 15},
    ),
    Case(
        "m2v-folder-as-static-without-modules-json",
        _M2V,
        {"shared_rows": 60, "token_weights": True, "normalize": True, "seed": 16},
        without_modules_json=True,
    ),
]


@dataclass(frozen=True)
class Compared:
    case: Case
    folder: Path
    ours: np.ndarray
    ours_encoded: list[Encoded]
    ours_batches: int
    tokenizer: Tokenizer
    encoder: Encoder
    reference: np.ndarray
    reference_ids: list[tuple[int, ...]]
    reference_counts: list[int]  # tokens the reference averaged, counted from its own output


def _load_ours(spec: ModelSpec, folder: Path) -> tuple[Tokenizer, Encoder]:
    tokenizer = load_tokenizer(spec, folder)
    assert not isinstance(tokenizer, ModelUnavailable), tokenizer
    encoder = NumpyEngine().load(spec, folder)
    assert not isinstance(encoder, ModelUnavailable), encoder
    return tokenizer, encoder


def _model2vec_reference(folder: Path) -> tuple[np.ndarray, list[tuple[int, ...]], list[int]]:
    from model2vec import StaticModel

    model = StaticModel.from_pretrained(folder)
    vectors = model.encode(TEXTS, use_multiprocessing=False)
    # encode_as_sequence, given encode's limit, makes encode's cuts and returns one row per token
    limit = model.max_length
    sequences = model.encode_as_sequence(TEXTS, max_length=limit, use_multiprocessing=False)
    counts = [len(rows) for rows in sequences]
    # the ids: its tokenizer (cut at `limit` tokens) on the texts cut as encode cuts them
    cut = TEXTS if limit is None else [t[: limit * model.median_token_length] for t in TEXTS]
    ids = [tuple(row) for row in model.tokenize(cut)]
    return np.asarray(vectors, dtype=np.float32), ids, counts


def _static_reference(
    folder: Path, *, without_modules_json: bool
) -> tuple[np.ndarray, list[tuple[int, ...]], list[int]]:
    if without_modules_json:  # what "read as a StaticEmbedding" means for such a folder
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.modules import StaticEmbedding

        model = SentenceTransformer(modules=[StaticEmbedding.load(str(folder))], device="cpu")
    else:
        model = reference_model(folder)
    vectors = model.encode(TEXTS, batch_size=32, convert_to_numpy=True)
    features = model.preprocess(TEXTS)
    flat = [int(i) for i in features["input_ids"]]
    bounds = [*(int(o) for o in features["offsets"]), len(flat)]
    ids = [tuple(flat[a:b]) for a, b in itertools.pairwise(bounds)]
    return np.asarray(vectors, dtype=np.float32), ids, [len(i) for i in ids]


@pytest.fixture(scope="module", params=CASES, ids=[c.id for c in CASES])
def compared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Compared:
    case: Case = request.param
    folder = case.write(tmp_path_factory.mktemp(case.id))
    tokenizer, encoder = _load_ours(case.spec, folder)
    ours, encoded, batches = embed_like_the_server(tokenizer, encoder, TEXTS)
    if case.spec.family is Family.MODEL2VEC:
        reference, ids, counts = _model2vec_reference(folder)
    else:
        reference, ids, counts = _static_reference(
            folder, without_modules_json=case.without_modules_json
        )
    return Compared(
        case, folder, ours, encoded, batches, tokenizer, encoder, reference, ids, counts
    )


def _worst(diff: np.ndarray) -> str:
    row = int(np.argmax(diff.max(axis=1)))
    return f"scaled abs diff {diff.max():.3g} at text {row}: {TEXTS[row][:60]!r}"


@pytest.mark.reference
def test_embeddings_match_the_reference(compared: Compared) -> None:
    """Every vector equals model2vec's / sentence-transformers' within MAX_ABS_DIFF (scaled)."""
    assert compared.ours_batches > 1
    assert compared.ours.shape == compared.reference.shape
    assert np.isfinite(compared.ours).all()
    diff = scaled_abs_diff(compared.ours, compared.reference)
    assert diff.max() < MAX_ABS_DIFF, _worst(diff)


@pytest.mark.reference
def test_token_ids_match_the_reference(compared: Compared) -> None:
    """Each text becomes exactly the token ids the reference averages over."""
    mismatched = mismatched_ids(compared.ours_encoded, compared.reference_ids)
    assert not mismatched, f"{len(mismatched)} texts differ, first {TEXTS[mismatched[0]][:60]!r}"


@pytest.mark.reference
def test_token_counts_match_the_reference(compared: Compared) -> None:
    """The token count we report is the number of token vectors the reference averaged."""
    assert [len(e.ids) for e in compared.ours_encoded] == compared.reference_counts


@pytest.mark.reference
def test_texts_without_tokens_are_zero_vectors_as_in_the_reference(compared: Compared) -> None:
    """A text with no token to average (empty; only unknown tokens in Model2Vec) embeds as the
    zero vector, normalised or not, never NaN, as the reference does."""
    empty = [n for n, e in enumerate(compared.ours_encoded) if not e.ids]
    assert TEXTS.index("") in empty
    assert not compared.ours[empty].any()
    assert not compared.reference[empty].any()


def test_a_text_alone_embeds_as_inside_the_batch(compared: Compared) -> None:
    """Padding in a mixed-length batch never reaches a row: each text alone gives the same row."""
    for n, text in enumerate(TEXTS[:: max(1, len(TEXTS) // 40)]):
        ids, mask = pad([e.ids for e in compared.tokenizer.encode([text])])
        alone = compared.encoder.embed(ids, mask)[0]
        row = TEXTS.index(text)
        assert np.abs(alone - compared.ours[row]).max() < BATCH_INVARIANCE, (n, text[:40])


def _service(case: Case, folder: Path) -> EmbeddingService:
    registry = ModelRegistry(
        FakeStore({case.spec.repo_id: folder}),
        NumpyEngine(),
        load_tokenizer,
        ThreadPoolExecutor(max_workers=1),
    )
    return EmbeddingService(Catalogue(CATALOGUE), registry, FakeDecoder())


@pytest.mark.reference
async def test_dimensions_cut_the_reference_then_renormalise(compared: Compared) -> None:
    """Matryoshka `dimensions=d` is the reference vector's first d components at unit length
    (zero where the reference is zero), through the embedding service."""
    service = _service(compared.case, compared.folder)
    width = compared.encoder.dimensions
    for d in (1, width // 2, width):
        request = EmbeddingRequest(
            compared.case.model, TEXTS, dimensions=d, normalization=Normalization.ALWAYS
        )
        result = await service.embed(request)
        assert isinstance(result, EmbeddingResult)
        cut = compared.reference[:, :d].astype(np.float64)
        norms = np.linalg.norm(cut, axis=1, keepdims=True)
        expected = np.where(norms > 0, cut / np.maximum(norms, 1e-30), 0.0)
        assert result.vectors.shape == (len(TEXTS), d)
        assert np.abs(result.vectors - expected).max() < MAX_ABS_DIFF
        assert list(result.token_counts) == compared.reference_counts


async def test_a_cut_text_is_refused_when_truncation_is_off(compared: Compared) -> None:
    """Where the model has a limit, a text past it is an InputTooLong with its full length."""
    limit = compared.tokenizer.max_tokens
    cut = [n for n, e in enumerate(compared.ours_encoded) if e.truncated]
    if limit >= 2**31 - 1:
        assert not cut, "a model without a limit never cuts"
        return
    assert cut, "the corpus holds texts past every limit the cases set"
    assert all(len(compared.ours_encoded[n].ids) <= limit for n in range(len(TEXTS)))
    service = _service(compared.case, compared.folder)
    text = TEXTS[cut[0]]
    refused = await service.embed(
        EmbeddingRequest(compared.case.model, [text], truncate=Truncation.REFUSE)
    )
    assert isinstance(refused, InputTooLong)
    assert refused.tokens == compared.ours_encoded[cut[0]].full_length
    assert refused.tokens > len(compared.ours_encoded[cut[0]].ids)
