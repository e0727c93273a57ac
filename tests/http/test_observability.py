"""Metrics at /metrics, liveness at /health, readiness at /ready, and models preloaded at start."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from adapters.bootstrap import Settings, build_app
from adapters.cli import build_parser
from adapters.cli.options import settings_from
from adapters.http.app import create_app
from adapters.http.metrics import Metrics
from adapters.stores.inventory import Inventory
from application.catalogue import CATALOGUE, DEFAULT_MODEL, Catalogue
from application.embedding import EmbeddingService
from application.front_door import FrontDoor
from application.lifecycle import ModelRegistry
from application.model_admin import ModelAdmin
from domain.requests import Truncation
from tests.fakes import FakeDownloads, FakeEngine, FakeStore, fake_tokenizer_loader
from tests.http.conftest import BASE, HOST, MAX_BODY

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_NAME = "all-MiniLM-L6-v2:latest"
GTE = "thenlper/gte-base"


@pytest.fixture
def numpy_app(tmp_path: Path) -> Litestar:
    """The real composition root on the numpy engine; a fresh app, so its metrics start at 0."""
    return build_app(Settings(home=tmp_path, offline=True, engine="numpy", log_format="json"))


@pytest.fixture
async def client(numpy_app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=numpy_app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as c:
        yield c


def _fake_app(tmp_path: Path, preload: tuple[str, ...] = ()) -> Litestar:
    """Fake models under catalogue names, preloaded as the composition root would."""
    catalogue = Catalogue(CATALOGUE)
    store = FakeStore({MINILM: tmp_path, GTE: tmp_path})
    metrics = Metrics()
    registry = ModelRegistry(
        store,
        FakeEngine(),
        fake_tokenizer_loader,
        ThreadPoolExecutor(1),
        on_pass=metrics.observe_pass,
    )
    specs = [spec for name in preload if (spec := catalogue.resolve(name)) is not None]
    door = FrontDoor(
        catalogue,
        registry,
        EmbeddingService(catalogue, registry, None),
        ModelAdmin(catalogue, FakeDownloads(tmp_path / "hub"), [], registry),
        Inventory(store),
        ready_model=specs[0] if specs else catalogue.resolve(DEFAULT_MODEL),
        preload=specs,
    )
    return create_app(
        door,
        version="0",
        metrics=metrics,
        truncate=Truncation.CUT,
        max_body_bytes=MAX_BODY,
        host=HOST,
    )


async def _sample(client: httpx.AsyncClient, name: str, **labels: str) -> float:
    """One sample's value from /metrics; 0 when the series has not appeared yet."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


async def _until_ready(client: httpx.AsyncClient | AsyncTestClient[Litestar]) -> int:
    """/ready's status once it turns 200, or its last status after a generous wait."""
    status = 0
    for _ in range(600):
        status = (await client.get("/ready")).status_code
        if status == 200:
            break
        await asyncio.sleep(0.05)
    return status


async def test_metrics_name_every_metric(client: httpx.AsyncClient) -> None:
    """/metrics answers in Prometheus text format and names every metric we publish."""
    await client.post("/api/embed", json={"model": "all-minilm", "input": "x"})
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {
        "embedserve_requests",
        "embedserve_request_duration_seconds",
        "embedserve_prompt_tokens",
        "embedserve_batch_size_rows",
        "embedserve_queue_depth",
        "embedserve_models_loaded",
    } <= names


@pytest.mark.parametrize(
    ("path", "dialect"), [("/v1/embeddings", "openai"), ("/api/embed", "ollama")]
)
async def test_the_request_counter_counts_by_dialect_model_and_status(
    client: httpx.AsyncClient, path: str, dialect: str
) -> None:
    """An embed request moves its own series (alias resolved to the catalogue name) by one."""
    labels = {"dialect": dialect, "endpoint": path, "model": MINILM_NAME, "status": "200"}
    before = await _sample(client, "embedserve_requests_total", **labels)
    response = await client.post(path, json={"model": "all-minilm", "input": ["a", "b c"]})
    assert response.status_code == 200
    assert await _sample(client, "embedserve_requests_total", **labels) == before + 1
    latency = {"dialect": dialect, "endpoint": path}
    assert await _sample(client, "embedserve_request_duration_seconds_count", **latency) == 1
    assert await _sample(client, "embedserve_prompt_tokens_total", model=MINILM_NAME) > 0


async def test_unknown_models_share_one_label(client: httpx.AsyncClient) -> None:
    """A made-up model name is counted as `unknown`, so clients cannot grow the label set."""
    response = await client.post("/api/embed", json={"model": "no-such-model", "input": "x"})
    assert response.status_code == 404
    labels = {"dialect": "ollama", "endpoint": "/api/embed", "model": "unknown", "status": "404"}
    assert await _sample(client, "embedserve_requests_total", **labels) == 1


async def test_every_forward_pass_is_observed(client: httpx.AsyncClient) -> None:
    """The batch-size histogram counts forward passes and sums the rows they ran."""
    assert await _sample(client, "embedserve_batch_size_rows_count") == 0
    inputs = ["one", "two words", "three words here"]
    response = await client.post("/api/embed", json={"model": "all-minilm", "input": inputs})
    assert response.status_code == 200
    assert await _sample(client, "embedserve_batch_size_rows_count") >= 1
    assert await _sample(client, "embedserve_batch_size_rows_sum") == len(inputs)


async def test_the_loaded_models_gauge_follows_the_registry(client: httpx.AsyncClient) -> None:
    """No model is loaded at first; after a request the gauge says one, with its queue empty."""
    assert await _sample(client, "embedserve_models_loaded") == 0
    await client.post("/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": "x"})
    assert await _sample(client, "embedserve_models_loaded") == 1
    queue = await client.get("/metrics")
    assert f'embedserve_queue_depth{{model="{MINILM_NAME}"}} 0.0' in queue.text


async def test_two_apps_keep_their_own_metrics(tmp_path: Path) -> None:
    """Each app owns its registry: requests to one never show in the other's /metrics."""
    first, second = _fake_app(tmp_path / "a"), _fake_app(tmp_path / "b")
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=first), base_url=BASE) as a,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url=BASE) as b,
    ):
        assert (await a.post("/api/embed", json={"model": "all-minilm", "input": "x"})).is_success
        labels = {"dialect": "ollama", "endpoint": "/api/embed", "model": MINILM_NAME}
        assert await _sample(a, "embedserve_requests_total", **labels, status="200") == 1
        assert await _sample(b, "embedserve_requests_total", **labels, status="200") == 0


async def test_health_is_ok_while_the_process_serves(client: httpx.AsyncClient) -> None:
    """/health answers 200 before any model is loaded: it says the process lives, no more."""
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_waits_for_the_default_model(client: httpx.AsyncClient) -> None:
    """/ready is 503 "loading" until all-MiniLM-L6-v2 is loaded, and 200 from then on."""
    waiting = await client.get("/ready")
    assert waiting.status_code == 503
    assert waiting.json() == {"status": "loading"}
    await client.post("/api/embed", json={"model": "all-minilm", "input": "x"})
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok"}
    # keep-alive unloading the model later does not make the server unready: it loads again
    await client.post("/api/embed", json={"model": "all-minilm", "keep_alive": 0})
    listed = (await client.get("/api/ps")).json()["models"]
    assert not [m for m in listed if m["name"].startswith("all-MiniLM-L6-v2")]
    assert (await client.get("/ready")).status_code == 200


async def test_preloaded_models_load_at_start_up(tmp_path: Path) -> None:
    """With --preload, the first named model is what /ready waits for, and start-up loads it
    without any request asking."""
    app = _fake_app(tmp_path, preload=("gte-base",))
    async with AsyncTestClient(app=app, base_url=BASE) as client:  # runs the start-up hooks
        assert await _until_ready(client) == 200
        metrics = (await client.get("/metrics")).text
        assert "embedserve_models_loaded 1.0" in metrics
        assert "gte-base" in metrics


async def test_a_preloaded_model_outlives_a_zero_keep_alive(tmp_path: Path) -> None:
    """A request's keep_alive=0 unloads an ordinary model, never a preloaded one."""
    app = _fake_app(tmp_path, preload=("all-MiniLM-L6-v2",))
    async with AsyncTestClient(app=app, base_url=BASE) as client:
        assert await _until_ready(client) == 200
        body = {"model": "all-minilm", "input": "x", "keep_alive": 0}
        assert (await client.post("/api/embed", json=body)).status_code == 200
        assert (await client.get("/ready")).status_code == 200


def test_preload_is_read_from_the_command_line() -> None:
    """--preload takes one or more model names."""
    args = build_parser().parse_args(["serve", "--preload", "all-minilm", "gte-base"])
    assert settings_from(args, {}).preload == ("all-minilm", "gte-base")


def test_preload_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """EMBEDSERVE_PRELOAD is a comma-separated list; without it nothing is preloaded."""
    assert settings_from(build_parser().parse_args(["serve"]), {}).preload == ()
    monkeypatch.setenv("EMBEDSERVE_PRELOAD", "all-minilm, gte-base")
    assert settings_from(build_parser().parse_args(["serve"])).preload == ("all-minilm", "gte-base")


def test_an_unknown_preload_model_stops_start_up(tmp_path: Path) -> None:
    """A name the catalogue does not know fails at once rather than leaving /ready at 503."""
    with pytest.raises(ValueError, match="no-such-model"):
        build_app(Settings(home=tmp_path, offline=True, engine="numpy", preload=("no-such-model",)))
