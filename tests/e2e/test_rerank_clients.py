"""The rerank clients RAG pipelines call, driven unchanged against the real server on 127.0.0.1.

Cohere's SDK (ClientV2 on /v2/rerank, the v1 Client on /v1/rerank), LangChain's CohereRerank,
LlamaIndex's CohereRerank and JinaRerank postprocessors, Open WebUI's external reranker request
and a raw TEI-shape request. A hub stand-in serves random-weight cross-encoders in their real
layouts under the repo ids the catalogue's short names stand for (as tests/e2e/
test_rerank_routes.py does), and the server asks for an API key, so every client is also seen
sending its key. Each test checks the scores the client hands back, matched to their documents,
against CrossEncoder.predict on the same folder, and that the client's own response types accept
what the server sent.

Each test imports its client itself: they take seconds to import, which collecting the rest of
the suite should not pay. One server for the module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import pytest
import requests

from tests.corpus import EDGE_TEXTS, VARIED_TEXTS
from tests.hub_standin import HubStandIn
from tests.model_factory_cross_encoder import reference_cross_encoder, write_cross_encoder
from tests.server_process import running_server
from tests.tolerances import MAX_ABS_DIFF

pytestmark = [pytest.mark.slow, pytest.mark.reference]

MODELS = {  # catalogue short name -> (repo id, layout)
    "ms-marco-MiniLM-L6-v2": ("cross-encoder/ms-marco-MiniLM-L6-v2", "ms-marco"),
    "bge-reranker-v2-m3": ("BAAI/bge-reranker-v2-m3", "bge-reranker-v2-m3"),
}
MODEL = "ms-marco-MiniLM-L6-v2"
KEY = "rerank-clients-key"
QUERY = "what is the capital of France?"
DOCUMENTS = [*EDGE_TEXTS[:12], *VARIED_TEXTS[::25]]
TOP_N = 3


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rerank-repos")
    return {
        name: write_cross_encoder(root / layout, layout, seed=70 + n)  # type: ignore[arg-type]
        for n, (name, (_, layout)) in enumerate(MODELS.items())
    }


@pytest.fixture(scope="module")
def reference(folders: dict[str, Path]) -> dict[str, np.ndarray]:
    """CrossEncoder.predict's score of every (QUERY, document) pair, per model."""
    pairs = [(QUERY, d) for d in DOCUMENTS]
    return {
        name: np.asarray(reference_cross_encoder(folder).predict(pairs), np.float64)
        for name, folder in folders.items()
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, folders: dict[str, Path]) -> Iterator[str]:
    """One server for the module, on the reference engine (engine parity is tested elsewhere),
    fetching the rerankers from the stand-in and asking every request for KEY."""
    root = tmp_path_factory.mktemp("rerank-clients")
    repos = {MODELS[name][0]: _files(folder) for name, folder in folders.items()}
    with HubStandIn(repos) as hub:
        env = {
            "HF_ENDPOINT": hub.url,
            "EMBEDSERVE_ENGINE": "numpy",
            "EMBEDSERVE_API_KEYS": KEY,
        }
        with running_server(root / "home", root / "server.log", env) as url:
            yield url


def _assert_ranked(
    pairs: Sequence[tuple[int, float]], expected: np.ndarray, *, top_n: int | None = None
) -> None:
    """`(index, score)` as the client returned them: each score is its document's reference
    score, highest first, and they are the `top_n` best (compared by value: random weights can
    tie, so the indices of equal scores may come in either order)."""
    indices = [i for i, _ in pairs]
    got = np.asarray([s for _, s in pairs], np.float64)
    assert len(set(indices)) == len(indices) == (top_n or len(expected))
    assert np.abs(got - expected[indices]).max() < MAX_ABS_DIFF
    assert list(got) == sorted(got, reverse=True)
    best = np.sort(expected)[::-1][: len(indices)]
    assert np.abs(got - best).max() < MAX_ABS_DIFF


class _Bodies:
    """The JSON bodies a client receives, seen through an httpx response hook."""

    def __init__(self) -> None:
        self.seen: list[object] = []

    def __call__(self, response: httpx.Response) -> None:
        response.read()
        self.seen.append(json.loads(response.content))


# --- Cohere's SDK -------------------------------------------------------------------------------
# The SDK keeps its httpx pool open: each test hands it one it closes, since an unclosed socket is
# an error under this suite's warning filter.


@pytest.mark.parametrize("name", list(MODELS))
def test_cohere_client_v2_rerank(server: str, reference: dict[str, np.ndarray], name: str) -> None:
    """ClientV2(base_url=ours).rerank: every document, highest first, as V2RerankResponse."""
    import cohere

    bodies = _Bodies()
    with httpx.Client(event_hooks={"response": [bodies]}) as http:
        client = cohere.ClientV2(api_key=KEY, base_url=server, httpx_client=http)
        answer = client.rerank(model=name, query=QUERY, documents=DOCUMENTS)
    assert isinstance(answer, cohere.V2RerankResponse)
    assert answer.id
    assert answer.meta is not None
    assert answer.meta.api_version is not None
    assert answer.meta.billed_units is not None
    _assert_ranked([(r.index, r.relevance_score) for r in answer.results], reference[name])
    # The SDK builds its objects without validating them; its types must accept ours strictly.
    strict = cohere.V2RerankResponse.model_validate(bodies.seen[0])
    assert [r.index for r in strict.results] == [r.index for r in answer.results]


async def test_cohere_async_client_v2_rerank(server: str, reference: dict[str, np.ndarray]) -> None:
    """AsyncClientV2, the SDK's other transport: the top_n best, highest first."""
    import cohere

    async with httpx.AsyncClient() as http:
        client = cohere.AsyncClientV2(api_key=KEY, base_url=server, httpx_client=http)
        answer = await client.rerank(model=MODEL, query=QUERY, documents=DOCUMENTS, top_n=TOP_N)
    ranked = [(r.index, r.relevance_score) for r in answer.results]
    _assert_ranked(ranked, reference[MODEL], top_n=TOP_N)


def test_cohere_v1_client_rerank_with_documents(
    server: str, reference: dict[str, np.ndarray]
) -> None:
    """The v1 Client on /v1/rerank: `{text}` documents, top_n and return_documents, parsed as
    RerankResponse with each document's text."""
    import cohere

    bodies = _Bodies()
    documents = [{"text": d} if n % 2 else d for n, d in enumerate(DOCUMENTS)]
    with httpx.Client(event_hooks={"response": [bodies]}) as http:
        client = cohere.Client(api_key=KEY, base_url=server, httpx_client=http)
        answer = client.rerank(
            model=MODEL, query=QUERY, documents=documents, top_n=TOP_N, return_documents=True
        )
    assert isinstance(answer, cohere.RerankResponse)
    assert answer.id
    ranked = [(r.index, r.relevance_score) for r in answer.results]
    _assert_ranked(ranked, reference[MODEL], top_n=TOP_N)
    assert all(r.document is not None for r in answer.results)
    assert [r.document.text for r in answer.results if r.document] == [
        DOCUMENTS[r.index] for r in answer.results
    ]
    cohere.RerankResponse.model_validate(bodies.seen[0])


def test_cohere_sdk_reads_a_wrong_key_as_its_unauthorized_error(server: str) -> None:
    """A refused key reaches the SDK as 401, which it raises as its own UnauthorizedError."""
    import cohere

    with httpx.Client() as http:
        client = cohere.ClientV2(api_key="not-the-key", base_url=server, httpx_client=http)
        with pytest.raises(cohere.UnauthorizedError) as refused:
            client.rerank(model=MODEL, query=QUERY, documents=["a"])
    assert refused.value.status_code == 401


# --- LangChain and LlamaIndex -------------------------------------------------------------------


def test_langchain_cohere_rerank_compresses_and_ranks(
    server: str, reference: dict[str, np.ndarray]
) -> None:
    """LangChain's CohereRerank with base_url: compress_documents keeps the top_n best, each
    with its relevance_score; rerank(top_n=None) sends nulls and gets every document back."""
    from langchain_cohere import CohereRerank
    from langchain_core.documents import Document

    documents = [Document(page_content=d, metadata={"n": n}) for n, d in enumerate(DOCUMENTS)]
    reranker = CohereRerank(model=MODEL, base_url=server, cohere_api_key=KEY, top_n=TOP_N)
    with reranker.client:
        kept = reranker.compress_documents(documents, QUERY)
        everything = reranker.rerank(DOCUMENTS, QUERY, top_n=None)
    ranked = [(d.metadata["n"], d.metadata["relevance_score"]) for d in kept]
    _assert_ranked(ranked, reference[MODEL], top_n=TOP_N)
    assert all(d.page_content == DOCUMENTS[d.metadata["n"]] for d in kept)
    _assert_ranked([(r["index"], r["relevance_score"]) for r in everything], reference[MODEL])


def test_llamaindex_cohere_rerank_postprocessor(
    server: str, reference: dict[str, np.ndarray]
) -> None:
    """LlamaIndex's CohereRerank with base_url: the top_n nodes, scored, highest first."""
    from llama_index.core.schema import NodeWithScore, TextNode
    from llama_index.postprocessor.cohere_rerank import CohereRerank

    nodes = [NodeWithScore(node=TextNode(text=d, id_=str(n))) for n, d in enumerate(DOCUMENTS)]
    reranker = CohereRerank(top_n=TOP_N, model=MODEL, api_key=KEY, base_url=server, max_retries=1)
    with reranker._client:  # its only handle on the connection pool
        kept = reranker.postprocess_nodes(nodes, query_str=QUERY)
    ranked = [(int(n.node.id_), n.score or 0.0) for n in kept]
    _assert_ranked(ranked, reference[MODEL], top_n=TOP_N)
    assert all(n.node.get_content() == DOCUMENTS[int(n.node.id_)] for n in kept)


def test_llamaindex_jina_rerank_postprocessor(
    server: str, reference: dict[str, np.ndarray]
) -> None:
    """LlamaIndex's JinaRerank with base_url ours + /v1: the top_n nodes, scored."""
    from llama_index.core.schema import NodeWithScore, TextNode
    from llama_index.postprocessor.jinaai_rerank import JinaRerank

    nodes = [NodeWithScore(node=TextNode(text=d, id_=str(n))) for n, d in enumerate(DOCUMENTS)]
    reranker = JinaRerank(top_n=TOP_N, model=MODEL, base_url=f"{server}/v1", api_key=KEY)
    with reranker._session:  # its only handle on the connection pool
        kept = reranker.postprocess_nodes(nodes, query_str=QUERY)
    ranked = [(int(n.node.id_), n.score or 0.0) for n in kept]
    _assert_ranked(ranked, reference[MODEL], top_n=TOP_N)


# --- Open WebUI and TEI -------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_open_webui_external_reranker_request(
    server: str, reference: dict[str, np.ndarray], name: str
) -> None:
    """Open WebUI's ExternalReranker.predict, as its source sends it (backend/open_webui/
    retrieval/models/external.py): `POST {url}` with {model, query, documents, top_n: all}, a
    Bearer key and the forwarded-user headers; it raises on a non-2xx, sorts `results` by
    `index` and reads `relevance_score`, one score per document."""
    headers = {
        "Content-Type": "application/json",
        "Authorization": f"Bearer {KEY}",
        "X-OpenWebUI-User-Name": quote("Zoë Müller", safe=" "),
        "X-OpenWebUI-User-Id": "8f1c2d3e",
        "X-OpenWebUI-User-Email": "zoe@example.com",
        "X-OpenWebUI-User-Role": "user",
    }
    payload = {"model": name, "query": QUERY, "documents": DOCUMENTS, "top_n": len(DOCUMENTS)}
    with requests.Session() as session:
        answer = session.post(f"{server}/v1/rerank", headers=headers, json=payload, timeout=120)
    answer.raise_for_status()
    results = sorted(answer.json()["results"], key=lambda x: x["index"])
    scores = np.asarray([r["relevance_score"] for r in results], np.float64)
    assert scores.shape == reference[name].shape
    assert np.abs(scores - reference[name]).max() < MAX_ABS_DIFF


def test_raw_tei_request(server: str, reference: dict[str, np.ndarray]) -> None:
    """TEI's POST /rerank with every field TEI's own clients send: [{index, score, text}],
    highest first; the field TEI has and we do not (truncation_direction) is ignored."""
    body = {
        "query": QUERY,
        "texts": DOCUMENTS,
        "raw_scores": False,
        "return_text": True,
        "truncate": True,
        "truncation_direction": "Right",
    }
    answer = httpx.post(
        f"{server}/rerank", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=120
    )
    assert answer.status_code == 200, answer.text
    rows = answer.json()
    assert all(set(row) == {"index", "score", "text"} for row in rows)
    assert all(row["text"] == DOCUMENTS[row["index"]] for row in rows)
    _assert_ranked([(row["index"], row["score"]) for row in rows], reference[MODEL])
