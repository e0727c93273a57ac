from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import ollama
import pytest
from litestar import Litestar

from adapters.http.app import create_app
from adapters.stores.inventory import Inventory
from application.catalogue import CATALOGUE, Catalogue
from application.embedding import EmbeddingService
from application.front_door import FrontDoor
from application.lifecycle import ModelRegistry
from application.model_admin import ModelAdmin
from domain.requests import Truncation
from tests.fakes import FakeDownloads, FakeEncoder, FakeEngine, FakeStore, fake_tokenizer_loader
from tests.http.conftest import BASE, HOST, MAX_BODY

MODEL = "all-minilm"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
_FOREVER = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)  # how /api/ps writes "never"
_ISO_ROUNDING = 1e-3  # seconds: a timestamp written to the microsecond, with float error


async def test_embed_returns_unit_vectors_and_real_metrics(oll: ollama.AsyncClient) -> None:
    """embeddings are L2-normalised, model is echoed, and the metrics are real figures."""
    result = await oll.embed(model=MODEL, input=["first text", "second, longer text here"])
    vectors = np.asarray(result.embeddings)
    assert vectors.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    assert result.model == MODEL
    assert result.prompt_eval_count is not None
    assert result.prompt_eval_count > 4
    assert result.total_duration is not None
    assert result.total_duration > 0


async def test_embed_of_a_single_string(oll: ollama.AsyncClient) -> None:
    """input may be one string; the answer is still a list of one vector."""
    result = await oll.embed(model=MODEL, input="one")
    assert len(result.embeddings) == 1


async def test_embed_of_nothing_preloads_and_answers_an_empty_list(
    http: httpx.AsyncClient,
) -> None:
    """`input: ""` or absent loads the model and returns no embeddings, no token count."""
    for body in ({"model": MODEL, "input": ""}, {"model": MODEL}):
        answer = (await http.post("/api/embed", json=body)).json()
        assert answer["embeddings"] == []
        assert answer["model"] == MODEL
        assert "prompt_eval_count" not in answer


async def test_a_list_may_hold_the_empty_string(oll: ollama.AsyncClient) -> None:
    """[""] is one input, embedded."""
    assert len((await oll.embed(model=MODEL, input=[""])).embeddings) == 1


async def test_truncate_false_refuses_an_over_long_input(oll: ollama.AsyncClient) -> None:
    """Ollama's exact 400 text; with truncate left at its default the same input embeds."""
    long_text = "word " * 400
    with pytest.raises(ollama.ResponseError) as caught:
        await oll.embed(model=MODEL, input=long_text, truncate=False)
    assert caught.value.status_code == 400
    assert caught.value.error == "the input length exceeds the context length"
    assert len((await oll.embed(model=MODEL, input=long_text)).embeddings) == 1


async def test_dimensions_cut_renormalise_and_out_of_range_is_ignored(
    oll: ollama.AsyncClient,
) -> None:
    """0 < d < len cuts and re-normalises; other values leave the vector whole, as Ollama does."""
    full = np.asarray((await oll.embed(model=MODEL, input="x")).embeddings[0])
    cut = np.asarray((await oll.embed(model=MODEL, input="x", dimensions=32)).embeddings[0])
    np.testing.assert_allclose(cut, full[:32] / np.linalg.norm(full[:32]), atol=1e-6)
    whole = (await oll.embed(model=MODEL, input="x", dimensions=4096)).embeddings[0]
    assert len(whole) == 384


async def test_legacy_embeddings_endpoint(oll: ollama.AsyncClient) -> None:
    """/api/embeddings answers {"embedding": [...]}; an empty prompt answers an empty list."""
    vector = (await oll.embeddings(model=MODEL, prompt="hello")).embedding
    assert len(vector) == 384
    assert list((await oll.embeddings(model=MODEL, prompt="")).embedding) == []


async def test_list_shows_the_installed_default_model(
    oll: ollama.AsyncClient, http: httpx.AsyncClient
) -> None:
    """/api/tags lists the catalogue tag-qualified, with both name and model; what is on disk
    has its size."""
    listed = [m.model for m in (await oll.list()).models]
    assert {"all-MiniLM-L6-v2:latest", "all-minilm:latest"} <= set(listed)
    raw = (await http.get("/api/tags")).json()["models"][0]
    assert raw["name"] == raw["model"] == "all-MiniLM-L6-v2:latest"
    assert raw["size"] > 0
    assert raw["details"]["family"] == "bert"
    assert raw["details"]["embedding_length"] == 384
    datetime.fromisoformat(raw["modified_at"])


async def test_list_shows_every_catalogue_model_with_family_and_dimensions(
    http: httpx.AsyncClient,
) -> None:
    """Not yet downloaded models are listed too (size 0): the first request fetches them."""
    listed = {m["name"]: m for m in (await http.get("/api/tags")).json()["models"]}
    assert len({name for name in listed if name != "all-minilm:latest"}) == len(CATALOGUE)
    clip = listed["clip-vit-large-patch14:latest"]
    assert (clip["size"], clip["digest"]) == (0, "")
    assert clip["details"]["family"] == "clip"
    assert clip["details"]["embedding_length"] == 768
    assert clip["details"]["inputs"] == ["text", "image"]
    assert listed["M2V_base_output:static"]["details"]["family"] == "static"
    assert listed["glove-twitter-200:latest"]["details"]["context_length"] is None


async def test_show_has_model_info_and_the_embedding_capability(oll: ollama.AsyncClient) -> None:
    """ollama-python requires model_info; clients look for capabilities ["embedding"]."""
    shown = await oll.show(MODEL)
    assert shown.modelinfo is not None
    assert shown.modelinfo["bert.embedding_length"] == 384
    assert shown.capabilities == ["embedding"]


async def _shown_expiry(http: httpx.AsyncClient) -> datetime | None:
    """The expiry /api/ps shows for the one loaded model, parsed; None when none is loaded."""
    running = (await http.get("/api/ps")).json()["models"]
    return datetime.fromisoformat(running[0]["expires_at"]) if running else None


def _moment(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


async def test_ps_lists_loaded_models_with_a_parseable_expiry(
    oll: ollama.AsyncClient, http: httpx.AsyncClient
) -> None:
    """After an embed call the model shows in /api/ps; expires_at parses as ISO-8601, with its
    offset, and is the moment the keep-alive ends."""
    before = time.time()
    await oll.embed(model=MODEL, input="x", keep_alive="10m")
    after = time.time()
    running = (await oll.ps()).models
    assert [m.model for m in running] == ["all-MiniLM-L6-v2:latest"]
    assert running[0].expires_at is not None
    expires = await _shown_expiry(http)
    assert expires is not None
    assert expires.utcoffset() is not None
    assert _moment(before + 600 - _ISO_ROUNDING) <= expires <= _moment(after + 600 + _ISO_ROUNDING)


@pytest.mark.parametrize(
    ("keep_alive", "seconds"),
    [("5m", 300), ("1h30m", 5400), (10, 10), (2.5, 2.5), (-1, None), ("-1m", None), ("0", 0)],
)
async def test_keep_alive_accepts_go_durations_and_seconds(
    http: httpx.AsyncClient, keep_alive: object, seconds: float | None
) -> None:
    """Numbers are seconds, strings are Go durations, negatives mean forever: /api/ps shows the
    expiry each one asks for, and 0 unloads the model once it has answered."""
    before = time.time()
    body = {"model": MODEL, "input": "x", "keep_alive": keep_alive}
    assert (await http.post("/api/embed", json=body)).status_code == 200
    after = time.time()
    expires = await _shown_expiry(http)
    if seconds is None:
        assert expires == _FOREVER
    elif seconds == 0 or (expires is None and time.time() >= before + seconds):
        assert expires is None  # unloaded (a short keep-alive may end before /api/ps answers)
    else:
        assert expires is not None
        window = (before + seconds - _ISO_ROUNDING, after + seconds + _ISO_ROUNDING)
        assert _moment(window[0]) <= expires <= _moment(window[1])


async def test_version_is_dotted_integers(http: httpx.AsyncClient) -> None:
    """Open WebUI int()-parses each part of the version."""
    version = (await http.get("/api/version")).json()["version"]
    assert all(part.isdigit() for part in version.split("."))


async def test_root_says_ollama_is_running(http: httpx.AsyncClient) -> None:
    """GET and HEAD / are the liveness probe clients use."""
    response = await http.get("/")
    assert (response.status_code, response.text) == (200, "Ollama is running")
    assert (await http.head("/")).status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        (
            "/api/embed",
            {"model": "nope", "input": "x"},
            404,
            'model "nope" not found, try pulling it first',
        ),
        ("/api/embed", {"input": "x"}, 404, "model '' not found"),
        ("/api/embed", {"model": MODEL, "input": [1, 2]}, 400, "invalid input type"),
        ("/api/embed", {"model": MODEL, "input": 5}, 400, "invalid input type"),
        (
            "/api/embed",
            {"model": MODEL, "input": "x", "keep_alive": "soon"},
            400,
            'time: invalid duration "soon"',
        ),
        ("/api/embeddings", {"prompt": "x"}, 400, "model is required"),
        (
            "/api/embeddings",
            {"model": "nope", "prompt": "x"},
            404,
            'model "nope" not found, try pulling it first',
        ),
        ("/api/show", {}, 400, "model is required"),
        ("/api/show", {"model": "nope"}, 404, "model 'nope' not found"),
    ],
)
async def test_errors_carry_ollamas_status_and_text(
    http: httpx.AsyncClient, path: str, body: object, status: int, error: str
) -> None:
    """Statuses and messages mirror Ollama's, in {"error": "..."} with application/json."""
    response = await http.post(path, json=body)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"error": error}


async def test_missing_body_is_400(http: httpx.AsyncClient) -> None:
    """An empty POST body reads as Ollama's `missing request body`."""
    response = await http.post("/api/embed", content=b"")
    assert (response.status_code, response.json()) == (400, {"error": "missing request body"})


@pytest.mark.parametrize("raw", [b"{", b"\xff", b"[1]", b"nul"])
async def test_malformed_json_is_400(http: httpx.AsyncClient, raw: bytes) -> None:
    """Bodies that are not a JSON object are refused with a 400 and an error string."""
    response = await http.post("/api/embed", content=raw)
    assert response.status_code == 400
    assert isinstance(response.json()["error"], str)


async def test_langchain_options_and_unknown_fields_are_ignored(http: httpx.AsyncClient) -> None:
    """LangChain sends options full of nulls; Open WebUI may add a prefix field."""
    body = {
        "model": MODEL,
        "input": ["x"],
        "options": {"mirostat": None, "num_ctx": None, "temperature": None},
        "keep_alive": 300,
        "truncate": True,
        "rag_prefix": "passage: ",
    }
    assert (await http.post("/api/embed", json=body)).status_code == 200


async def test_route_errors_are_json(http: httpx.AsyncClient) -> None:
    """Unknown routes and wrong methods answer JSON, which Open WebUI calls r.json() on."""
    assert (await http.get("/api/nothing")).json() == {"error": "404 page not found"}
    wrong = await http.get("/api/embed")
    assert wrong.status_code == 405
    assert isinstance(wrong.json()["error"], str)


def _app_on(encoder: FakeEncoder, folder: Path) -> Litestar:
    """all-minilm served by `encoder`, through the real use cases and HTTP app."""
    catalogue = Catalogue(CATALOGUE)
    store = FakeStore({MINILM: folder})
    engine = FakeEngine()
    engine.encoder = encoder
    registry = ModelRegistry(store, engine, fake_tokenizer_loader, ThreadPoolExecutor(1))
    admin = ModelAdmin(catalogue, FakeDownloads(folder / "hub"), [], registry)
    service = EmbeddingService(catalogue, registry, None)
    door = FrontDoor(catalogue, registry, service, admin, Inventory(store))
    return create_app(
        door, version="0", truncate=Truncation.CUT, max_body_bytes=MAX_BODY, host=HOST
    )


async def test_version_answers_while_a_big_batch_is_embedded(tmp_path: Path) -> None:
    """Inference runs off the event loop: /api/version returns before the batch finishes."""
    gate = threading.Event()
    encoder = FakeEncoder(gate)
    transport = httpx.ASGITransport(app=_app_on(encoder, tmp_path))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        texts = [f"text number {i} " + "with many words " * 40 for i in range(48)]
        body = {"model": MODEL, "input": texts}
        big = asyncio.create_task(client.post("/api/embed", json=body))
        assert await asyncio.to_thread(encoder.entered.wait, 10)  # its pass is held at the gate
        version = await asyncio.wait_for(client.get("/api/version"), 10)
        assert version.status_code == 200
        assert not big.done()  # it cannot be: its forward pass waits for the gate
        gate.set()
        assert (await big).status_code == 200


async def test_a_keep_alive_past_the_calendar_reads_as_forever(http: httpx.AsyncClient) -> None:
    """keep_alive=1e16 seconds is accepted, and /api/ps shows it as the far-future expiry."""
    body = {"model": MODEL, "input": "x", "keep_alive": 1e16}
    assert (await http.post("/api/embed", json=body)).status_code == 200
    running = (await http.get("/api/ps")).json()["models"]
    assert running[0]["expires_at"].startswith("9999-12-31")
