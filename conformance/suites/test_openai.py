"""OpenAI suite: POST /v1/embeddings and GET /v1/models, driven by the official `openai` SDK.

Plain HTTP (`http`) is used only for what the SDK cannot send: a body without `model`,
wrong JSON types, malformed JSON, no `encoding_format` on the wire. What each check expects
comes from the OpenAI API reference and from what OpenAI clients (the SDK, LangChain,
LlamaIndex, Open WebUI) rely on, never from one server's habits.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Sequence
from typing import Any

import httpx
import httpx2
import openai
import pytest

from conformance.target import Target

pytestmark = pytest.mark.dialect("openai")

# cl100k_base ids (the tokenizer of OpenAI's embedding models), as LangChain sends them
HELLO_WORLD_TOKENS = [15339, 1917]  # "hello world"
QUICK_FOX_TOKENS = [791, 4062, 14198, 39935]  # "The quick brown fox"

MAX_BATCH = 2048  # the API's limit on items in `input`
TOLERANCE = 1e-5  # per component, between vectors the server computed for the same text
ERROR_KEYS = {"message", "type", "param", "code"}

# very different lengths, so a server that sorts a batch by length must put it back in order
UNEVEN_TEXTS = [
    " ".join(["the history of the northern railway and its many stations"] * 12),
    "a",
    "a short sentence about cats",
    " ".join(["quantum chromodynamics describes the strong interaction"] * 4),
    "z",
]


def _vectors(response: openai.types.CreateEmbeddingResponse) -> list[list[float]]:
    return [item.embedding for item in response.data]


def _norm(vector: Sequence[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (_norm(a) * _norm(b))


def _max_diff(a: Sequence[float], b: Sequence[float]) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _raw_json(openai_client: openai.OpenAI, **kwargs: Any) -> Any:
    """The JSON the server answered to an SDK call, before the SDK's parsing and decoding."""
    raw = openai_client.embeddings.with_raw_response.create(**kwargs)
    return raw.http_response.json()


def _assert_error_envelope(response: httpx.Response | httpx2.Response, status: int) -> None:
    """The status, and the OpenAI error body: {"error": {message, type, param, code}}."""
    assert response.status_code == status, f"expected HTTP {status}"
    assert response.headers.get("content-type", "").startswith("application/json")
    body = response.json()
    assert isinstance(body, dict), "the error body must be a JSON object"
    error = body.get("error")
    assert isinstance(error, dict), 'the error body must be {"error": {...}}'
    missing = ERROR_KEYS - error.keys()
    assert not missing, f"the error object lacks {sorted(missing)} (all four keys are required)"
    assert isinstance(error["message"], str), "error.message must be a string"
    assert error["message"], "error.message must not be empty"
    assert isinstance(error["type"], str), "error.type must be a string"
    assert error["param"] is None or isinstance(error["param"], str), "param: string or null"
    assert error["code"] is None or isinstance(error["code"], str), "code: string or null"
    if status == 400:
        assert error["type"] == "invalid_request_error", "a 400 is an invalid_request_error"


# --- inputs and the shape of the answer ---------------------------------------------------


def test_single_string_gives_one_embedding(openai_client: openai.OpenAI, target: Target) -> None:
    """A single string input is answered with exactly one non-empty embedding at index 0."""
    response = openai_client.embeddings.create(model=target.model, input="hello world")
    assert len(response.data) == 1
    assert response.data[0].index == 0
    assert len(response.data[0].embedding) > 0


def test_batch_gives_one_embedding_per_input(openai_client: openai.OpenAI, target: Target) -> None:
    """A list of strings is answered with one embedding per item, all of the same length."""
    texts = ["first text", "second text", "third text"]
    vectors = _vectors(openai_client.embeddings.create(model=target.model, input=texts))
    assert len(vectors) == len(texts)
    assert len({len(v) for v in vectors}) == 1, "every row must have the same dimension"


def test_response_object_is_list(openai_client: openai.OpenAI, target: Target) -> None:
    """The answer's top-level `object` is "list"."""
    body = _raw_json(openai_client, model=target.model, input="hello")
    assert body["object"] == "list"


def test_response_model_is_a_string(openai_client: openai.OpenAI, target: Target) -> None:
    """The answer's `model` field is a non-empty string."""
    body = _raw_json(openai_client, model=target.model, input="hello")
    assert isinstance(body["model"], str)
    assert body["model"]


def test_data_items_are_embedding_objects(openai_client: openai.OpenAI, target: Target) -> None:
    """Every item of `data` has `object` "embedding", an integer `index` and an `embedding`."""
    body = _raw_json(openai_client, model=target.model, input=["one", "two"])
    assert isinstance(body["data"], list)
    for item in body["data"]:
        assert item["object"] == "embedding"
        assert _is_int(item["index"])
        assert "embedding" in item


def test_vectors_are_finite(openai_client: openai.OpenAI, target: Target) -> None:
    """No component of any vector is NaN or infinite."""
    texts = ["", "a", "hello world", "🙂 日本語 שלום"]
    vectors = _vectors(
        openai_client.embeddings.create(model=target.model, input=texts, encoding_format="float")
    )
    for vector in vectors:
        assert all(math.isfinite(x) for x in vector)


def test_empty_string_gives_one_embedding(openai_client: openai.OpenAI, target: Target) -> None:
    """input "" is embedded (LangChain's empty-text path sends it): one embedding comes back."""
    response = openai_client.embeddings.create(model=target.model, input="")
    assert len(response.data) == 1
    assert len(response.data[0].embedding) > 0


# --- encoding_format ----------------------------------------------------------------------


def test_sdk_default_call_decodes_to_floats(openai_client: openai.OpenAI, target: Target) -> None:
    """The SDK's default call (it sends encoding_format=base64) yields lists of floats."""
    response = openai_client.embeddings.create(model=target.model, input=["a", "b"])
    for vector in _vectors(response):
        assert vector
        assert all(isinstance(x, float) for x in vector)


def test_base64_answer_is_a_base64_string(openai_client: openai.OpenAI, target: Target) -> None:
    """encoding_format=base64 answers each embedding as base64 of little-endian float32s."""
    body = _raw_json(openai_client, model=target.model, input="hello", encoding_format="base64")
    encoded = body["data"][0]["embedding"]
    assert isinstance(encoded, str), "a base64 answer's embedding must be a string"
    raw = base64.b64decode(encoded, validate=True)
    assert raw
    assert len(raw) % 4 == 0, "the bytes must be whole float32 values"


def test_float_answer_is_a_list_of_numbers(openai_client: openai.OpenAI, target: Target) -> None:
    """encoding_format=float answers each embedding as a JSON array of numbers."""
    body = _raw_json(openai_client, model=target.model, input="hello", encoding_format="float")
    vector = body["data"][0]["embedding"]
    assert isinstance(vector, list)
    assert vector
    assert all(_is_number(x) for x in vector)


def test_no_encoding_format_answers_floats(http: httpx.Client, target: Target) -> None:
    """A request with no encoding_format (curl, Open WebUI) gets float arrays, the default."""
    response = http.post("/v1/embeddings", json={"model": target.model, "input": ["hello"]})
    assert response.status_code == 200
    vector = response.json()["data"][0]["embedding"]
    assert isinstance(vector, list)
    assert all(_is_number(x) for x in vector)


def test_base64_and_float_agree_bit_exact(openai_client: openai.OpenAI, target: Target) -> None:
    """The base64 and the float answers for one text are the same float32 values, bit for bit."""
    text = "The quick brown fox jumps over the lazy dog"
    encoded = _raw_json(openai_client, model=target.model, input=text, encoding_format="base64")
    floats = _raw_json(openai_client, model=target.model, input=text, encoding_format="float")
    raw = base64.b64decode(encoded["data"][0]["embedding"])
    vector = floats["data"][0]["embedding"]
    assert len(raw) == 4 * len(vector), "both answers must have the same dimension"
    assert struct.pack(f"<{len(vector)}f", *vector) == raw


# --- token input --------------------------------------------------------------------------


def test_token_array_input_is_accepted(openai_client: openai.OpenAI, target: Target) -> None:
    """input as one array of token ids (int[]) is accepted and gives one embedding."""
    response = openai_client.embeddings.create(model=target.model, input=HELLO_WORLD_TOKENS)
    assert len(response.data) == 1
    assert len(response.data[0].embedding) > 0


def test_token_arrays_input_is_accepted(openai_client: openai.OpenAI, target: Target) -> None:
    """input as a list of token arrays (int[][], LangChain's default) gives one row per array."""
    response = openai_client.embeddings.create(
        model=target.model, input=[HELLO_WORLD_TOKENS, QUICK_FOX_TOKENS]
    )
    assert [item.index for item in response.data] == [0, 1]
    assert all(item.embedding for item in response.data)


def test_token_ids_are_read_as_cl100k(openai_client: openai.OpenAI, target: Target) -> None:
    """Token ids are cl100k_base ids, as LangChain sends them: they embed like the text."""
    from_tokens = openai_client.embeddings.create(
        model=target.model, input=[HELLO_WORLD_TOKENS], encoding_format="float"
    )
    from_text = openai_client.embeddings.create(
        model=target.model, input=["hello world"], encoding_format="float"
    )
    assert _max_diff(from_tokens.data[0].embedding, from_text.data[0].embedding) <= TOLERANCE


# --- dimensions ---------------------------------------------------------------------------


def test_dimensions_is_the_renormalised_prefix(
    openai_client: openai.OpenAI, target: Target
) -> None:
    """dimensions=d answers the first d components of the full vector, re-normalised to 1."""
    text = "dimensions cut the vector"
    full = openai_client.embeddings.create(model=target.model, input=text, encoding_format="float")
    vector = full.data[0].embedding
    d = max(1, len(vector) // 3)
    cut = openai_client.embeddings.create(
        model=target.model, input=text, encoding_format="float", dimensions=d
    )
    prefix = vector[:d]
    scale = _norm(prefix)
    expected = [x / scale for x in prefix]
    assert len(cut.data[0].embedding) == d
    assert _max_diff(cut.data[0].embedding, expected) <= TOLERANCE


def test_dimensions_one_is_a_unit_scalar(openai_client: openai.OpenAI, target: Target) -> None:
    """dimensions=1, the smallest allowed value, answers a single component of magnitude 1."""
    response = openai_client.embeddings.create(
        model=target.model, input="one", encoding_format="float", dimensions=1
    )
    vector = response.data[0].embedding
    assert len(vector) == 1
    assert abs(abs(vector[0]) - 1.0) <= TOLERANCE


def test_dimensions_zero_is_400(openai_client: openai.OpenAI, target: Target) -> None:
    """dimensions=0 is below the API's minimum of 1 and is refused with a 400 error envelope."""
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.embeddings.create(model=target.model, input="zero", dimensions=0)
    _assert_error_envelope(caught.value.response, 400)


# --- order and usage ----------------------------------------------------------------------


def test_indexes_count_up_in_input_order(openai_client: openai.OpenAI, target: Target) -> None:
    """data[i].index is i for every row, whatever the lengths of the inputs."""
    response = openai_client.embeddings.create(model=target.model, input=UNEVEN_TEXTS)
    assert [item.index for item in response.data] == list(range(len(UNEVEN_TEXTS)))


def test_rows_follow_input_order(openai_client: openai.OpenAI, target: Target) -> None:
    """Row i of a batch of uneven lengths is the embedding of input i, not of another input."""
    batch = _vectors(
        openai_client.embeddings.create(
            model=target.model, input=UNEVEN_TEXTS, encoding_format="float"
        )
    )
    alone = [
        openai_client.embeddings.create(model=target.model, input=text, encoding_format="float")
        .data[0]
        .embedding
        for text in UNEVEN_TEXTS
    ]
    for i, row in enumerate(batch):
        similarity = [_cosine(row, other) for other in alone]
        nearest = similarity.index(max(similarity))
        assert nearest == i, f"row {i} is the embedding of input {nearest}"


def test_usage_counts_are_equal_positive_integers(
    openai_client: openai.OpenAI, target: Target
) -> None:
    """usage has integer prompt_tokens and total_tokens, equal to each other and above 0."""
    body = _raw_json(openai_client, model=target.model, input=["hello world", "again"])
    usage = body["usage"]
    assert _is_int(usage["prompt_tokens"])
    assert _is_int(usage["total_tokens"])
    assert usage["prompt_tokens"] == usage["total_tokens"]
    assert usage["prompt_tokens"] > 0


def test_longer_text_counts_no_fewer_tokens(openai_client: openai.OpenAI, target: Target) -> None:
    """A text never counts fewer prompt tokens than its own prefix."""
    prefix = "the cat sat"
    longer = f"{prefix} on the mat and looked out of the window at the rain"
    short = openai_client.embeddings.create(model=target.model, input=prefix)
    long = openai_client.embeddings.create(model=target.model, input=longer)
    assert long.usage.prompt_tokens >= short.usage.prompt_tokens


# --- limits -------------------------------------------------------------------------------


def test_batch_of_2048_is_accepted(openai_client: openai.OpenAI, target: Target) -> None:
    """A batch of 2048 items, the API's maximum, is answered with 2048 embeddings."""
    response = openai_client.embeddings.create(model=target.model, input=["a"] * MAX_BATCH)
    assert len(response.data) == MAX_BATCH


def test_batch_of_2049_is_400(openai_client: openai.OpenAI, target: Target) -> None:
    """A batch of 2049 items, one over the maximum, is a 400 in the error envelope."""
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.embeddings.create(model=target.model, input=["a"] * (MAX_BATCH + 1))
    _assert_error_envelope(caught.value.response, 400)


# --- models -------------------------------------------------------------------------------


def test_models_list_shape(http: httpx.Client) -> None:
    """GET /v1/models is {"object": "list", "data": [{id, object "model", created, owned_by}]}."""
    response = http.get("/v1/models")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert isinstance(body["data"], list)
    assert body["data"], "the list names at least one model"
    for model in body["data"]:
        assert isinstance(model["id"], str)
        assert model["object"] == "model"
        assert _is_int(model["created"])
        assert isinstance(model["owned_by"], str)


def test_models_list_parses_with_sdk(openai_client: openai.OpenAI) -> None:
    """The SDK's models.list() parses the answer and yields at least one model id."""
    ids = [model.id for model in openai_client.models.list()]
    assert ids
    assert all(isinstance(i, str) and i for i in ids)


def test_model_is_listed_or_resolves(openai_client: openai.OpenAI, target: Target) -> None:
    """The model under test is in GET /v1/models, or GET /v1/models/{model} resolves it."""
    ids = {model.id for model in openai_client.models.list()}
    if target.model in ids:
        return
    model = openai_client.models.retrieve(target.model)
    assert isinstance(model.id, str)
    assert model.id
    assert model.object == "model"


# --- errors -------------------------------------------------------------------------------


def test_unknown_model_is_404(openai_client: openai.OpenAI) -> None:
    """An unknown model is a 404 (the SDK's NotFoundError) with the four-key error envelope."""
    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.embeddings.create(model="no-such-model-for-conformance", input="hello")
    _assert_error_envelope(caught.value.response, 404)


def test_missing_model_is_400(http: httpx.Client) -> None:
    """A body without `model` is a 400 with the four-key error envelope."""
    response = http.post("/v1/embeddings", json={"input": "hello"})
    _assert_error_envelope(response, 400)


def test_input_of_wrong_type_is_400(http: httpx.Client, target: Target) -> None:
    """`input` that is a number, not a string or array, is a 400 with the error envelope."""
    response = http.post("/v1/embeddings", json={"model": target.model, "input": 5})
    _assert_error_envelope(response, 400)


def test_model_of_wrong_type_is_400(http: httpx.Client) -> None:
    """`model` that is a number, not a string, is a 400 with the error envelope."""
    response = http.post("/v1/embeddings", json={"model": 5, "input": "hello"})
    _assert_error_envelope(response, 400)


def test_null_input_is_400(http: httpx.Client, target: Target) -> None:
    """`input` null is a 400 with the error envelope."""
    response = http.post("/v1/embeddings", json={"model": target.model, "input": None})
    _assert_error_envelope(response, 400)


def test_empty_input_list_is_400(openai_client: openai.OpenAI, target: Target) -> None:
    """input [] is a 400, not an empty `data` (the SDK raises on an empty base64 answer)."""
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.embeddings.create(model=target.model, input=[])
    _assert_error_envelope(caught.value.response, 400)


def test_malformed_json_is_400(http: httpx.Client, target: Target) -> None:
    """A body that is not valid JSON is a 400 with the error envelope."""
    response = http.post(
        "/v1/embeddings",
        content=f'{{"model": "{target.model}", "input": ',
        headers={"content-type": "application/json"},
    )
    _assert_error_envelope(response, 400)


def test_invalid_encoding_format_is_400(http: httpx.Client, target: Target) -> None:
    """An encoding_format other than "float" or "base64" is a 400 with the error envelope."""
    response = http.post(
        "/v1/embeddings",
        json={"model": target.model, "input": "hello", "encoding_format": "int8"},
    )
    _assert_error_envelope(response, 400)
