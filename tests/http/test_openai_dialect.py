from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
import msgspec
import numpy as np
import openai
import pytest

from adapters.http.large_bodies import LARGE_BODY_BYTES
from application.catalogue import CATALOGUE
from tests.tolerances import BATCH_INVARIANCE

MODEL = "all-MiniLM-L6-v2"


async def test_default_base64_and_float_answers_agree_bit_for_bit(oai: openai.AsyncOpenAI) -> None:
    """The SDK's default path (base64) decodes to exactly the floats of encoding_format=float."""
    texts = ["The cat sits.", "Ein Hund bellt.", "猫が座る"]
    b64 = await oai.embeddings.create(model=MODEL, input=texts)
    flt = await oai.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    assert [d.embedding for d in b64.data] == [d.embedding for d in flt.data]
    assert len(b64.data[0].embedding) == 384


async def test_base64_is_little_endian_float32(http: httpx.AsyncClient) -> None:
    """On the wire, base64 is the float32 vector in little-endian byte order."""
    body = {"model": MODEL, "input": "x"}
    floats = (await http.post("/v1/embeddings", json=body)).json()["data"][0]["embedding"]
    raw = (await http.post("/v1/embeddings", json=body | {"encoding_format": "base64"})).json()
    import base64

    decoded = np.frombuffer(base64.b64decode(raw["data"][0]["embedding"]), dtype="<f4")
    assert decoded.tolist() == np.asarray(floats, dtype=np.float32).tolist()


async def test_response_has_every_openai_field_in_input_order(http: httpx.AsyncClient) -> None:
    """object, data[i].object/index, model (as requested) and usage are all there; order kept."""
    texts = ["short", "a much longer sentence than the first one, to be sorted first", "mid one"]
    alone = [
        (await http.post("/v1/embeddings", json={"model": MODEL, "input": t})).json() for t in texts
    ]
    body = (await http.post("/v1/embeddings", json={"model": "all-minilm", "input": texts})).json()
    assert body["object"] == "list"
    assert body["model"] == "all-minilm"
    assert [d["index"] for d in body["data"]] == [0, 1, 2]
    assert {d["object"] for d in body["data"]} == {"embedding"}
    for one, d in zip(alone, body["data"], strict=True):
        np.testing.assert_allclose(
            one["data"][0]["embedding"], d["embedding"], atol=BATCH_INVARIANCE
        )
    usage = body["usage"]
    assert usage["prompt_tokens"] == usage["total_tokens"]
    assert usage["prompt_tokens"] == sum(a["usage"]["prompt_tokens"] for a in alone)


async def test_absent_encoding_format_answers_floats(http: httpx.AsyncClient) -> None:
    """Open WebUI and curl send no encoding_format and index the vector as a list."""
    body = (await http.post("/v1/embeddings", json={"model": MODEL, "input": ["x"]})).json()
    assert isinstance(body["data"][0]["embedding"], list)


async def test_cl100k_token_arrays_embed_as_their_text(oai: openai.AsyncOpenAI) -> None:
    """LangChain's default: cl100k_base ids are decoded and embedded like the text they spell."""
    import bpe_openai

    ids = bpe_openai.get_encoding("cl100k_base").encode("hello world")
    by_ids = await oai.embeddings.create(model=MODEL, input=[ids, ids])
    by_text = await oai.embeddings.create(model=MODEL, input="hello world")
    assert len(by_ids.data) == 2
    # a batch of two may round differently from a batch of one, within batch invariance
    np.testing.assert_allclose(
        by_ids.data[1].embedding, by_text.data[0].embedding, atol=BATCH_INVARIANCE
    )
    one_array = await oai.embeddings.create(model=MODEL, input=ids)
    assert one_array.data[0].embedding == by_text.data[0].embedding


async def test_a_small_request_is_answered_while_a_huge_token_id_body_is_decoded(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A body of millions of ids is decoded on a worker thread: its decoding is held open
    here until a small request has been answered, which the event loop could not do if the
    decoding ran on it."""
    decode = msgspec.json.decode
    entered, answered = threading.Event(), threading.Event()
    decoded_on: list[int] = []

    def held_open(body: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(body, bytes) and len(body) >= LARGE_BODY_BYTES:
            decoded_on.append(threading.get_ident())
            entered.set()
            answered.wait(timeout=10)  # on the loop's thread, this is a 10 s stall
        return decode(body, *args, **kwargs)

    monkeypatch.setattr(msgspec.json, "decode", held_open)
    # ~175,000 ids of cl100k's "hello" (6 bytes each with the comma): within the token budget
    ids = b",".join([b"15339"] * (LARGE_BODY_BYTES // 6 + 1))
    body = b'{"model": "%s", "input": [[%s]]}' % (MODEL.encode(), ids)
    huge = asyncio.create_task(http.post("/v1/embeddings", content=body))
    assert await asyncio.to_thread(entered.wait, 10)
    small = await http.post("/v1/embeddings", json={"model": MODEL, "input": "hi"})
    answered.set()
    assert small.status_code == 200
    assert (await huge).status_code == 200
    assert decoded_on
    assert decoded_on[0] != threading.get_ident()


async def test_dimensions_cut_and_renormalise(oai: openai.AsyncOpenAI) -> None:
    """dimensions=64 gives the first 64 components of the full vector, at unit length."""
    full = (await oai.embeddings.create(model=MODEL, input="matryoshka")).data[0].embedding
    cut = (await oai.embeddings.create(model=MODEL, input="matryoshka", dimensions=64)).data[0]
    expected = np.asarray(full[:64]) / np.linalg.norm(full[:64])
    np.testing.assert_allclose(cut.embedding, expected, atol=1e-6)


async def test_empty_string_embeds(oai: openai.AsyncOpenAI) -> None:
    """LangChain's empty-text path sends input="" and needs one vector back."""
    result = await oai.embeddings.create(model=MODEL, input="")
    assert len(result.data) == 1
    assert len(result.data[0].embedding) == 384


async def test_unknown_model_is_404_model_not_found(oai: openai.AsyncOpenAI) -> None:
    """The SDK raises NotFoundError carrying OpenAI's code and param."""
    with pytest.raises(openai.NotFoundError) as caught:
        await oai.embeddings.create(model="no-such-model", input="x")
    assert caught.value.code == "model_not_found"
    assert caught.value.param == "model"


_PNG_1X1 = (
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8Dw"
    "HwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


@pytest.mark.parametrize(
    ("item", "needle"),
    [
        (_PNG_1X1, "input 1 is an image, and model 'all-MiniLM-L6-v2:latest' embeds text only"),
        ("data:image/png;base64,@@@", "input 1: the image data URL's base64 payload is malformed"),
        ("data:image/png,raw", "input 1: image data URLs must be base64-encoded"),
    ],
)
async def test_an_image_for_a_text_model_is_a_clear_400(
    oai: openai.AsyncOpenAI, item: str, needle: str
) -> None:
    """Image data URLs are images for every model; a text-only model refuses them by index."""
    with pytest.raises(openai.BadRequestError) as caught:
        await oai.embeddings.create(model=MODEL, input=["a text", item])
    assert needle in caught.value.message
    assert caught.value.param == "input"


async def test_a_data_url_that_is_no_image_is_text(oai: openai.AsyncOpenAI) -> None:
    """Only image media types are images: any other data URL is embedded as the text it is."""
    result = await oai.embeddings.create(model=MODEL, input=["data:text/plain,hello"])
    assert len(result.data[0].embedding) == 384


@pytest.mark.parametrize(
    ("body", "param", "needle"),
    [
        ({"input": "x"}, None, "missing required field `model`"),
        ({"model": MODEL}, None, "missing required field `input`"),
        ({"model": 5, "input": "x"}, "model", "Expected `str`, got `int`"),
        ({"model": MODEL, "input": []}, "input", "must not be empty"),
        ({"model": MODEL, "input": [[]]}, "input", "length >= 1"),
        ({"model": MODEL, "input": ["a", 1]}, "input", "not a mix"),
        ({"model": MODEL, "input": [True]}, "input", "got `bool`"),
        ({"model": MODEL, "input": None}, "input", "got `null`"),
        ({"model": MODEL, "input": "x", "dimensions": 0}, "dimensions", ">= 1"),
        ({"model": MODEL, "input": "x", "dimensions": 385}, "dimensions", "between 1 and 384"),
        ({"model": MODEL, "input": "x", "encoding_format": "hex"}, "encoding_format", "enum"),
        ({"model": MODEL, "input": [10**30]}, "input", "not in the cl100k_base vocabulary"),
        ({"model": MODEL, "input": [-1]}, "input", "not in the cl100k_base vocabulary"),
        ({"model": MODEL, "input": ["x"] * 2049}, "input", "at most 2048"),
    ],
)
async def test_bad_bodies_are_400_in_openai_envelope(
    http: httpx.AsyncClient, body: object, param: str | None, needle: str
) -> None:
    """Every malformed request is a 400 with all four envelope keys and a useful message."""
    response = await http.post("/v1/embeddings", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert needle in error["message"]


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe", b"[]", b'"x"', b"null"])
async def test_unparseable_bodies_are_400_in_openai_envelope(
    http: httpx.AsyncClient, raw: bytes
) -> None:
    """Empty, truncated, non-UTF-8 or non-object bodies are refused, never a 500."""
    response = await http.post(
        "/v1/embeddings", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


async def test_unknown_fields_are_ignored(http: httpx.AsyncClient) -> None:
    """Clients send `user` and extras; they do not change the answer."""
    body = {"model": MODEL, "input": "x", "user": "u1", "something": {"nested": True}}
    assert (await http.post("/v1/embeddings", json=body)).status_code == 200


async def test_a_model_that_is_not_on_disk_offline_is_503_and_says_why(
    http: httpx.AsyncClient,
) -> None:
    """Offline, a catalogue model never downloaded cannot be served: the message says so."""
    response = await http.post("/v1/embeddings", json={"model": "gte-base", "input": "x"})
    assert response.status_code == 503
    assert "offline" in response.json()["error"]["message"]


async def test_models_list_the_catalogue(oai: openai.AsyncOpenAI) -> None:
    """/v1/models lists every catalogue entry in OpenAI's shape."""
    models = [m async for m in oai.models.list()]
    ids = {m.id for m in models}
    assert len(models) == len(CATALOGUE)
    assert {"all-MiniLM-L6-v2", "M2V_base_output", "M2V_base_output:static"} <= ids
    assert {m.object for m in models} == {"model"}


async def test_models_say_family_dimensions_and_input_kinds(http: httpx.AsyncClient) -> None:
    """Fields of our own beside OpenAI's: what a client needs to pick a model."""
    listed = {m["id"]: m for m in (await http.get("/v1/models")).json()["data"]}
    assert listed["clip-vit-base-patch16"] | {"created": 0} == {
        "id": "clip-vit-base-patch16",
        "object": "model",
        "created": 0,
        "owned_by": "jkrukowski",
        "family": "clip",
        "dimensions": 512,
        "max_tokens": 77,
        "inputs": ["text", "image"],
        "capabilities": ["embedding"],
        "engine": None,  # not loaded
    }
    assert listed["potion-base-8M"]["dimensions"] == 256
    assert listed["all-MiniLM-L6-v2"]["inputs"] == ["text"]


async def test_one_model_by_id_alias_or_repo_id(oai: openai.AsyncOpenAI) -> None:
    """/v1/models/{id} resolves like the embeddings endpoint does."""
    for name in ("all-minilm", "sentence-transformers/all-MiniLM-L6-v2"):
        model = await oai.models.retrieve(name)
        assert model.id == "all-MiniLM-L6-v2"
        assert model.owned_by == "sentence-transformers"
    with pytest.raises(openai.NotFoundError):
        await oai.models.retrieve("nope")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/v1/nothing", 404), ("GET", "/v1/embeddings", 405), ("DELETE", "/v1/models", 405)],
)
async def test_route_errors_use_the_openai_envelope(
    http: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    """Unknown routes and wrong methods under /v1 answer in OpenAI's envelope."""
    response = await http.request(method, path)
    assert response.status_code == status
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


async def test_a_loaded_model_says_which_engine_runs_it_and_how_it_compared(
    oai: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    """The engine and its parity gate's figures, in /v1/models/{id} and /api/show."""
    await oai.embeddings.create(model=MODEL, input="load it")
    engine = (await http.get(f"/v1/models/{MODEL}")).json()["engine"]
    shown = (await http.post("/api/show", json={"model": MODEL})).json()["model_info"]
    assert engine["name"] == shown["embedserve.engine"]
    assert engine["precision"] == shown["embedserve.precision"] == "fp32"
    if engine["name"] == "numpy":  # the reference itself: nothing to compare with
        assert engine["parity"] is None
    else:
        assert engine["parity"]["passed"] is True
        assert engine["parity"]["max_abs_diff"] <= 1e-5
        assert shown["embedserve.parity.min_cosine"] >= 1 - 1e-5
