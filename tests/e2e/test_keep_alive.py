"""Model lifecycle in the real server: keep-alive on schedule, the model limit, /api/ps.

One server for the module, started by its console script with a 1-second default keep-alive
(EMBEDSERVE_KEEP_ALIVE=1s), room for one model (EMBEDSERVE_MAX_LOADED_MODELS=1) and the numpy
engine (no engine probing at load). Two models: all-MiniLM-L6-v2 from its installed package, and
a small generated glove-twitter-25 from a hub stand-in on 127.0.0.1. Every test starts with
nothing loaded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.cli import build_parser
from adapters.cli.options import settings_from
from tests.hub_standin import HubStandIn
from tests.model_factory_word2vec import random_vectors, write_word2vec_text
from tests.server_process import running_server

pytestmark = [pytest.mark.slow]

MINILM = "all-MiniLM-L6-v2:latest"
GLOVE = "glove-twitter-25:latest"
_GLOVE_REPO = "jkrukowski/glove-twitter-25"
_WORDS = ["<user>", "<url>", "hello", "world", "models", "come", "and", "go"]
_UNLOAD_WAIT_S = 15.0  # how long a test waits for the server to unload by itself


@dataclass
class Server:
    url: str
    log: Path

    def events(self, name: str) -> list[dict[str, Any]]:
        lines = self.log.read_text(encoding="utf-8").splitlines()
        parsed = [json.loads(line) for line in lines if line.startswith("{")]
        return [line for line in parsed if line.get("event") == name]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("keep-alive")
    source = root / "glove-source"
    write_word2vec_text(
        source, _WORDS, random_vectors(len(_WORDS), 25, seed=25), "glove-twitter-25.txt"
    )
    files = {"glove-twitter-25.txt": (source / "glove-twitter-25.txt").read_bytes()}
    with HubStandIn({_GLOVE_REPO: files}) as hub:
        log = root / "server.log"
        env = {
            "HF_ENDPOINT": hub.url,
            "EMBEDSERVE_LOG_FORMAT": "json",
            "EMBEDSERVE_ENGINE": "numpy",
            "EMBEDSERVE_KEEP_ALIVE": "1s",
            "EMBEDSERVE_MAX_LOADED_MODELS": "1",
        }
        with running_server(root / "home", log, env) as url:
            yield Server(url, log)


@pytest.fixture
def web(server: Server) -> Iterator[httpx.Client]:
    """A client, with every model unloaded first (keep_alive 0 and no input, as Ollama's)."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for model in ("all-minilm", "glove-twitter-25"):
            client.post("/api/embed", json={"model": model, "keep_alive": 0}).raise_for_status()
        assert _running(client) == {}
        yield client


def _running(web: httpx.Client) -> dict[str, dict[str, Any]]:
    """/api/ps's models by name."""
    response = web.get("/api/ps")
    response.raise_for_status()
    return {m["name"]: m for m in response.json()["models"]}


def _embed(web: httpx.Client, model: str, keep_alive: float | str | None = None) -> None:
    body: dict[str, Any] = {"model": model, "input": ["hello world"]}
    if keep_alive is not None:
        body["keep_alive"] = keep_alive
    response = web.post("/api/embed", json=body)
    assert response.status_code == 200, response.text
    assert len(response.json()["embeddings"]) == 1


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _wait_for_unload(server: Server, model: str, after: int) -> dict[str, Any]:
    """The model_unloaded line for `model` past the first `after` such lines, read from the
    log without a single request to the server."""
    deadline = time.monotonic() + _UNLOAD_WAIT_S
    while time.monotonic() < deadline:
        lines = [e for e in server.events("model_unloaded")[after:] if e["model"] == model]
        if lines:
            return lines[0]
        time.sleep(0.1)
    pytest.fail(f"{model} was not unloaded within {_UNLOAD_WAIT_S}s:\n{server.log.read_text()}")


def test_an_idle_model_unloads_when_its_keep_alive_ends_with_no_request(
    server: Server, web: httpx.Client
) -> None:
    """/api/ps shows the model expiring its keep-alive (1s) after the request, with its size
    and size_vram 0; then the server unloads it by itself, not before that moment."""
    seen = len(server.events("model_unloaded"))
    before = time.time()
    _embed(web, "all-minilm")
    running = _running(web)
    after = time.time()
    assert list(running) == [MINILM]
    expires = _timestamp(running[MINILM]["expires_at"])
    assert before + 1 <= expires <= after + 1
    assert running[MINILM]["size"] > 0
    assert running[MINILM]["size_vram"] == 0
    unloaded = _wait_for_unload(server, MINILM, seen)
    assert unloaded["reason"] == "keep_alive"
    assert _timestamp(unloaded["timestamp"]) >= expires
    assert _running(web) == {}


def test_a_second_model_evicts_the_first_at_the_model_limit(
    server: Server, web: httpx.Client
) -> None:
    """With room for one model, loading another unloads the first, even one kept forever."""
    seen = len(server.events("model_unloaded"))
    _embed(web, "all-minilm", keep_alive=-1)
    assert _timestamp(_running(web)[MINILM]["expires_at"]) > time.time() + 10 * 365 * 86400
    _embed(web, "glove-twitter-25", keep_alive="1m")
    assert list(_running(web)) == [GLOVE]
    unloaded = [e for e in server.events("model_unloaded")[seen:] if e["model"] == MINILM]
    assert [e["reason"] for e in unloaded] == ["max_loaded_models"]


def test_keep_alive_zero_with_no_input_unloads_a_model(server: Server, web: httpx.Client) -> None:
    """{"model": M, "keep_alive": 0} answers an empty result and unloads M; for a model not
    loaded it loads nothing."""
    _embed(web, "glove-twitter-25", keep_alive="1h")
    response = web.post("/api/embed", json={"model": "glove-twitter-25", "keep_alive": 0})
    assert response.json() == {"model": "glove-twitter-25", "embeddings": []}
    assert _running(web) == {}
    loads = len(server.events("model_loaded"))
    response = web.post("/api/embed", json={"model": "all-minilm", "input": "", "keep_alive": 0})
    assert response.json() == {"model": "all-minilm", "embeddings": []}
    assert len(server.events("model_loaded")) == loads
    assert _running(web) == {}


def test_the_limits_are_read_from_flags_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--max-loaded-models and --max-memory, or their EMBEDSERVE_* variables; 0 is no limit."""
    serve = ["serve"]
    unset = settings_from(build_parser().parse_args(serve), {})
    assert (unset.max_loaded_models, unset.max_memory_bytes) == (None, None)
    flags = [*serve, "--max-loaded-models", "2", "--max-memory", "4GiB"]
    given = settings_from(build_parser().parse_args(flags))
    assert (given.max_loaded_models, given.max_memory_bytes) == (2, 4 * 2**30)
    monkeypatch.setenv("EMBEDSERVE_MAX_LOADED_MODELS", "3")
    monkeypatch.setenv("EMBEDSERVE_MAX_MEMORY", "500MB")
    from_env = settings_from(build_parser().parse_args(serve))
    assert (from_env.max_loaded_models, from_env.max_memory_bytes) == (3, 500 * 10**6)


@pytest.mark.parametrize("flag", ["--max-loaded-models", "--max-memory"])
def test_a_limit_that_is_not_a_size_stops_start_up(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad value exits with usage and says what it expected."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", flag, "lots"])
    assert "0 for no limit" in capsys.readouterr().err
