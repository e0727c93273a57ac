"""Cross-encoders on every engine against sentence-transformers' CrossEncoder.predict.

Random-weight BERT (cross-encoder/ms-marco-MiniLM-L6-v2's layout), XLM-RoBERTa
(BAAI/bge-reranker-v2-m3's) and ModernBERT (Alibaba-NLP/gte-reranker-modernbert-base's, its
head on the mean; on the first token in one test) cross-encoders from
tests/model_factory_cross_encoder.py.
Pairs are tokenized by our tokenizer (ids and token types against CrossEncoder's own
preprocessing), run as the server runs them (length-sorted passes under a small token budget,
right-padded, token types in the mask) and compared per score: the activated score with
predict(), the logit with predict(activation_fn=Identity()). The queries include one past
ms-marco's context, so that longest_first has to cut both texts.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest

from adapters.tokenizers.by_family import load_tokenizer
from adapters.tokenizers.hf_tokenizer import longest_first
from application.batching import pad, pass_lengths, plan_batches
from domain.errors import ModelUnavailable
from domain.models import Family, ModelSpec, PoolingMode
from domain.ports import EncodedPair, PairTokenizer
from domain.repo_configs import describe_repo
from tests.contracts.test_engine_parity import make_engine
from tests.corpus import EDGE_TEXTS, VARIED_TEXTS
from tests.model_factory_cross_encoder import (
    CrossLayout,
    reference_cross_encoder,
    write_cross_encoder,
)
from tests.parity.every_engine import ENGINES, GRAPH_ENGINES, gate
from tests.tolerances import MAX_ABS_DIFF

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from sentence_transformers import CrossEncoder

    from domain.ports import Encoder

_FAMILY = {
    "ms-marco": Family.BERT_CROSS_ENCODER,
    "bge-reranker-v2-m3": Family.XLM_ROBERTA_CROSS_ENCODER,
    "gte-reranker-modernbert-base": Family.MODERNBERT_CROSS_ENCODER,
}
LAYOUTS: tuple[CrossLayout, ...] = (
    "ms-marco",
    "bge-reranker-v2-m3",
    "gte-reranker-modernbert-base",
)
QUERIES = ["what is the capital of France?", "", "😀 数据 عربى"]
# past ms-marco's 512 tokens, so that longest_first cuts both texts (8,192 tokens, as
# bge-reranker-v2-m3 and gte-reranker-modernbert-base take, would be minutes of attention on
# the reference and on numpy)
LONG_QUERY = "query " * 600
DOCUMENTS = [*EDGE_TEXTS[:40], *VARIED_TEXTS[::7]]
_BUDGET = 2048  # tokens per pass: mixes lengths, so rows are right-padded


@dataclass(frozen=True)
class Written:
    layout: CrossLayout
    folder: Path
    spec: ModelSpec


@pytest.fixture(scope="module", params=LAYOUTS)
def written(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Written:
    layout: CrossLayout = request.param
    folder = write_cross_encoder(tmp_path_factory.mktemp(layout), layout, seed=3)
    spec = ModelSpec("reranker", f"test/{layout}", _FAMILY[layout], 1, None, PoolingMode.CLS)
    return Written(layout, folder, spec)


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("graphs")


def _pairs(written: Written, query: str, documents: Sequence[str]) -> list[EncodedPair]:
    tokenizer = load_tokenizer(written.spec, written.folder)
    assert isinstance(tokenizer, PairTokenizer), tokenizer
    return tokenizer.encode_pairs(query, documents)


def _limit(written: Written) -> int:
    tokenizer = load_tokenizer(written.spec, written.folder)
    assert isinstance(tokenizer, PairTokenizer), tokenizer
    return tokenizer.max_tokens


def score_like_the_server(
    encoder: Encoder, pairs: Sequence[EncodedPair], limit: int | None = None
) -> np.ndarray:
    """[N,2]: each pair's logit and score, through length-sorted, right-padded passes; those of
    an encoder that keeps shapes padded to `pass_length` under the model's `limit`, as the
    server pads them."""
    length = pass_lengths(encoder, limit)
    lengths = [len(p.ids) if length is None else length(len(p.ids)) for p in pairs]
    out = np.empty((len(pairs), 2), dtype=np.float32)
    for batch in plan_batches(lengths, _BUDGET, 64):
        rows = [pairs[i] for i in batch]
        ids, mask = pad([p.ids for p in rows], (), [p.second for p in rows], length)
        out[batch] = encoder.embed(ids, mask)
    return out


@functools.cache
def _reference_model(folder: Path) -> CrossEncoder:
    return reference_cross_encoder(folder)


@functools.cache
def _queries(written: Written) -> list[str]:
    return [*QUERIES, LONG_QUERY] if written.layout == "ms-marco" else QUERIES


def _reference(folder: Path, query: str) -> tuple[np.ndarray, np.ndarray]:
    """CrossEncoder.predict's logits and scores of `query` with each of DOCUMENTS."""
    import torch

    model = _reference_model(folder)
    pairs = [(query, d) for d in DOCUMENTS]
    scores = model.predict(pairs, batch_size=16)
    logits = model.predict(pairs, batch_size=16, activation_fn=torch.nn.Identity())
    return np.asarray(logits, np.float32), np.asarray(scores, np.float32)


def test_the_repo_reads_as_a_one_score_reranker(written: Written) -> None:
    """describe_repo reads config.json as a cross-encoder family, one score wide."""
    import json

    configs = {
        name: json.loads((written.folder / name).read_text(encoding="utf-8"))
        for name in ("config.json", "tokenizer_config.json")
    }
    spec = describe_repo("r", "test/r", "main", configs)
    assert isinstance(spec, ModelSpec), spec
    assert (spec.family, spec.dimensions, spec.task.value) == (written.spec.family, 1, "rerank")
    assert spec.max_tokens == (512 if written.layout == "ms-marco" else 8192)


@pytest.mark.parametrize(
    "query", [*QUERIES, LONG_QUERY], ids=["short", "empty", "scripts", "past-context"]
)
def test_pairs_tokenize_as_the_reference_does(written: Written, query: str) -> None:
    """Ids, special tokens and token types of each pair equal CrossEncoder's preprocessing."""
    if query not in _queries(written):
        pytest.skip("a query past 8,192 tokens is minutes of reference attention")
    model = _reference_model(written.folder)
    features = model.preprocess([[query, d] for d in DOCUMENTS])
    ours = _pairs(written, query, DOCUMENTS)
    for n, pair in enumerate(ours):
        real = features["attention_mask"][n].bool()
        ids = features["input_ids"][n][real].tolist()
        assert list(pair.ids) == ids, f"pair {n}: {DOCUMENTS[n][:40]!r}"
        types = features.get("token_type_ids")
        if types is not None:
            ours_types = [int(i >= pair.second) for i in range(len(pair.ids))]
            assert ours_types == types[n][real].tolist(), f"pair {n} token types"


@pytest.mark.parametrize("engine", ENGINES)
def test_scores_equal_crossencoder_predict(written: Written, engine: str, graphs: Path) -> None:
    """Every engine's scores and logits equal CrossEncoder.predict's, pair by pair."""
    encoder = make_engine(engine, graphs).load(written.spec, written.folder)
    assert not isinstance(encoder, ModelUnavailable), encoder
    for query in _queries(written):
        logits, scores = _reference(written.folder, query)
        pairs = _pairs(written, query, DOCUMENTS)
        ours = score_like_the_server(encoder, pairs, _limit(written))
        assert np.abs(ours[:, 0] - logits).max() < MAX_ABS_DIFF * max(1, np.abs(logits).max())
        assert np.abs(ours[:, 1] - scores).max() < MAX_ABS_DIFF


@pytest.mark.parametrize("engine", GRAPH_ENGINES)
def test_graph_engines_pass_the_load_time_gate(written: Written, engine: str, graphs: Path) -> None:
    """The server's --engine choice keeps the fast engine: its probe agrees with numpy's."""
    chosen = gate(engine, written.spec, written.folder, graphs)
    assert chosen.engine == engine
    assert chosen.parity is not None
    assert chosen.parity.passed


def test_an_identity_activation_gives_the_logits(tmp_path: Path) -> None:
    """config.json's sentence_transformers.activation_fn Identity: scores are the logits."""
    folder = write_cross_encoder(
        tmp_path / "m", activation="torch.nn.modules.linear.Identity", seed=5
    )
    spec = ModelSpec("r", "test/r", Family.BERT_CROSS_ENCODER, 1, None, PoolingMode.CLS)
    written = Written("ms-marco", folder, spec)
    encoder = make_engine("numpy", tmp_path).load(spec, folder)
    assert not isinstance(encoder, ModelUnavailable), encoder
    reference = reference_cross_encoder(folder).predict([(QUERIES[0], d) for d in DOCUMENTS])
    ours = score_like_the_server(encoder, _pairs(written, QUERIES[0], DOCUMENTS))
    assert np.abs(ours[:, 1] - reference).max() < MAX_ABS_DIFF
    assert np.array_equal(ours[:, 0], ours[:, 1])


def test_a_classifier_of_several_labels_is_refused(tmp_path: Path) -> None:
    """A two-label classifier gives no single score: refused from its config, with why."""
    import json

    folder = write_cross_encoder(tmp_path / "m", labels=2)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    refused = describe_repo("r", "test/r", "main", {"config.json": config})
    assert isinstance(refused, ModelUnavailable)
    assert "2 labels" in refused.reason


def test_longest_first_cuts_as_tokenizers_does() -> None:
    """Our longest_first keeps as many tokens of each text as `tokenizers`' own truncation."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "a": 3, "b": 4}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.BertProcessing(("[SEP]", 2), ("[CLS]", 1))
    for limit in range(5, 14):
        tokenizer.enable_truncation(limit, strategy="longest_first")
        for first in range(16):
            for second in range(16):
                e = tokenizer.encode(" ".join("a" * first), " ".join("b" * second))
                kept = (e.ids.count(3), e.ids.count(4))
                assert longest_first(first, second, limit - 3) == kept, (limit, first, second)


def test_a_modernbert_head_on_the_first_token_scores_as_predict(tmp_path: Path) -> None:
    """classifier_pooling "cls": the head reads the first token's state, as transformers does."""
    layout: CrossLayout = "gte-reranker-modernbert-base"
    folder = write_cross_encoder(tmp_path / "m", layout, seed=7, modernbert_pooling="cls")
    spec = ModelSpec("r", "test/r", Family.MODERNBERT_CROSS_ENCODER, 1, None, PoolingMode.CLS)
    encoder = make_engine("numpy", tmp_path).load(spec, folder)
    assert not isinstance(encoder, ModelUnavailable), encoder
    reference = reference_cross_encoder(folder).predict([(QUERIES[0], d) for d in DOCUMENTS])
    ours = score_like_the_server(
        encoder, _pairs(Written(layout, folder, spec), QUERIES[0], DOCUMENTS)
    )
    assert np.abs(ours[:, 1] - reference).max() < MAX_ABS_DIFF


@pytest.mark.parametrize(
    ("key", "value"), [("classifier_pooling", "max"), ("classifier_activation", "relu")]
)
def test_a_modernbert_head_we_do_not_run_is_refused(tmp_path: Path, key: str, value: str) -> None:
    """A pooling or head activation outside the forward pass is refused from config.json."""
    import json

    folder = write_cross_encoder(tmp_path / "m", "gte-reranker-modernbert-base", layers=1)
    config = {**json.loads((folder / "config.json").read_text(encoding="utf-8")), key: value}
    refused = describe_repo("r", "test/r", "main", {"config.json": config})
    assert isinstance(refused, ModelUnavailable)
    assert value in refused.reason
