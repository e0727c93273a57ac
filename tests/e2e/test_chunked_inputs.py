"""truncate "chunk" through the real server, with the real all-MiniLM-L6-v2 (256 tokens).

A text of over a thousand tokens comes back as one vector that equals, to 1e-5, what the
reference library computes: the model's tokenizer reads the whole text, the same windows are
cut from its ids ([CLS] + 254 tokens + [SEP], consecutive windows sharing the overlap),
sentence-transformers embeds each window, and the vectors are averaged weighted by their tokens
(special tokens included), then brought to unit length.

Two servers for the module, each on the numpy reference engine: one as started by default, one
with EMBEDSERVE_TRUNCATE=chunk and EMBEDSERVE_CHUNK_OVERLAP=40, the way an ollama SDK user gets
chunking (its `embed()` types `truncate` as a bool and cannot send "chunk").
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import ollama
import openai
import pytest

from tests.model_factory import minilm_folder, reference_model
from tests.server_process import running_server

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

pytestmark = [pytest.mark.slow, pytest.mark.reference]

MODEL = "all-MiniLM-L6-v2"
_MAX_TOKENS = 256
_DEFAULT_OVERLAP = 32
_ENV_OVERLAP = 40
_TOLERANCE = 1e-5
_SENTENCES = [
    "The harbour lights flickered as the last ferry left for the islands.",
    "Quantum error correction encodes one logical qubit in many physical ones.",
    "Grandmother's recipe calls for cardamom, saffron and a pinch of sea salt.",
    "In 1887 the observatory recorded 214 meteors over a single August night.",
    "Les trains régionaux partent toutes les heures de la gare centrale.",
    "Merge sort divides the list, sorts each half, then merges them in order.",
]
LONG = " ".join(_SENTENCES[n % len(_SENTENCES)] + f" ({n})" for n in range(60))
SHORT = ["a short text", "", "another one, also short"]


@dataclass
class Servers:
    default: str  # started with no setting
    chunking: str  # EMBEDSERVE_TRUNCATE=chunk, EMBEDSERVE_CHUNK_OVERLAP=40


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    root = tmp_path_factory.mktemp("chunked")
    quiet = {"EMBEDSERVE_ENGINE": "numpy", "EMBEDSERVE_LOG_FORMAT": "json", "HF_HUB_OFFLINE": "1"}
    chunking = quiet | {"EMBEDSERVE_TRUNCATE": "chunk", "EMBEDSERVE_CHUNK_OVERLAP": "40"}
    with (
        running_server(root / "a", root / "a.log", quiet) as default,
        running_server(root / "b", root / "b.log", chunking) as chunked,
    ):
        yield Servers(default, chunked)


@pytest.fixture(scope="module")
def reference() -> SentenceTransformer:
    return reference_model(minilm_folder())


Pooled = Callable[[str, int], tuple[np.ndarray, int]]


@pytest.fixture(scope="module")
def pooled(reference: SentenceTransformer) -> Pooled:
    """`_chunked` on the reference, each (text, overlap) computed once for the module."""
    return functools.cache(functools.partial(_chunked, reference))


def _windows(model: SentenceTransformer, text: str, overlap: int) -> list[list[int]]:
    """The whole text's ids, cut as chunking cuts them, each window in [CLS] ... [SEP]."""
    tok = model.tokenizer
    ids = tok(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    room = _MAX_TOKENS - 2
    starts = range(0, max(1, len(ids) - overlap), room - overlap)
    return [[tok.cls_token_id, *ids[s : s + room], tok.sep_token_id] for s in starts]


def _chunked(model: SentenceTransformer, text: str, overlap: int) -> tuple[np.ndarray, int]:
    """sentence-transformers' vector of each window, token-weighted mean, unit length; and the
    tokens the windows hold."""
    import torch

    windows = _windows(model, text, overlap)
    vectors = []
    for window in windows:
        ids = torch.tensor([window])
        features = {
            "input_ids": ids,
            "attention_mask": torch.ones_like(ids),
            "token_type_ids": torch.zeros_like(ids),
        }
        with torch.no_grad():
            vectors.append(model.forward(features)["sentence_embedding"][0].double().numpy())
    weights = np.array([len(w) for w in windows], dtype=np.float64)
    mean = (np.stack(vectors) * weights[:, None]).sum(axis=0) / weights.sum()
    return mean / np.linalg.norm(mean), int(weights.sum())


def test_the_text_is_long_enough_for_several_windows(reference: SentenceTransformer) -> None:
    """Over a thousand tokens: five windows of 256 or so, the last one shorter."""
    windows = _windows(reference, LONG, _DEFAULT_OVERLAP)
    assert sum(len(w) - 2 for w in windows) > 1000 + _DEFAULT_OVERLAP * 3
    assert len(windows) >= 5
    assert all(len(w) == _MAX_TOKENS for w in windows[:-1])


def _api_embed(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/api/embed", json={"model": MODEL} | body, timeout=60)


def test_api_embed_chunk_equals_the_reference_windows(servers: Servers, pooled: Pooled) -> None:
    """/api/embed with "truncate": "chunk": the reference's pooled windows, every token counted."""
    response = _api_embed(servers.default, {"input": [LONG], "truncate": "chunk"})
    assert response.status_code == 200, response.text
    expected, tokens = pooled(LONG, _DEFAULT_OVERLAP)
    body = response.json()
    np.testing.assert_allclose(body["embeddings"][0], expected, atol=_TOLERANCE)
    assert body["prompt_eval_count"] == tokens


def test_openai_sdk_extra_body_chunk_equals_the_reference_windows(
    servers: Servers, pooled: Pooled
) -> None:
    """The openai SDK sends the field with extra_body; usage counts all the windows' tokens."""
    with openai.OpenAI(base_url=f"{servers.default}/v1", api_key="x", max_retries=0) as client:
        result = client.embeddings.create(
            model=MODEL, input=[LONG], extra_body={"truncate": "chunk"}
        )
    expected, tokens = pooled(LONG, _DEFAULT_OVERLAP)
    np.testing.assert_allclose(result.data[0].embedding, expected, atol=_TOLERANCE)
    assert result.usage.prompt_tokens == result.usage.total_tokens == tokens


def test_ollama_sdk_gets_chunks_from_the_server_setting(servers: Servers, pooled: Pooled) -> None:
    """EMBEDSERVE_TRUNCATE=chunk and EMBEDSERVE_CHUNK_OVERLAP=40 apply to requests that do not
    say, as the ollama SDK's do."""
    with ollama.Client(host=servers.chunking) as client:
        result = client.embed(model=MODEL, input=[LONG])
    expected, tokens = pooled(LONG, _ENV_OVERLAP)
    np.testing.assert_allclose(result.embeddings[0], expected, atol=_TOLERANCE)
    assert result.prompt_eval_count == tokens


def test_a_mixed_batch_keeps_order_and_leaves_short_inputs_as_they_were(
    servers: Servers, pooled: Pooled
) -> None:
    """Long and short inputs in one request: each in its place, the short ones bit for bit as
    truncate=true embeds them."""
    mixed = [SHORT[0], LONG, SHORT[1], LONG[:2000], SHORT[2]]
    chunked = _api_embed(servers.default, {"input": mixed, "truncate": "chunk"}).json()
    plain = _api_embed(servers.default, {"input": SHORT, "truncate": True}).json()
    vectors = chunked["embeddings"]
    assert [vectors[0], vectors[2], vectors[4]] == plain["embeddings"]
    np.testing.assert_allclose(vectors[1], pooled(LONG, _DEFAULT_OVERLAP)[0], atol=_TOLERANCE)
    np.testing.assert_allclose(
        vectors[3], pooled(LONG[:2000], _DEFAULT_OVERLAP)[0], atol=_TOLERANCE
    )


def test_dimensions_cut_the_pooled_vector(servers: Servers, pooled: Pooled) -> None:
    """`dimensions` keeps the first components of the pooled vector, then renormalises."""
    body = {"model": MODEL, "input": LONG, "truncate": "chunk", "dimensions": 64}
    response = httpx.post(f"{servers.default}/v1/embeddings", json=body, timeout=60)
    assert response.status_code == 200, response.text
    full = pooled(LONG, _DEFAULT_OVERLAP)[0][:64]
    expected = full / np.linalg.norm(full)
    np.testing.assert_allclose(response.json()["data"][0]["embedding"], expected, atol=_TOLERANCE)


def test_without_chunk_the_defaults_still_cut(servers: Servers) -> None:
    """A server started with no setting cuts at 256 tokens on both dialects, as before."""
    api = _api_embed(servers.default, {"input": [LONG]}).json()
    assert api["prompt_eval_count"] == _MAX_TOKENS
    body = {"model": MODEL, "input": LONG}
    v1 = httpx.post(f"{servers.default}/v1/embeddings", json=body, timeout=60).json()
    assert v1["usage"]["prompt_tokens"] == _MAX_TOKENS


def test_a_request_overrides_the_servers_chunking(servers: Servers) -> None:
    """On the chunking server, "truncate": true cuts and false refuses, in each dialect."""
    cut = _api_embed(servers.chunking, {"input": [LONG], "truncate": True}).json()
    assert cut["prompt_eval_count"] == _MAX_TOKENS
    refused = _api_embed(servers.chunking, {"input": [LONG], "truncate": False})
    assert refused.status_code == 400
    assert refused.json() == {"error": "the input length exceeds the context length"}
    body = {"model": MODEL, "input": LONG, "truncate": False}
    v1 = httpx.post(f"{servers.chunking}/v1/embeddings", json=body, timeout=60)
    assert v1.status_code == 400
    assert "maximum context length is 256 tokens" in v1.json()["error"]["message"]


@pytest.mark.parametrize("value", ["slice", 3, ["chunk"]])
def test_an_unknown_truncate_value_is_a_400_in_each_dialect(
    servers: Servers, value: object
) -> None:
    """Neither true, false nor "chunk": refused, naming the field, in the caller's envelope."""
    api = _api_embed(servers.default, {"input": "x", "truncate": value})
    assert api.status_code == 400
    assert "truncate" in api.json()["error"]
    body = {"model": MODEL, "input": "x", "truncate": value}
    v1 = httpx.post(f"{servers.default}/v1/embeddings", json=body, timeout=60)
    assert v1.status_code == 400
    assert v1.json()["error"]["param"] == "truncate"
