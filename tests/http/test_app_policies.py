"""Server-wide policies: truncation mode, body size limit, and what a bug looks like."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import structlog
from litestar import Litestar

from adapters.bootstrap import Settings, build_app
from adapters.http.app import create_app
from adapters.stores.inventory import Inventory
from application.batching import BatchSettings
from application.catalogue import CATALOGUE, Catalogue
from application.embedding import EmbeddingService
from application.front_door import FrontDoor
from application.lifecycle import ModelRegistry
from application.model_admin import ModelAdmin
from domain.ops import Array, IdArray
from domain.requests import Truncation
from tests.fakes import FakeDownloads, FakeEncoder, FakeEngine, FakeStore, fake_tokenizer_loader
from tests.http.conftest import BASE, HOST, MAX_BODY

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


class _CrashingEncoder:
    dimensions = 4
    images = None

    def embed(self, ids: IdArray, mask: IdArray) -> Array:
        msg = "a bug in an engine"
        raise RuntimeError(msg)


@pytest.fixture(scope="module")
def strict_app(tmp_path_factory: pytest.TempPathFactory) -> Litestar:
    home = tmp_path_factory.mktemp("strict")
    settings = Settings(home=home, offline=True, truncate=Truncation.REFUSE, log_format="json")
    return build_app(settings)


@pytest.fixture
def crashing_app(tmp_path: Path) -> Litestar:
    catalogue = Catalogue(CATALOGUE)
    store = FakeStore({MINILM: tmp_path})
    engine = FakeEngine()
    engine.encoder = _CrashingEncoder()  # type: ignore[assignment]
    registry = ModelRegistry(store, engine, fake_tokenizer_loader, ThreadPoolExecutor(1))
    return create_app(
        _door(catalogue, registry, store, tmp_path),
        version="0",
        truncate=Truncation.CUT,
        max_body_bytes=MAX_BODY,
        host=HOST,
    )


def _door(catalogue: Catalogue, registry: ModelRegistry, store: FakeStore, home: Path) -> FrontDoor:
    admin = ModelAdmin(catalogue, FakeDownloads(home / "hub"), [], registry)
    service = EmbeddingService(catalogue, registry, None)
    return FrontDoor(catalogue, registry, service, admin, Inventory(store))


async def _client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        yield c


@pytest.fixture
async def strict(strict_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(strict_app):
        yield client


@pytest.fixture
async def crashing(crashing_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(crashing_app):
        yield client


async def test_no_truncate_refuses_over_long_v1_inputs(strict: httpx.AsyncClient) -> None:
    """--no-truncate: an input past the context is a 400 naming the limit, as OpenAI answers."""
    body = {"model": "all-MiniLM-L6-v2", "input": ["short", "word " * 300]}
    response = await strict.post("/v1/embeddings", json=body)
    assert response.status_code == 400
    assert "maximum context length is 256 tokens" in response.json()["error"]["message"]
    ok = await strict.post("/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": "short"})
    assert ok.status_code == 200


async def test_a_huge_input_refused_unread_says_more_than_what_was_read(
    strict: httpx.AsyncClient,
) -> None:
    """A refusal reads an input only so far: the 400 gives a lower bound, never a wrong count."""
    body = {"model": "all-MiniLM-L6-v2", "input": "word " * 100_000}
    response = await strict.post("/v1/embeddings", json=body)
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "however input 0 has more than " in message
    assert "100002 tokens" not in message


@pytest.mark.parametrize(
    ("path", "envelope"), [("/v1/embeddings", "openai"), ("/api/embed", "ollama")]
)
async def test_a_body_past_the_limit_is_413_in_the_dialect(
    strict: httpx.AsyncClient, path: str, envelope: str
) -> None:
    """A 17 MiB body is refused before it is read whole, with a 4xx in the caller's envelope."""
    huge = b'{"model":"all-minilm","input":"' + b"a" * (17 * 1024 * 1024) + b'"}'
    response = await strict.post(path, content=huge, headers={"content-type": "application/json"})
    assert response.status_code == 413
    error = response.json()["error"]
    assert isinstance(error["message"] if envelope == "openai" else error, str)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/embeddings", {"model": "all-minilm", "input": "x"}),
        ("/api/embed", {"model": "all-minilm", "input": "x"}),
    ],
)
async def test_a_bug_is_a_logged_500_in_the_dialect(
    crashing: httpx.AsyncClient, path: str, body: object
) -> None:
    """An engine's exception becomes a 500 in the caller's envelope, logged with its traceback."""
    with structlog.testing.capture_logs() as logs:
        response = await crashing.post(path, json=body)
    assert response.status_code == 500
    error = response.json()["error"]
    assert "internal error" in (error["message"] if path.startswith("/v1") else error)
    assert [entry["event"] for entry in logs if entry["log_level"] == "error"] == [
        "request_crashed"
    ]


@pytest.mark.parametrize("path", ["/v1/embeddings", "/api/embed"])
@pytest.mark.parametrize("depth", [1_000, 100_000])
async def test_deeply_nested_json_is_a_400(
    strict: httpx.AsyncClient, path: str, depth: int
) -> None:
    """JSON nested past the decoder's recursion limit is a bad body, not a crash."""
    body = '{"model":"all-minilm","input":' + "[" * depth + "]" * depth + "}"
    response = await strict.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "nested too deeply" in response.text


@pytest.mark.parametrize("path", ["/v1/embeddings", "/api/embed"])
async def test_a_string_that_is_not_utf8_is_a_400(strict: httpx.AsyncClient, path: str) -> None:
    """Invalid UTF-8 inside a JSON string is a bad body, not a crash."""
    body = b'{"model": "\xff", "input": "x"}'
    response = await strict.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert "not valid UTF-8" in response.text


def test_crash_logs_carry_no_frame_locals(capsys: pytest.CaptureFixture[str]) -> None:
    """A logged traceback never includes local variables (they would hold the user's text)."""
    from adapters.observability import configure_logging

    configure_logging("json")
    secret = "the user's private sentence"

    def fail(text: str) -> None:
        raise ValueError(text[:3])

    try:
        fail(secret)
    except ValueError as exc:
        structlog.get_logger("t").error("boom", exc_info=exc)
    err = capsys.readouterr().err
    assert "boom" in err
    assert secret not in err


@pytest.mark.parametrize(
    ("path", "envelope"), [("/v1/embeddings", "openai"), ("/api/embed", "ollama")]
)
async def test_a_full_queue_is_a_503_with_retry_after_in_the_dialect(
    tmp_path: Path, path: str, envelope: str
) -> None:
    """Past the queue limit a request is refused at once: 503 and Retry-After, which clients
    honour before retrying, in the caller's envelope; the queued work still completes."""
    gate = threading.Event()
    catalogue = Catalogue(CATALOGUE)
    store = FakeStore({MINILM: tmp_path})
    engine = FakeEngine()
    engine.encoder = FakeEncoder(gate)  # says when a forward pass starts, holds it at the gate
    registry = ModelRegistry(
        store,
        engine,
        fake_tokenizer_loader,
        ThreadPoolExecutor(1),
        batching=BatchSettings(queue_limit=2),
    )
    app = create_app(
        _door(catalogue, registry, store, tmp_path),
        version="0",
        truncate=Truncation.CUT,
        max_body_bytes=MAX_BODY,
        host=HOST,
    )
    async for client in _client(app):
        body = {"model": "all-minilm", "input": ["a", "b"]}
        first = asyncio.create_task(client.post(path, json=body))
        # the first forward pass is running
        assert await asyncio.to_thread(engine.encoder.entered.wait, 10)
        refused = await client.post(path, json=body)
        gate.set()
        assert (await first).status_code == 200
    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) >= 1
    error = refused.json()["error"]
    message = error["message"] if envelope == "openai" else error
    assert "the server is busy: 2 inputs wait" in message
