"""Ollama suite: /api/embed, /api/embeddings, /api/tags, /api/show, /api/ps, driven by the
official `ollama` SDK; plain HTTP for /api/version, GET / and HEAD / (the SDK has no call for
them) and for bodies the SDK refuses to send.

Error texts are Ollama's own (server/routes.go): clients and users match on them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import httpx
import ollama
import pytest

from conformance.target import Target

pytestmark = pytest.mark.dialect("ollama")

UNKNOWN_MODEL = "no-such-model-for-conformance"
TOLERANCE = 1e-5  # per component, and on the norm of a unit vector
# longer than the context of any common embedding model (8192 tokens) and Ollama's num_ctx
OVERLONG = " ".join(["hello"] * 10_000)
# what LangChain's OllamaEmbeddings sends as `options`: mostly nulls
LANGCHAIN_OPTIONS: dict[str, Any] = {
    "mirostat": None,
    "mirostat_eta": None,
    "mirostat_tau": None,
    "num_ctx": None,
    "num_gpu": None,
    "num_thread": None,
    "repeat_last_n": None,
    "repeat_penalty": None,
    "temperature": None,
    "stop": None,
    "tfs_z": None,
    "top_k": None,
    "top_p": None,
}


def _norm(vector: Sequence[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


def _max_diff(a: Sequence[float], b: Sequence[float]) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _sdk_error(response: httpx.Response) -> ollama.ResponseError:
    """The ResponseError the SDK raises for this answer, after checking it is a JSON error."""
    assert response.headers.get("content-type", "").startswith("application/json")
    body = response.json()
    assert isinstance(body, dict), "an Ollama error body is a JSON object"
    assert isinstance(body.get("error"), str), 'an Ollama error body is {"error": "<text>"}'
    return ollama.ResponseError(response.text, response.status_code)


def _assert_error(caught: ollama.ResponseError, status: int, message: str) -> None:
    assert caught.status_code == status, f"expected HTTP {status}"
    assert caught.error == message


def _embed(ollama_client: ollama.Client, target: Target, text: str) -> list[float]:
    response = ollama_client.embed(model=target.model, input=[text])
    return list(response.embeddings[0])


# --- /api/embed: shape --------------------------------------------------------------------


def test_embed_gives_one_vector_per_input(ollama_client: ollama.Client, target: Target) -> None:
    """embed() with a list answers one non-empty vector per input, all of one dimension."""
    response = ollama_client.embed(model=target.model, input=["first", "second", "third"])
    assert len(response.embeddings) == 3
    assert all(len(v) > 0 for v in response.embeddings)
    assert len({len(v) for v in response.embeddings}) == 1


def test_embed_single_string_gives_one_vector(ollama_client: ollama.Client, target: Target) -> None:
    """embed() with a single string answers exactly one vector."""
    response = ollama_client.embed(model=target.model, input="hello world")
    assert len(response.embeddings) == 1
    assert len(response.embeddings[0]) > 0


def test_embed_echoes_the_model_name(ollama_client: ollama.Client, target: Target) -> None:
    """The answer's `model` is the model name exactly as the request gave it."""
    response = ollama_client.embed(model=target.model, input="hello")
    assert response.model == target.model


def test_embed_embeddings_are_lists_of_numbers(http: httpx.Client, target: Target) -> None:
    """`embeddings` is a JSON array of arrays of numbers (not strings, not base64)."""
    response = http.post("/api/embed", json={"model": target.model, "input": ["a", "b"]})
    assert response.status_code == 200
    embeddings = response.json()["embeddings"]
    assert isinstance(embeddings, list)
    for vector in embeddings:
        assert isinstance(vector, list)
        assert all(_is_number(x) for x in vector)


def test_embed_metrics_are_non_negative_integers(http: httpx.Client, target: Target) -> None:
    """total_duration, load_duration and prompt_eval_count, where present, are integers >= 0."""
    response = http.post("/api/embed", json={"model": target.model, "input": ["hello"]})
    assert response.status_code == 200
    body = response.json()
    for key in ("total_duration", "load_duration", "prompt_eval_count"):
        if key in body and body[key] is not None:
            value = body[key]
            assert isinstance(value, int), f"{key} must be an integer"
            assert not isinstance(value, bool), f"{key} must be an integer"
            assert value >= 0, f"{key} must not be negative"


def test_embed_vectors_are_finite(ollama_client: ollama.Client, target: Target) -> None:
    """No component of any vector is NaN or infinite."""
    response = ollama_client.embed(model=target.model, input=["", "a", "🙂 日本語 שלום"])
    for vector in response.embeddings:
        assert all(math.isfinite(x) for x in vector)


def test_embed_vectors_are_unit_length(ollama_client: ollama.Client, target: Target) -> None:
    """/api/embed always answers L2-normalised vectors (norm 1 within 1e-5)."""
    texts = ["a", "hello world", " ".join(["a longer text about rivers"] * 10)]
    response = ollama_client.embed(model=target.model, input=texts)
    for vector in response.embeddings:
        assert abs(_norm(vector) - 1.0) <= TOLERANCE


# --- /api/embed: truncate, empty input, dimensions ----------------------------------------


def test_embed_truncates_overlong_input_by_default(
    ollama_client: ollama.Client, target: Target
) -> None:
    """Without `truncate`, an input longer than the context is cut and embedded, not refused."""
    response = ollama_client.embed(model=target.model, input=[OVERLONG])
    assert len(response.embeddings) == 1
    assert len(response.embeddings[0]) > 0


def test_embed_truncate_false_refuses_overlong_input(
    ollama_client: ollama.Client, target: Target
) -> None:
    """truncate=false with an input longer than the context is a 400 with Ollama's text."""
    with pytest.raises(ollama.ResponseError) as caught:
        ollama_client.embed(model=target.model, input=[OVERLONG], truncate=False)
    _assert_error(caught.value, 400, "the input length exceeds the context length")


def test_embed_empty_string_gives_no_embeddings(
    ollama_client: ollama.Client, target: Target
) -> None:
    """input "" (the preload call) answers 200 with `embeddings` [] (no vector)."""
    response = ollama_client.embed(model=target.model, input="")
    assert list(response.embeddings) == []


def test_embed_list_with_empty_string_gives_one_vector(
    ollama_client: ollama.Client, target: Target
) -> None:
    """input [""] embeds the empty string: one vector comes back."""
    response = ollama_client.embed(model=target.model, input=[""])
    assert len(response.embeddings) == 1
    assert len(response.embeddings[0]) > 0


def test_embed_dimensions_is_the_renormalised_prefix(
    ollama_client: ollama.Client, target: Target
) -> None:
    """dimensions=d answers the first d components of the full vector, re-normalised to 1."""
    text = "dimensions cut the vector"
    full = _embed(ollama_client, target, text)
    d = max(1, len(full) // 3)
    cut = ollama_client.embed(model=target.model, input=[text], dimensions=d).embeddings[0]
    scale = _norm(full[:d])
    assert len(cut) == d
    assert _max_diff(cut, [x / scale for x in full[:d]]) <= TOLERANCE


@pytest.mark.parametrize("dimensions", [0, -3, 1_000_000])
def test_embed_dimensions_out_of_range_is_ignored(
    ollama_client: ollama.Client, target: Target, dimensions: int
) -> None:
    """dimensions <= 0 or >= the model's size is ignored: the full vector comes back, no error."""
    text = "dimensions out of range"
    full = _embed(ollama_client, target, text)
    answer = ollama_client.embed(model=target.model, input=[text], dimensions=dimensions)
    assert len(answer.embeddings[0]) == len(full)
    assert _max_diff(answer.embeddings[0], full) <= TOLERANCE


# --- /api/embed: what clients add to the request ------------------------------------------


def test_embed_ignores_unknown_fields(http: httpx.Client, target: Target) -> None:
    """Unknown top-level fields (Open WebUI's prefix field, anything else) are ignored."""
    body = {"model": target.model, "input": ["hello"], "prefix": "query: ", "x_unknown": {"a": 1}}
    response = http.post("/api/embed", json=body)
    assert response.status_code == 200
    assert len(response.json()["embeddings"]) == 1


def test_embed_ignores_null_options(ollama_client: ollama.Client, target: Target) -> None:
    """LangChain's `options` full of nulls is accepted and ignored."""
    response = ollama_client.embed(model=target.model, input=["hello"], options=LANGCHAIN_OPTIONS)
    assert len(response.embeddings) == 1


@pytest.mark.parametrize("keep_alive", ["5m", 300, -1], ids=["duration", "seconds", "forever"])
def test_embed_accepts_keep_alive(
    ollama_client: ollama.Client, target: Target, keep_alive: str | int
) -> None:
    """keep_alive as a Go duration string, a number of seconds or -1 (forever) is accepted."""
    response = ollama_client.embed(model=target.model, input=["hello"], keep_alive=keep_alive)
    assert len(response.embeddings) == 1


# --- legacy /api/embeddings ---------------------------------------------------------------


def test_legacy_embeddings_answers_one_vector(http: httpx.Client, target: Target) -> None:
    """POST /api/embeddings answers {"embedding": [numbers]} for a prompt."""
    response = http.post("/api/embeddings", json={"model": target.model, "prompt": "hello"})
    assert response.status_code == 200
    vector = response.json()["embedding"]
    assert isinstance(vector, list)
    assert vector
    assert all(_is_number(x) for x in vector)


def test_legacy_embeddings_parses_with_sdk(ollama_client: ollama.Client, target: Target) -> None:
    """The SDK's embeddings() parses the answer into one non-empty vector."""
    response = ollama_client.embeddings(model=target.model, prompt="hello")
    assert len(response.embedding) > 0


def test_legacy_embeddings_empty_prompt_gives_empty_vector(
    ollama_client: ollama.Client, target: Target
) -> None:
    """prompt "" (the preload call) answers 200 with `embedding` []."""
    response = ollama_client.embeddings(model=target.model, prompt="")
    assert list(response.embedding) == []


def test_legacy_embeddings_points_like_embed(ollama_client: ollama.Client, target: Target) -> None:
    """The legacy vector (unnormalised) points the same way as /api/embed's for one text."""
    text = "the same text through both endpoints"
    legacy = list(ollama_client.embeddings(model=target.model, prompt=text).embedding)
    current = _embed(ollama_client, target, text)
    scale = _norm(legacy)
    assert _max_diff([x / scale for x in legacy], current) <= TOLERANCE


# --- /api/tags, /api/show, /api/ps --------------------------------------------------------


def test_tags_entries_have_name_and_model(http: httpx.Client) -> None:
    """Every /api/tags entry has both `name` and `model` as strings (Open WebUI reads both)."""
    response = http.get("/api/tags")
    assert response.status_code == 200
    models = response.json()["models"]
    assert isinstance(models, list)
    assert models, "the list names at least one model"
    for entry in models:
        assert isinstance(entry.get("name"), str), "every entry needs `name`"
        assert isinstance(entry.get("model"), str), "every entry needs `model`"


def test_tags_lists_the_model(ollama_client: ollama.Client, target: Target) -> None:
    """list() names the model as LangChain's check matches it: equal, or equal up to a ":tag"."""
    names = [m.model for m in ollama_client.list().models if m.model]
    assert any(n == target.model or n.startswith(f"{target.model}:") for n in names), names


def test_show_has_model_info(ollama_client: ollama.Client, target: Target) -> None:
    """show() parses: the answer carries the `model_info` key the SDK requires."""
    response = ollama_client.show(target.model)
    assert response.modelinfo is None or isinstance(response.modelinfo, dict)


def test_show_unknown_model_is_404(ollama_client: ollama.Client) -> None:
    """show() of an unknown model is a 404 with Ollama's text "model 'X' not found"."""
    with pytest.raises(ollama.ResponseError) as caught:
        ollama_client.show(UNKNOWN_MODEL)
    _assert_error(caught.value, 404, f"model '{UNKNOWN_MODEL}' not found")


def test_ps_parses(ollama_client: ollama.Client, target: Target) -> None:
    """ps() parses after an embedding call: `models` is a list."""
    ollama_client.embed(model=target.model, input="hello")
    response = ollama_client.ps()
    assert isinstance(response.models, list)


def test_ps_expires_at_parses_as_iso(http: httpx.Client, target: Target) -> None:
    """Every /api/ps expires_at parses with datetime.fromisoformat, as Open WebUI parses it."""
    http.post("/api/embed", json={"model": target.model, "input": "hello"})
    response = http.get("/api/ps")
    assert response.status_code == 200
    for entry in response.json()["models"]:
        if entry.get("expires_at") is not None:
            datetime.fromisoformat(entry["expires_at"])


# --- liveness and version -----------------------------------------------------------------


def test_version_is_dotted_integers(http: httpx.Client) -> None:
    """/api/version is {"version": "X.Y.Z"}, which Open WebUI parses into a tuple of ints."""
    response = http.get("/api/version")
    assert response.status_code == 200
    version = response.json()["version"]
    assert isinstance(version, str)
    parts = tuple(map(int, re.sub(r"^v|-.*", "", version).split(".")))
    assert parts


def test_root_get_says_ollama_is_running(http: httpx.Client) -> None:
    """GET / answers 200 "Ollama is running", the liveness probe of Ollama clients."""
    response = http.get("/")
    assert (response.status_code, response.text) == (200, "Ollama is running")


def test_root_head_is_200(http: httpx.Client) -> None:
    """HEAD / answers 200."""
    response = http.head("/")
    assert response.status_code == 200


# --- errors -------------------------------------------------------------------------------


def test_embed_unknown_model_is_404(ollama_client: ollama.Client) -> None:
    """embed() of an unknown model is a 404 'model "X" not found, try pulling it first'."""
    with pytest.raises(ollama.ResponseError) as caught:
        ollama_client.embed(model=UNKNOWN_MODEL, input="hello")
    _assert_error(caught.value, 404, f'model "{UNKNOWN_MODEL}" not found, try pulling it first')


def test_legacy_embeddings_unknown_model_is_404(ollama_client: ollama.Client) -> None:
    """embeddings() of an unknown model is a 404 'model "X" not found, try pulling it first'."""
    with pytest.raises(ollama.ResponseError) as caught:
        ollama_client.embeddings(model=UNKNOWN_MODEL, prompt="hello")
    _assert_error(caught.value, 404, f'model "{UNKNOWN_MODEL}" not found, try pulling it first')


def test_embed_missing_model_is_404(http: httpx.Client) -> None:
    """/api/embed without `model` is a 404 "model '' not found" (the SDK refuses to send it)."""
    response = http.post("/api/embed", json={"input": "hello"})
    _assert_error(_sdk_error(response), 404, "model '' not found")


def test_legacy_embeddings_missing_model_is_400(http: httpx.Client) -> None:
    """/api/embeddings without `model` is a 400 "model is required"."""
    response = http.post("/api/embeddings", json={"prompt": "hello"})
    _assert_error(_sdk_error(response), 400, "model is required")


def test_show_missing_model_is_400(http: httpx.Client) -> None:
    """/api/show without `model` is a 400 "model is required"."""
    response = http.post("/api/show", json={})
    _assert_error(_sdk_error(response), 400, "model is required")


@pytest.mark.parametrize("value", [[1, 2], 5], ids=["token-ids", "number"])
def test_embed_invalid_input_type_is_400(http: httpx.Client, target: Target, value: object) -> None:
    """`input` that is neither a string nor a list of strings is a 400 "invalid input type"."""
    response = http.post("/api/embed", json={"model": target.model, "input": value})
    _assert_error(_sdk_error(response), 400, "invalid input type")


def test_embed_missing_body_is_400(http: httpx.Client) -> None:
    """POST /api/embed with no body is a 400 "missing request body"."""
    response = http.post("/api/embed", headers={"content-type": "application/json"})
    _assert_error(_sdk_error(response), 400, "missing request body")


def test_embed_malformed_json_is_400(http: httpx.Client, target: Target) -> None:
    """A body that is not valid JSON is a 400 with a JSON {"error": ...} body."""
    response = http.post(
        "/api/embed",
        content=f'{{"model": "{target.model}", "input": ',
        headers={"content-type": "application/json"},
    )
    assert _sdk_error(response).status_code == 400


def test_unknown_route_answers_json_error(http: httpx.Client) -> None:
    """An unknown /api route is a 404 whose body is JSON with "error" (Open WebUI reads it)."""
    response = http.get("/api/no-such-route-for-conformance")
    assert _sdk_error(response).status_code == 404
