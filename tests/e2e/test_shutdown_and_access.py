"""The real server, as a subprocess: API keys, CORS, the body limit, and a graceful SIGTERM.

One server for the access checks, configured through EMBEDSERVE_* variables; the shutdown
tests start their own (configured through flags), since each ends it. All run the numpy
engine on all-MiniLM-L6-v2 from its PyPI package: nothing is downloaded.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest

from tests.server_process import running_server

pytestmark = pytest.mark.slow

KEYS = ("key-one-0123456789", "key-two-abcdefghij")
ALLOWED = "https://app.example"
BODY_LIMIT = 1024
_STARTUP_S = 60.0
_QUEUE_DEPTH = re.compile(r"^embedserve_queue_depth\{[^}]*\} (\S+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("access")
    log = root / "server.log"
    env = {
        "EMBEDSERVE_API_KEYS": ",".join(KEYS),
        "EMBEDSERVE_ORIGINS": ALLOWED,
        "EMBEDSERVE_MAX_BODY_SIZE": "1KiB",
        "EMBEDSERVE_ENGINE": "numpy",
        "EMBEDSERVE_LOG_FORMAT": "json",
    }
    with running_server(root / "home", log, env) as url:
        yield url, log


@pytest.fixture(scope="module")
def url(server: tuple[str, Path]) -> str:
    return server[0]


def test_openai_sdk_is_refused_with_a_wrong_key_and_served_with_a_right_one(url: str) -> None:
    """AuthenticationError (401, invalid_api_key) for a wrong key; the right one embeds."""
    with openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError) as caught:
            client.embeddings.create(model="all-minilm", input="hello")
        assert caught.value.status_code == 401
        assert caught.value.code == "invalid_api_key"
    with openai.OpenAI(base_url=f"{url}/v1", api_key=KEYS[1], max_retries=0) as client:
        result = client.embeddings.create(model="all-minilm", input=["hello", "world"])
    assert [len(d.embedding) for d in result.data] == [384, 384]


def test_ollama_sdk_is_refused_without_a_key_and_served_with_one(url: str) -> None:
    """ResponseError 401 without headers; Client(headers={"Authorization": ...}) embeds."""
    with ollama.Client(host=url) as client, pytest.raises(ollama.ResponseError) as caught:
        client.embed(model="all-minilm", input="hello")
    assert caught.value.status_code == 401
    headers = {"Authorization": f"Bearer {KEYS[0]}"}
    with ollama.Client(host=url, headers=headers) as client:
        assert len(client.embed(model="all-minilm", input=["hello"]).embeddings[0]) == 384


@pytest.mark.parametrize(
    ("path", "openai_envelope"), [("/v1/embeddings", True), ("/api/embed", False)]
)
def test_a_refusal_over_the_wire_is_in_the_dialect(
    url: str, path: str, *, openai_envelope: bool
) -> None:
    """A raw 401 carries WWW-Authenticate: Bearer and the caller's own envelope."""
    response = httpx.post(f"{url}{path}", json={"model": "all-minilm", "input": "x"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    error = response.json()["error"]
    if openai_envelope:
        assert (error["type"], error["param"], error["code"]) == (
            "invalid_request_error",
            None,
            "invalid_api_key",
        )
    else:
        assert isinstance(error, str)


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/"), ("HEAD", "/"), ("GET", "/health"), ("GET", "/api/version")]
)
def test_probes_stay_open(url: str, method: str, path: str) -> None:
    """Liveness and version checks need no key."""
    assert httpx.request(method, f"{url}{path}").status_code == 200


@pytest.mark.parametrize(("origin", "allowed"), [(ALLOWED, True), ("https://evil.example", False)])
def test_a_preflight_gets_cors_headers_only_for_an_allowed_origin(
    url: str, origin: str, *, allowed: bool
) -> None:
    """The origin from EMBEDSERVE_ORIGINS passes a keyless preflight; another gets no headers."""
    response = httpx.options(
        f"{url}/v1/embeddings",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    if allowed:
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == origin
        assert "authorization" in response.headers["access-control-allow-headers"].lower()
    else:
        assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    ("path", "openai_envelope"), [("/v1/embeddings", True), ("/api/embed", False)]
)
def test_a_body_past_the_limit_is_413_in_the_dialect(
    url: str, path: str, *, openai_envelope: bool
) -> None:
    """EMBEDSERVE_MAX_BODY_SIZE=1KiB: a 2 KiB body gets a 413 that names the limit."""
    body = {"model": "all-minilm", "input": "a" * 2 * BODY_LIMIT}
    response = httpx.post(f"{url}{path}", json=body, headers={"Authorization": f"Bearer {KEYS[0]}"})
    assert response.status_code == 413
    error = response.json()["error"]
    assert f"at most {BODY_LIMIT} bytes" in (error["message"] if openai_envelope else error)


def test_no_key_reaches_the_log(server: tuple[str, Path]) -> None:
    """Neither a configured key nor a wrong one sent by a client is ever written to the log."""
    url, log = server
    wrong = "a-wrong-key-that-must-not-be-logged"
    httpx.get(f"{url}/api/tags", headers={"Authorization": f"Bearer {wrong}"})
    httpx.get(f"{url}/api/tags", headers={"Authorization": f"Bearer {KEYS[0]}"})
    time.sleep(0.2)  # the server writes its log lines after answering
    text = log.read_text(encoding="utf-8")
    assert "request_refused" in text
    assert wrong not in text
    assert all(key not in text for key in KEYS)


# --- graceful shutdown -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _serve(root: Path, *flags: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`embedserve serve FLAGS` with all-MiniLM-L6-v2 preloaded on numpy, once /ready."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "EMBEDSERVE_"))}
    script = Path(sys.executable).with_name("embedserve")
    command = [str(script), "serve", "--port", str(port), "--home", str(root / "home")]
    command += ["--engine", "numpy", "--preload", "all-MiniLM-L6-v2", "--log-format", "json"]
    log = root / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*command, *flags], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + _STARTUP_S
        while not _answers(f"{url}/ready"):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server not ready:\n{log.read_text()}")
            time.sleep(0.2)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _long_texts(n: int) -> list[str]:
    """Distinct texts near the model's 256-token context: slow enough on numpy to be caught."""
    words = [
        "river",
        "stone",
        "lantern",
        "quiet",
        "harbour",
        "signal",
        "meadow",
        "copper",
        "orbit",
        "velvet",
    ]
    return [
        " ".join(words[(i + j) % len(words)] + str(j % 7) for j in range(120)) for i in range(n)
    ]


def _embedding_started(url: str) -> bool:
    """The metrics say inputs are queued or being embedded."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return any(float(v) > 0 for v in _QUEUE_DEPTH.findall(text))


def _sigterm_once_embedding(
    process: subprocess.Popen[bytes], url: str, texts: list[str], pool: ThreadPoolExecutor
) -> Future[httpx.Response]:
    body = {"model": "all-minilm", "input": texts}
    future = pool.submit(httpx.post, f"{url}/api/embed", json=body, timeout=300)
    deadline = time.monotonic() + 60
    while not _embedding_started(url):
        assert not future.done(), future.result().text
        assert time.monotonic() < deadline, "the request never started embedding"
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    return future


def _refuses_connections(url: str, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/health", timeout=1)
        except httpx.ConnectError:
            return True
        except httpx.TransportError:
            pass  # accepted, then closed as the server shut down: try again
        time.sleep(0.05)
    return False


def _held_request(url: str, body: bytes) -> socket.socket:
    """A POST /api/embed that the server has begun (it asked for the body: 100 Continue) and
    that stays in flight until the test sends the body, however fast the server is."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    connection = socket.create_connection((host, int(port)), timeout=60)
    connection.sendall(
        f"POST /api/embed HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Expect: 100-continue\r\n\r\n".encode()
    )
    interim = b""
    while not interim.endswith(b"\r\n\r\n"):
        byte = connection.recv(1)  # one at a time: the final response must stay unread
        assert byte, f"the server closed the connection after {interim!r}"
        interim += byte
    assert interim.startswith(b"HTTP/1.1 100 "), interim
    return connection


def _finish(connection: socket.socket, body: bytes) -> tuple[int, dict[str, Any]]:
    """Sends the held request's body; its status and JSON answer."""
    connection.sendall(body)
    with connection:
        response = http.client.HTTPResponse(connection)
        response.begin()
        return response.status, json.loads(response.read())


def test_sigterm_lets_the_request_in_flight_finish_then_exits_0(tmp_path: Path) -> None:
    """SIGTERM mid-batch: new connections are refused at once, while requests are still in
    flight; the batch and a request whose body comes after the signal still answer 200 with
    every vector, and the process exits 0 within --shutdown-timeout."""
    texts = _long_texts(8)
    flags = ("--shutdown-timeout", "5m", "--max-batch-tokens", "512")  # 2 texts a pass
    held_body = json.dumps({"model": "all-minilm", "input": ["held back"]}).encode()
    with _serve(tmp_path, *flags) as (process, url), ThreadPoolExecutor(1) as pool:
        held = _held_request(url, held_body)
        future = _sigterm_once_embedding(process, url, texts, pool)
        signalled = time.monotonic()
        # the held request cannot finish before its body is sent: these refusals come while
        # the server still has a request in flight, whatever the speed of the batch
        assert _refuses_connections(url, within_s=5)
        status, answer = _finish(held, held_body)
        assert status == 200
        assert len(answer["embeddings"]) == 1
        response = future.result(timeout=300)
        assert response.status_code == 200
        assert len(response.json()["embeddings"]) == len(texts)
        assert process.wait(timeout=300 - (time.monotonic() - signalled)) == 0


def test_sigterm_stops_waiting_at_the_shutdown_timeout(tmp_path: Path) -> None:
    """--shutdown-timeout 1s: a request that needs many more passes is cut off, answered 503
    in its dialect rather than uvicorn's plain-text 500, and the process still exits 0."""
    texts = _long_texts(64)
    flags = ("--shutdown-timeout", "1s", "--max-batch-tokens", "512")
    with _serve(tmp_path, *flags) as (process, url), ThreadPoolExecutor(1) as pool:
        future = _sigterm_once_embedding(process, url, texts, pool)
        assert process.wait(timeout=60) == 0
        response = future.result(timeout=30)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "shut down" in response.json()["error"]
    assert "Exception in ASGI application" not in (tmp_path / "server.log").read_text()
