"""Prompts and normalisation through both dialects, against sentence-transformers' encode.

One small BERT in sentence-transformers' layout, as gte-base on disk: named prompts, pooling
that leaves the prompt out (`include_prompt: false`) and a Dense module, no Normalize, so its
own output is not unit length and each field shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pytest

from adapters.bootstrap import Settings, build_app
from tests.http.conftest import BASE
from tests.model_factory import DenseModule, reference_model, write_bert_model
from tests.parity.test_bert_parity import scaled_abs_diff
from tests.tolerances import MAX_ABS_DIFF, MIN_COSINE

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

MODEL = "gte-base"
TEXTS = ["what is a prompt?", "The quick brown fox jumps over the lazy dog. " * 30, ""]
PROMPTS = {"query": "query: ", "document": "Represent this passage: "}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("prompts")
    write_bert_model(
        home / "Embeddings" / "thenlper" / "gte-base",
        dense=[DenseModule(24)],
        include_prompt=False,
        prompts=PROMPTS,
        max_seq_length=32,  # the long text is cut, prompt kept
        seed=50,
    )
    return home


@pytest.fixture(scope="module")
def reference(home: Path) -> Any:
    return reference_model(home / "Embeddings" / "thenlper" / "gte-base")


async def _client(home: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(Settings(home=home, offline=True, log_format="json", **settings))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield c


@pytest.fixture
async def http(home: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(home):
        yield client


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _assert_close(ours: np.ndarray, reference: np.ndarray) -> None:
    assert ours.shape == reference.shape
    assert scaled_abs_diff(ours, reference).max() < MAX_ABS_DIFF
    assert (_unit(ours) * _unit(reference)).sum(axis=1).min() > MIN_COSINE


async def _openai(http: httpx.AsyncClient, **fields: Any) -> np.ndarray:
    response = await http.post("/v1/embeddings", json={"model": MODEL, "input": TEXTS, **fields})
    assert response.status_code == 200, response.text
    return np.asarray([d["embedding"] for d in response.json()["data"]], dtype=np.float32)


async def _ollama(http: httpx.AsyncClient, **fields: Any) -> np.ndarray:
    response = await http.post("/api/embed", json={"model": MODEL, "input": TEXTS, **fields})
    assert response.status_code == 200, response.text
    return np.asarray(response.json()["embeddings"], dtype=np.float32)


DIALECTS = pytest.mark.parametrize("embed", [_openai, _ollama], ids=["openai", "ollama"])


@DIALECTS
async def test_vectors_are_unit_length_by_default(http: httpx.AsyncClient, embed: Any) -> None:
    """No field: the model's output at unit length, though the model has no Normalize."""
    ours = await embed(http)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-6)


@DIALECTS
async def test_normalize_false_is_the_models_own_output(
    http: httpx.AsyncClient, embed: Any, reference: Any
) -> None:
    """`"normalize": false` equals encode() without normalisation."""
    _assert_close(await embed(http, normalize=False), reference.encode(TEXTS))


@DIALECTS
@pytest.mark.parametrize(
    ("fields", "prompt_name"),
    [
        ({"prompt_name": "query"}, "query"),
        ({"input_type": "search_query"}, "query"),
        ({"input_type": "query"}, "query"),
        ({"input_type": "search_document"}, "document"),
        ({"input_type": "document"}, "document"),
    ],
)
async def test_a_chosen_prompt_equals_encode_with_that_prompt_name(
    http: httpx.AsyncClient, embed: Any, reference: Any, fields: dict[str, str], prompt_name: str
) -> None:
    """prompt_name and input_type equal encode(..., prompt_name=...), prompt left out of
    pooling as the model's Pooling config says."""
    ours = await embed(http, normalize=False, **fields)
    _assert_close(ours, reference.encode(TEXTS, prompt_name=prompt_name))


@DIALECTS
async def test_a_literal_prompt_equals_encode_with_that_prompt(
    http: httpx.AsyncClient, embed: Any, reference: Any
) -> None:
    """`prompt` equals encode(..., prompt=...)."""
    ours = await embed(http, normalize=False, prompt="search for: ")
    _assert_close(ours, reference.encode(TEXTS, prompt="search for: "))


async def test_the_legacy_route_takes_a_prompt_name_and_stays_unnormalised(
    http: httpx.AsyncClient, reference: Any
) -> None:
    """/api/embeddings: its `prompt` is the text; prompt_name chooses the model's prompt."""
    body = {"model": MODEL, "prompt": TEXTS[0], "prompt_name": "query"}
    response = await http.post("/api/embeddings", json=body)
    assert response.status_code == 200, response.text
    ours = np.asarray([response.json()["embedding"]], dtype=np.float32)
    _assert_close(ours, reference.encode(TEXTS[:1], prompt_name="query"))


async def test_usage_counts_the_prompts_tokens(http: httpx.AsyncClient, reference: Any) -> None:
    """prompt_tokens and prompt_eval_count count prompt + text, as the model saw them."""
    counted = reference.preprocess([PROMPTS["query"] + TEXTS[0]])["attention_mask"].sum()
    body = {"model": MODEL, "input": TEXTS[0], "prompt_name": "query"}
    openai = (await http.post("/v1/embeddings", json=body)).json()
    ollama = (await http.post("/api/embed", json=body)).json()
    assert openai["usage"]["prompt_tokens"] == ollama["prompt_eval_count"] == counted


async def test_the_servers_default_prompt_name_applies_to_requests_that_choose_none(
    home: Path, reference: Any
) -> None:
    """--default-prompt-name query: no field gives encode(..., prompt_name="query")."""
    async for http in _client(home, default_prompt_name="query"):
        _assert_close(
            await _openai(http, normalize=False), reference.encode(TEXTS, prompt_name="query")
        )


@pytest.mark.parametrize(
    ("fields", "param", "says"),
    [
        ({"prompt_name": "nope"}, "prompt_name", "'document', 'query'"),
        ({"prompt_name": "query", "prompt": "x"}, "prompt", "at most one"),
        ({"input_type": "query", "prompt": "x"}, "input_type", "at most one"),
        ({"input_type": "search"}, "input_type", "input_type"),
        ({"prompt": 3}, "prompt", ""),  # Ollama words a `prompt` of the wrong type its own way
        ({"normalize": "no"}, "normalize", "normalize"),
    ],
)
async def test_bad_prompt_fields_are_400s_in_each_dialect(
    http: httpx.AsyncClient, fields: dict[str, Any], param: str, says: str
) -> None:
    """Refused in the caller's envelope: OpenAI's error object, Ollama's error string."""
    body = {"model": MODEL, "input": "x", **fields}
    openai = await http.post("/v1/embeddings", json=body)
    assert openai.status_code == 400
    error = openai.json()["error"]
    assert says in error["message"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    ollama = await http.post("/api/embed", json=body)
    assert ollama.status_code == 400
    assert says in ollama.json()["error"]
