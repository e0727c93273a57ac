"""Rerank suite: the rerank routes RAG clients call, for a server run with a cross-encoder.

Selected with `--dialect rerank`; `--model` then names the reranker, and `--rerank-route`
(repeatable) the routes the server serves, all three by default: TEI's `POST /rerank`
(`{query, texts, raw_scores?, return_text?}` -> `[{index, score, text?}]`), Jina's and Cohere v1's
`POST /v1/rerank` (`{model, query, documents, top_n?, return_documents?}` ->
`{results: [{index, relevance_score, document?}], usage?}`) and Cohere v2's `POST /v2/rerank`
(`{model, query, documents, top_n?}` -> `{id?, results: [{index, relevance_score}], meta?}`).
The TEI body carries `model` too, which TEI (one model per server) ignores.

What is checked comes from those APIs and from the clients that read them (the cohere SDK,
LangChain's CohereRerank, LlamaIndex's Cohere and Jina postprocessors, Open WebUI's external
reranker): the answer's shape, every document scored once, results sorted by score highest
first, `top_n`, the documents given back on request, and a 4xx in the route's error envelope
for a bad request: TEI's `{error, error_type}` on /rerank; on /v1 and /v2 OpenAI's
`{"error": {message, type, param, code}}` (vLLM, infinity, LocalAI) or Cohere's
`{"message": ...}`. No check accepts a 5xx or a 429 for a client error: SDKs retry those.

Fidelity, given `--reference PATH` (a local copy of the cross-encoder the server serves):
sentence-transformers' `CrossEncoder.predict` runs on the client, offline, over the query and
the built-in corpus (conformance/corpus.py), and each route's scores, matched by index, must
equal it (its default activation: sigmoid for one label); TEI's `raw_scores` must equal the
logits. Documents go 32 to a request, TEI's default client batch limit. Each fidelity check
records max_abs_diff and passes below 1e-4 (logits: 1e-4 times their largest magnitude, at
least 1), the fidelity suite's bound.
"""

from __future__ import annotations

import math
import os
from typing import Any

import httpx
import numpy as np
import pytest

from conformance.corpus import FIDELITY_TEXTS
from conformance.target import RERANK_ROUTES, Target

pytestmark = pytest.mark.dialect("rerank")

MAX_ABS_DIFF = 1e-4  # as the fidelity suite
CHUNK = 32  # documents per request: TEI's default --max-client-batch-size
QUERY = "what is the capital of France?"
DOCUMENTS = [
    "Paris is the capital and largest city of France.",
    "The Eiffel Tower stands on the Champ de Mars in Paris.",
    "Berlin is the capital of Germany.",
    "Bananas are rich in potassium.",
    "France borders Spain, Italy, Germany, Belgium and Switzerland.",
    "The quick brown fox jumps over the lazy dog.",
    "Lyon is known for its cuisine.",
    "def add(a, b):\n    return a + b\n",
]
_WITH_TOP_N = ("/v1/rerank", "/v2/rerank")  # TEI has no top_n
_OPENAI_ERROR_KEYS = {"message", "type", "param", "code"}


def _served(target: Target, route: str) -> None:
    if route not in target.rerank_routes:
        pytest.skip(f"not applicable: {route} is not among the --rerank-route given")


def _post(
    http: httpx.Client, target: Target, route: str, documents: list[Any], **extra: Any
) -> httpx.Response:
    _served(target, route)
    field = "texts" if route == "/rerank" else "documents"
    body = {"model": target.model, "query": QUERY, field: documents, **extra}
    return http.post(route, json=body)


def _results(route: str, response: httpx.Response) -> list[dict[str, Any]]:
    """The answer's ranked rows, after a 200."""
    assert response.status_code == 200, f"{response.status_code} {response.text[:300]}"
    body = response.json()
    rows = body if route == "/rerank" else body.get("results") if isinstance(body, dict) else None
    assert isinstance(rows, list), "the answer must be a list (TEI) or carry a `results` list"
    return rows


def _score_key(route: str) -> str:
    return "score" if route == "/rerank" else "relevance_score"


def _scores_by_index(route: str, rows: list[dict[str, Any]], n: int) -> np.ndarray:
    out = np.full(n, np.nan)
    for row in rows:
        out[row["index"]] = row[_score_key(route)]
    return out


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@pytest.mark.parametrize("route", RERANK_ROUTES)
def test_answer_has_the_routes_shape(http: httpx.Client, target: Target, route: str) -> None:
    """Every result is an object with an integer `index` and a finite number as its score
    (`score` on /rerank, `relevance_score` on /v1 and /v2); /v1's `usage.total_tokens`, where
    present, is an integer >= 0."""
    response = _post(http, target, route, DOCUMENTS)
    for row in _results(route, response):
        assert isinstance(row, dict), f"a result must be an object: {row!r}"
        assert _is_int(row.get("index")), f"`index` must be an integer: {row!r}"
        score = row.get(_score_key(route))
        assert isinstance(score, (int, float)), f"the score must be a number: {row!r}"
        assert not isinstance(score, bool), f"the score must be a number: {row!r}"
        assert math.isfinite(score), f"the score must be finite: {row!r}"
    usage = response.json().get("usage") if route == "/v1/rerank" else None
    if usage is not None:
        assert _is_int(usage.get("total_tokens")), usage
        assert usage["total_tokens"] >= 0, usage


@pytest.mark.parametrize("route", RERANK_ROUTES)
def test_every_document_is_scored_once(http: httpx.Client, target: Target, route: str) -> None:
    """Without top_n, the results' indexes are each document's position, each exactly once."""
    rows = _results(route, _post(http, target, route, DOCUMENTS))
    assert sorted(row["index"] for row in rows) == list(range(len(DOCUMENTS)))


@pytest.mark.parametrize("route", RERANK_ROUTES)
def test_results_are_sorted_by_score_highest_first(
    http: httpx.Client, target: Target, route: str
) -> None:
    """Results come sorted by score, highest first (clients take the first rows as the best)."""
    rows = _results(route, _post(http, target, route, DOCUMENTS))
    scores = [row[_score_key(route)] for row in rows]
    assert scores == sorted(scores, reverse=True), f"not highest first: {scores}"


@pytest.mark.parametrize("route", _WITH_TOP_N)
def test_top_n_gives_the_n_best(http: httpx.Client, target: Target, route: str) -> None:
    """top_n=3 answers exactly the first 3 results of the full ranking, with their scores."""
    full = _results(route, _post(http, target, route, DOCUMENTS))
    top = _results(route, _post(http, target, route, DOCUMENTS, top_n=3))
    assert [r["index"] for r in top] == [r["index"] for r in full[:3]]
    got = np.array([r["relevance_score"] for r in top])
    want = np.array([r["relevance_score"] for r in full[:3]])
    assert np.abs(got - want).max() < MAX_ABS_DIFF, f"{got} vs {want}"


@pytest.mark.parametrize("route", _WITH_TOP_N)
def test_top_n_beyond_the_documents_gives_them_all(
    http: httpx.Client, target: Target, route: str
) -> None:
    """A top_n larger than the number of documents is no error: every document comes back."""
    rows = _results(route, _post(http, target, route, DOCUMENTS, top_n=len(DOCUMENTS) + 10))
    assert sorted(row["index"] for row in rows) == list(range(len(DOCUMENTS)))


def test_return_documents_gives_each_text_back(http: httpx.Client, target: Target) -> None:
    """/v1/rerank with return_documents=true gives each result's document as {"text": ...},
    the text at its index (LangChain and LlamaIndex read it)."""
    rows = _results(
        "/v1/rerank", _post(http, target, "/v1/rerank", DOCUMENTS, return_documents=True)
    )
    for row in rows:
        document = row.get("document")
        assert isinstance(document, dict), f"no {{text}} document: {row!r}"
        assert document.get("text") == DOCUMENTS[row["index"]], row


def test_document_objects_score_as_strings(http: httpx.Client, target: Target) -> None:
    """/v1/rerank reads Jina's {"text": ...} documents: they score as the same strings do."""
    as_text = _results("/v1/rerank", _post(http, target, "/v1/rerank", DOCUMENTS))
    objects = [{"text": d} for d in DOCUMENTS]
    as_objects = _results("/v1/rerank", _post(http, target, "/v1/rerank", objects))
    n = len(DOCUMENTS)
    diff = np.abs(
        _scores_by_index("/v1/rerank", as_text, n) - _scores_by_index("/v1/rerank", as_objects, n)
    )
    assert diff.max() < MAX_ABS_DIFF, f"scores differ by up to {diff.max():.3g}"


def test_return_text_gives_each_text_back(http: httpx.Client, target: Target) -> None:
    """/rerank with return_text=true gives each result its text, the one at its index."""
    rows = _results("/rerank", _post(http, target, "/rerank", DOCUMENTS, return_text=True))
    assert all(row.get("text") == DOCUMENTS[row["index"]] for row in rows), rows


def _bad_body(case: str, route: str, model: str) -> dict[str, Any]:
    field = "texts" if route == "/rerank" else "documents"
    body: dict[str, Any] = {"model": model, "query": QUERY, field: DOCUMENTS[:2]}
    match case:
        case "no-documents":
            body[field] = []
        case "no-query":
            del body["query"]
        case "documents-not-a-list":
            body[field] = 5
        case _:  # unknown-model
            body["model"] = "no-such-org/no-such-reranker"
    return body


def _assert_envelope(route: str, response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, f"expected a 4xx, got {response.status_code}"
    assert response.status_code != 429, "429 is an invitation to retry, not a refusal"
    assert response.headers.get("content-type", "").startswith("application/json")
    body = response.json()
    assert isinstance(body, dict), "the error body must be a JSON object"
    if route == "/rerank":
        assert isinstance(body.get("error"), str), "TEI's envelope: `error` is the message"
        assert isinstance(body.get("error_type"), str), "TEI's envelope: `error_type`"
        return
    error = body.get("error")
    if isinstance(error, dict):
        assert set(error) >= _OPENAI_ERROR_KEYS, f"OpenAI's envelope has {_OPENAI_ERROR_KEYS}"
        assert isinstance(error["message"], str)
    else:
        assert isinstance(body.get("message"), str), "neither OpenAI's nor Cohere's envelope"


_BAD_CASES = [
    pytest.param(case, route, id=f"{case}-{route}")
    for case in ("no-documents", "no-query", "documents-not-a-list", "unknown-model")
    for route in RERANK_ROUTES
    if not (case == "unknown-model" and route == "/rerank")  # TEI serves one model
]


@pytest.mark.parametrize(("case", "route"), _BAD_CASES)
def test_a_bad_request_is_a_4xx_in_the_routes_envelope(
    http: httpx.Client, target: Target, case: str, route: str
) -> None:
    """No documents, no query, documents that are no list, or (on /v1 and /v2) an unknown
    model is a 4xx (not 429) whose JSON body is the route's error envelope."""
    _served(target, route)
    _assert_envelope(route, http.post(route, json=_bad_body(case, route, target.model)))


# --- fidelity ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(target: Target) -> dict[str, np.ndarray]:
    """CrossEncoder.predict over (QUERY, each corpus text): scores, and logits."""
    if target.reference is None:
        pytest.skip("not applicable: no --reference cross-encoder folder given")
    if not target.reference.is_dir():
        pytest.fail(f"--reference {target.reference} is not a folder")
    os.environ["HF_HUB_OFFLINE"] = "1"  # read before the hub client is imported
    try:
        from sentence_transformers import CrossEncoder
    except ImportError:
        pytest.skip("not applicable: sentence-transformers is not installed on this client")
    model: Any = CrossEncoder(str(target.reference), device="cpu", local_files_only=True)
    pairs = [(QUERY, text) for text in FIDELITY_TEXTS]
    scores = model.predict(pairs, convert_to_numpy=True)
    # an identity activation: the logits (torch.nn.Identity, without importing torch here)
    logits = model.predict(pairs, convert_to_numpy=True, activation_fn=lambda x: x)
    return {"scores": np.asarray(scores, np.float64), "logits": np.asarray(logits, np.float64)}


def _served_scores(http: httpx.Client, target: Target, route: str, **extra: Any) -> np.ndarray:
    """Every corpus text's score from `route`, CHUNK documents a request, by index."""
    out = np.full(len(FIDELITY_TEXTS), np.nan)
    for start in range(0, len(FIDELITY_TEXTS), CHUNK):
        chunk = FIDELITY_TEXTS[start : start + CHUNK]
        rows = _results(route, _post(http, target, route, chunk, **extra))
        out[start : start + len(chunk)] = _scores_by_index(route, rows, len(chunk))
    return out


def _compare(request: pytest.FixtureRequest, ours: np.ndarray, expected: np.ndarray) -> None:
    assert not np.isnan(ours).any(), "some documents got no score"
    diffs = np.abs(ours - expected)
    diff = float(diffs.max())
    request.node.user_properties.append(("max_abs_diff", diff))
    print(f"{request.node.name}: max_abs_diff={diff:.3g} against CrossEncoder")  # noqa: T201
    bound = MAX_ABS_DIFF * max(1.0, float(np.abs(expected).max()))
    worst = int(diffs.argmax())
    where = f"worst document #{worst}: {FIDELITY_TEXTS[worst][:60]!r}"
    assert diff < bound, f"max abs diff {diff:.3g} >= {bound:.3g} ({where})"


@pytest.mark.parametrize("route", RERANK_ROUTES)
def test_scores_equal_the_reference_cross_encoder(
    http: httpx.Client,
    target: Target,
    route: str,
    reference: dict[str, np.ndarray],
    request: pytest.FixtureRequest,
) -> None:
    """Each route's scores, matched by index, are CrossEncoder.predict's over the corpus (its
    default activation), within 1e-4."""
    _served(target, route)
    _compare(request, _served_scores(http, target, route), reference["scores"])


def test_tei_raw_scores_equal_the_reference_logits(
    http: httpx.Client,
    target: Target,
    reference: dict[str, np.ndarray],
    request: pytest.FixtureRequest,
) -> None:
    """/rerank with raw_scores=true answers the classifier's logits, before any activation."""
    _served(target, "/rerank")
    _compare(request, _served_scores(http, target, "/rerank", raw_scores=True), reference["logits"])
