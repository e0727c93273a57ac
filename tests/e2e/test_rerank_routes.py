"""Reranking through the real server: the three rerank routes against CrossEncoder.predict.

A hub stand-in serves random-weight cross-encoders under the real repo ids that the catalogue's
short names stand for: cross-encoder/ms-marco-MiniLM-L6-v2 (BERT, token types),
BAAI/bge-reranker-v2-m3 (XLM-RoBERTa) and Alibaba-NLP/gte-reranker-modernbert-base (ModernBERT,
its head on the mean), each in its real layout
(tests/model_factory_cross_encoder.py). The server (`embedserve serve`, default engine choice)
reranks by short name through TEI's /rerank, Jina's / Cohere v1's /v1/rerank and Cohere v2's
/v2/rerank; the scores, matched by index, equal CrossEncoder.predict's (raw_scores: its logits).
Refusals come in each route's envelope. Everything runs once in a module fixture.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.corpus import EDGE_TEXTS, VARIED_TEXTS
from tests.hub_standin import HubStandIn
from tests.model_factory_cross_encoder import reference_cross_encoder, write_cross_encoder
from tests.server_process import running_server
from tests.tolerances import MAX_ABS_DIFF

pytestmark = [pytest.mark.slow, pytest.mark.reference]

MODELS = {  # catalogue short name -> (repo id, layout)
    "ms-marco-MiniLM-L6-v2": ("cross-encoder/ms-marco-MiniLM-L6-v2", "ms-marco"),
    "bge-reranker-v2-m3": ("BAAI/bge-reranker-v2-m3", "bge-reranker-v2-m3"),
    "gte-reranker-modernbert-base": (
        "Alibaba-NLP/gte-reranker-modernbert-base",
        "gte-reranker-modernbert-base",
    ),
}
QUERY = "what is the capital of France?"
DOCUMENTS = [*EDGE_TEXTS[:12], *VARIED_TEXTS[::25]]
ROUTES = ("/rerank", "/v1/rerank", "/v2/rerank")


@dataclass
class Gathered:
    scores: dict[str, np.ndarray] = field(default_factory=dict)  # name -> predict()
    logits: dict[str, np.ndarray] = field(default_factory=dict)
    answers: dict[str, tuple[int, Any]] = field(default_factory=dict)  # key -> status, body
    metrics: str = ""


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _body(route: str, model: str, documents: list[str], **extra: Any) -> dict[str, Any]:
    if route == "/rerank":
        return {"model": model, "query": QUERY, "texts": documents, **extra}
    return {"model": model, "query": QUERY, "documents": documents, **extra}


def _post(url: str, path: str, body: Any) -> tuple[int, Any]:
    answer = httpx.post(f"{url}{path}", json=body, timeout=120)
    try:
        return answer.status_code, answer.json()
    except ValueError:
        return answer.status_code, answer.text


def _ask(g: Gathered, url: str) -> None:
    for name in MODELS:
        for route in ROUTES:
            g.answers[f"{route} {name}"] = _post(url, route, _body(route, name, DOCUMENTS))
        raw = _body("/rerank", name, DOCUMENTS, raw_scores=True, return_text=True)
        g.answers[f"raw {name}"] = _post(url, "/rerank", raw)
    name = "ms-marco-MiniLM-L6-v2"
    g.answers["top 3"] = _post(url, "/v1/rerank", _body("/v1", name, DOCUMENTS, top_n=3))
    g.answers["top many"] = _post(url, "/v2/rerank", _body("/v2", name, DOCUMENTS, top_n=5000))
    objects = [{"text": d} for d in DOCUMENTS[:3]]
    g.answers["objects"] = _post(
        url,
        "/v1/rerank",
        _body("/v1", name, objects, return_documents=True),  # type: ignore[arg-type]
    )
    for route in ROUTES:
        g.answers[f"embedder {route}"] = _post(url, route, _body(route, "all-MiniLM-L6-v2", ["a"]))
        g.answers[f"too many {route}"] = _post(url, route, _body(route, name, ["d"] * 1001))
        g.answers[f"empty {route}"] = _post(url, route, _body(route, name, []))
        g.answers[f"missing {route}"] = _post(url, route, {"model": name, "query": QUERY})
        g.answers[f"unknown {route}"] = _post(url, route, _body(route, "nobody/nothing", ["a"]))
    g.answers["embed reranker"] = _post(url, "/v1/embeddings", {"model": name, "input": "a"})
    g.answers["ollama embed reranker"] = _post(url, "/api/embed", {"model": name, "input": "a"})
    g.answers["v1 models"] = (200, httpx.get(f"{url}/v1/models", timeout=30).json())
    g.answers["tags"] = (200, httpx.get(f"{url}/api/tags", timeout=30).json())
    g.answers["show"] = _post(url, "/api/show", {"model": name})
    g.metrics = httpx.get(f"{url}/metrics", timeout=30).text


@pytest.fixture(scope="module")
def gathered(tmp_path_factory: pytest.TempPathFactory) -> Gathered:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    root = tmp_path_factory.mktemp("rerank")
    g = Gathered()
    repos = {}
    for n, (name, (repo, layout)) in enumerate(MODELS.items()):
        folder = write_cross_encoder(root / "repos" / layout, layout, seed=60 + n)  # type: ignore[arg-type]
        model = reference_cross_encoder(folder)
        pairs = [(QUERY, d) for d in DOCUMENTS]
        g.scores[name] = np.asarray(model.predict(pairs), np.float32)
        logits = model.predict(pairs, activation_fn=torch.nn.Identity())
        g.logits[name] = np.asarray(logits, np.float32)
        repos[repo] = _files(folder)
    with (
        HubStandIn(repos) as hub,
        running_server(root / "home", root / "server.log", {"HF_ENDPOINT": hub.url}) as url,
    ):
        _ask(g, url)
    return g


def _by_index(route: str, body: Any) -> np.ndarray:
    rows = body if route == "/rerank" else body["results"]
    key = "score" if route == "/rerank" else "relevance_score"
    out = np.full(len(rows), np.nan, np.float32)
    for row in rows:
        out[row["index"]] = row[key]
    return out


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name", list(MODELS))
def test_scores_equal_crossencoder_predict(gathered: Gathered, route: str, name: str) -> None:
    """Each route's scores, matched by index, equal CrossEncoder.predict's, highest first."""
    status, body = gathered.answers[f"{route} {name}"]
    assert status == 200, body
    rows = body if route == "/rerank" else body["results"]
    assert len(rows) == len(DOCUMENTS)
    scores = _by_index(route, body)
    assert np.abs(scores - gathered.scores[name]).max() < MAX_ABS_DIFF
    ordered = [row["score" if route == "/rerank" else "relevance_score"] for row in rows]
    assert ordered == sorted(ordered, reverse=True)


@pytest.mark.parametrize("name", list(MODELS))
def test_raw_scores_are_the_logits(gathered: Gathered, name: str) -> None:
    """TEI's raw_scores: the classifier's logits; return_text gives each text back."""
    status, body = gathered.answers[f"raw {name}"]
    assert status == 200, body
    logits = gathered.logits[name]
    assert np.abs(_by_index("/rerank", body) - logits).max() < MAX_ABS_DIFF * max(
        1, float(np.abs(logits).max())
    )
    assert all(row["text"] == DOCUMENTS[row["index"]] for row in body)


def test_top_n_cuts_and_a_larger_one_returns_all(gathered: Gathered) -> None:
    """top_n 3 gives the 3 best; top_n past the documents gives them all."""
    _, top = gathered.answers["top 3"]
    _, many = gathered.answers["top many"]
    assert [r["index"] for r in top["results"]] == [r["index"] for r in many["results"]][:3]
    assert len(many["results"]) == len(DOCUMENTS)
    assert top["usage"]["total_tokens"] > 0
    assert many["meta"]["api_version"]["version"] == "2"


def test_v1_takes_document_objects_and_returns_them(gathered: Gathered) -> None:
    """Jina's {text} documents are read; return_documents gives each back as {text}."""
    status, body = gathered.answers["objects"]
    assert status == 200, body
    assert all(r["document"]["text"] == DOCUMENTS[r["index"]] for r in body["results"])


@pytest.mark.parametrize("route", ROUTES)
def test_an_embedding_model_asked_to_rerank_is_a_400_naming_rerankers(
    gathered: Gathered, route: str
) -> None:
    status, body = gathered.answers[f"embedder {route}"]
    assert status == 400
    message = body["error"] if route == "/rerank" else body["error"]["message"]
    assert "ms-marco-MiniLM-L6-v2" in message
    assert "bge-reranker-v2-m3" in message
    assert "gte-reranker-modernbert-base" in message


@pytest.mark.parametrize("way", ["embed reranker", "ollama embed reranker"])
def test_a_reranker_asked_to_embed_is_a_400_naming_embedders(gathered: Gathered, way: str) -> None:
    status, body = gathered.answers[way]
    assert status == 400
    message = body["error"]["message"] if way == "embed reranker" else body["error"]
    assert "all-MiniLM-L6-v2" in message


@pytest.mark.parametrize("case", ["too many", "empty", "missing", "unknown"])
@pytest.mark.parametrize("route", ROUTES)
def test_bad_requests_get_4xx_in_the_routes_dialect(
    gathered: Gathered, route: str, case: str
) -> None:
    """TEI's {error, error_type} on /rerank; OpenAI's envelope on /v1 and /v2."""
    status, body = gathered.answers[f"{case} {route}"]
    assert status == (404 if case == "unknown" else 400), body
    if route == "/rerank":
        assert set(body) == {"error", "error_type"}
        assert body["error_type"] == "Validation"
    else:
        assert set(body["error"]) == {"message", "type", "param", "code"}


def test_the_listings_name_the_rerank_capability(gathered: Gathered) -> None:
    """/v1/models and /api/tags list the rerankers as such; /api/show says ["rerank"]."""
    v1 = {m["id"]: m for m in gathered.answers["v1 models"][1]["data"]}
    assert v1["ms-marco-MiniLM-L6-v2"]["capabilities"] == ["rerank"]
    assert v1["all-MiniLM-L6-v2"]["capabilities"] == ["embedding"]
    tags = {m["name"]: m for m in gathered.answers["tags"][1]["models"]}
    assert tags["ms-marco-MiniLM-L6-v2:latest"]["details"]["capabilities"] == ["rerank"]
    assert gathered.answers["show"][1]["capabilities"] == ["rerank"]


def test_requests_are_counted_per_rerank_endpoint(gathered: Gathered) -> None:
    for endpoint in ROUTES:
        assert f'endpoint="{endpoint}"' in gathered.metrics
