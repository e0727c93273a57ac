"""The clients people point at an embeddings server, driven against the real one on 127.0.0.1.

LangChain and LlamaIndex, each in its OpenAI and its Ollama flavour, on the real
all-MiniLM-L6-v2. Every test compares the client's vectors with sentence-transformers' for the
same texts, so a client that silently sends something else (other texts, another model, token
ids read in the wrong vocabulary) fails here rather than in a user's retrieval quality.

LangChain's OpenAIEmbeddings tokenizes with tiktoken's cl100k_base by default and sends token
ids. tiktoken downloads that table on first use, which no test may do: the fixture hands it the
copy bpe-openai carries (the server decodes ids with the same copy), through tiktoken's cache.

Each test imports its client itself: the four take seconds each to import, which collecting the
rest of the suite should not pay.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator, Sequence
from importlib import resources

import httpx
import httpx2
import numpy as np
import pytest
import tiktoken
from pydantic import SecretStr

from tests.corpus import EDGE_TEXTS, VARIED_TEXTS
from tests.model_factory import minilm_folder, reference_model
from tests.server_process import running_server
from tests.tolerances import MAX_ABS_DIFF

pytestmark = [pytest.mark.slow, pytest.mark.reference]

MODEL = "all-MiniLM-L6-v2"
# OpenAI's names, as LlamaIndex insists on them and LangChain defaults to the second one
ALIASES = {"text-embedding-3-small": MODEL, "text-embedding-ada-002": MODEL}
_KEY = SecretStr("unused")  # any key will do; the server asks for none
# a query with words in it: Ollama's /api/embed embeds nothing for "", so its clients' [0] fails
QUERY = "Café crème brûlée à la française"

# Where tiktoken fetches cl100k_base, and the sha256 it checks any copy against (both from
# tiktoken_ext/openai_public.py). Its cache names the file by the sha1 of that URL.
_CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
_CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"


@pytest.fixture(scope="module")
def cl100k(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tiktoken.Encoding]:
    """tiktoken's cl100k_base, read from bpe-openai's copy: never from the network."""
    table = gzip.decompress(
        (resources.files("bpe_openai.data") / "cl100k_base.tiktoken.gz").read_bytes()
    )
    # A copy that failed tiktoken's hash check would send it to the network: fail here instead.
    assert hashlib.sha256(table).hexdigest() == _CL100K_SHA256
    cache = tmp_path_factory.mktemp("tiktoken")
    (cache / hashlib.sha1(_CL100K_URL.encode()).hexdigest()).write_bytes(table)  # noqa: S324
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TIKTOKEN_CACHE_DIR", str(cache))
        yield tiktoken.get_encoding("cl100k_base")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the module, offline, on the reference engine: the clients are the
    subject here, and engine parity is tested elsewhere."""
    root = tmp_path_factory.mktemp("clients")
    env = {
        "HF_HUB_OFFLINE": "1",
        "EMBEDSERVE_ENGINE": "numpy",
        "EMBEDSERVE_ALIASES": ",".join(f"{a}={m}" for a, m in ALIASES.items()),
    }
    with running_server(root / "home", root / "server.log", env) as url:
        yield url


@pytest.fixture(scope="module")
def minilm() -> object:
    return reference_model(minilm_folder())


@pytest.fixture(scope="module")
def reference(minilm: object) -> dict[str, np.ndarray]:
    """sentence-transformers' vector for every text of the corpus (all-MiniLM-L6-v2 normalises).

    The full corpus goes through LangChain's token path, where every hostile text must survive
    cl100k_base both ways; the clients that send strings get its short, hostile half.
    """
    vectors = minilm.encode(VARIED_TEXTS, convert_to_numpy=True)  # type: ignore[attr-defined]
    return dict(zip(VARIED_TEXTS, vectors, strict=True))


def _assert_match(ours: Sequence[Sequence[float]], expected: Sequence[np.ndarray]) -> None:
    got = np.asarray(ours, dtype=np.float64)
    want = np.asarray(expected, dtype=np.float64)
    assert got.shape == want.shape
    assert np.abs(got - want).max() < MAX_ABS_DIFF


class _Recorder:
    """The JSON bodies an OpenAI SDK client posts, seen through an httpx2 event hook."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, object]] = []

    def __call__(self, request: httpx2.Request) -> None:
        self.bodies.append(json.loads(request.content))

    def inputs(self) -> list[object]:
        sent: list[object] = []
        for body in self.bodies:
            given = body["input"]
            sent.extend(given if isinstance(given, list) else [given])
        return sent


# --- LangChain ----------------------------------------------------------------------------------
# Each test hands its client an HTTP client or transport it closes: the clients keep their
# connection pools open, and an unclosed socket is an error under this suite's warning filter.


def test_langchain_openai_token_arrays_embed_as_their_text(
    server: str, cl100k: tiktoken.Encoding, reference: dict[str, np.ndarray]
) -> None:
    """With LangChain's defaults the wire carries cl100k_base ids; the server decodes them and
    re-tokenizes the text for the model, so every vector equals the string's own."""
    from langchain_openai import OpenAIEmbeddings

    recorder = _Recorder()
    with httpx2.Client(event_hooks={"request": [recorder]}) as http:
        client = OpenAIEmbeddings(
            model=MODEL, base_url=f"{server}/v1", api_key=_KEY, max_retries=0, http_client=http
        )
        vectors = client.embed_documents(VARIED_TEXTS)
    sent = recorder.inputs()
    token_arrays = [s for s in sent if isinstance(s, list)]
    # "" has no tokens, so LangChain asks for it alone, as a string; everything else is ids
    assert [s for s in sent if not isinstance(s, list)] == [""]
    assert all(isinstance(i, int) for ids in token_arrays for i in ids)
    decoded = [cl100k.decode(ids) for ids in token_arrays]
    assert decoded == [t for t in VARIED_TEXTS if t]
    _assert_match(vectors, [reference[t] for t in VARIED_TEXTS])


def test_langchain_openai_chunks_past_its_context_and_averages(
    server: str, cl100k: tiktoken.Encoding, minilm: object
) -> None:
    """A text longer than embedding_ctx_length goes as several id chunks, each decoded on its
    own; LangChain's token-weighted, renormalised mean of them equals the reference's."""
    from langchain_openai import OpenAIEmbeddings

    ctx = 8
    # three to six chunks each, enough to average and few enough to stay quick; the emoji
    # among them split a character across chunks, which both sides decode to U+FFFD
    sizes = {t: len(cl100k.encode_ordinary(t)) for t in VARIED_TEXTS}
    texts = [t for t, n in sizes.items() if 2 * ctx < n <= 6 * ctx][:8]
    assert len(texts) == 8
    expected = []
    for text in texts:
        ids = cl100k.encode_ordinary(text)
        chunks = [ids[i : i + ctx] for i in range(0, len(ids), ctx)]
        pieces = minilm.encode([cl100k.decode(c) for c in chunks], convert_to_numpy=True)  # type: ignore[attr-defined]
        mean = np.average(pieces.astype(np.float64), axis=0, weights=[len(c) for c in chunks])
        expected.append(mean / np.linalg.norm(mean))
    whole = minilm.encode(texts, convert_to_numpy=True)  # type: ignore[attr-defined]
    # chunking must change the answer, or this test could not tell chunks from whole texts
    assert np.abs(np.asarray(expected) - whole).max(axis=1).min() > 100 * MAX_ABS_DIFF
    with httpx2.Client() as http:
        client = OpenAIEmbeddings(
            model=MODEL,
            base_url=f"{server}/v1",
            api_key=_KEY,
            max_retries=0,
            embedding_ctx_length=ctx,
            http_client=http,
        )
        _assert_match(client.embed_documents(texts), expected)


def test_langchain_openai_sends_strings_with_the_ctx_check_off(
    server: str, reference: dict[str, np.ndarray]
) -> None:
    """check_embedding_ctx_length=False (what LangChain's docs advise for other servers) sends
    the strings themselves; embed_query embeds one."""
    from langchain_openai import OpenAIEmbeddings

    recorder = _Recorder()
    with httpx2.Client(event_hooks={"request": [recorder]}) as http:
        client = OpenAIEmbeddings(
            model=MODEL,
            base_url=f"{server}/v1",
            api_key=_KEY,
            max_retries=0,
            check_embedding_ctx_length=False,
            http_client=http,
        )
        vectors = client.embed_documents(EDGE_TEXTS)
        query = client.embed_query(QUERY)
    assert recorder.inputs() == [*EDGE_TEXTS, QUERY]
    _assert_match(vectors, [reference[t] for t in EDGE_TEXTS])
    _assert_match([query], [reference[QUERY]])


def test_langchain_openai_defaults_reach_the_model_through_an_alias(
    server: str, cl100k: tiktoken.Encoding, reference: dict[str, np.ndarray]
) -> None:
    """OpenAIEmbeddings with no model asks for text-embedding-ada-002, which the server's
    --alias maps to all-MiniLM-L6-v2."""
    from langchain_openai import OpenAIEmbeddings

    texts = EDGE_TEXTS[10:20]
    with httpx2.Client() as http:
        client = OpenAIEmbeddings(
            base_url=f"{server}/v1", api_key=_KEY, max_retries=0, http_client=http
        )
        assert client.model == "text-embedding-ada-002"
        _assert_match(client.embed_documents(texts), [reference[t] for t in texts])
        _assert_match([client.embed_query(QUERY)], [reference[QUERY]])


async def test_langchain_openai_async_path_matches(
    server: str, cl100k: tiktoken.Encoding, reference: dict[str, np.ndarray]
) -> None:
    """aembed_documents (AsyncOpenAI, ids tokenized in an executor) gives the same vectors."""
    from langchain_openai import OpenAIEmbeddings

    texts = EDGE_TEXTS[:24]
    async with httpx2.AsyncClient() as http:
        client = OpenAIEmbeddings(
            model=MODEL,
            base_url=f"{server}/v1",
            api_key=_KEY,
            max_retries=0,
            http_async_client=http,
        )
        _assert_match(await client.aembed_documents(texts), [reference[t] for t in texts])


def test_langchain_ollama_documents_and_query(
    server: str, reference: dict[str, np.ndarray]
) -> None:
    """OllamaEmbeddings checks /api/tags for the model, then posts /api/embed with
    mostly-null options; both calls match."""
    from langchain_ollama import OllamaEmbeddings

    with httpx.HTTPTransport() as transport:
        client = OllamaEmbeddings(
            model="all-minilm",
            base_url=server,
            validate_model_on_init=True,
            sync_client_kwargs={"transport": transport},
        )
        vectors = client.embed_documents(EDGE_TEXTS)
        query = client.embed_query(QUERY)
    _assert_match(vectors, [reference[t] for t in EDGE_TEXTS])
    _assert_match([query], [reference[QUERY]])


# --- LlamaIndex ---------------------------------------------------------------------------------


def test_llamaindex_openai_with_an_openai_model_name(
    server: str, reference: dict[str, np.ndarray]
) -> None:
    """OpenAIEmbedding takes only OpenAI's model names: text-embedding-3-small, aliased."""
    from llama_index.embeddings.openai import OpenAIEmbedding

    with httpx2.Client() as http:
        client = OpenAIEmbedding(
            model="text-embedding-3-small",
            api_base=f"{server}/v1",
            api_key=_KEY.get_secret_value(),
            max_retries=0,
            http_client=http,
        )
        # LlamaIndex sends "\n" as " "; to a WordPiece tokenizer both are whitespace, so the
        # vectors still equal the original texts'.
        vectors = client.get_text_embedding_batch(EDGE_TEXTS)
        query = client.get_query_embedding(QUERY)
    _assert_match(vectors, [reference[t] for t in EDGE_TEXTS])
    _assert_match([query], [reference[QUERY]])


def test_llamaindex_ollama_documents_and_query(
    server: str, reference: dict[str, np.ndarray]
) -> None:
    """OllamaEmbedding posts /api/embed, a list for a batch and a string for a query."""
    from llama_index.embeddings.ollama import OllamaEmbedding

    # Only the sync client is used; the async one is built with the same kwargs but never
    # opens a connection.
    with httpx.HTTPTransport() as transport:
        client = OllamaEmbedding(
            model_name="all-minilm", base_url=server, client_kwargs={"transport": transport}
        )
        vectors = client.get_text_embedding_batch(EDGE_TEXTS)
        query = client.get_query_embedding(QUERY)
    _assert_match(vectors, [reference[t] for t in EDGE_TEXTS])
    _assert_match([query], [reference[QUERY]])
