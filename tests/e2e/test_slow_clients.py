"""Slow clients against the real server: what a connection may hold, and for how long.

Each connection here sends too little (nothing, a request line and one header, a body shorter
than its Content-Length) or nothing more after its answer; the server must close it on its own
after the matching timeout, set short by EMBEDSERVE_* variables. A client waits for that at most
a few times the timeout, so a server without it fails the test instead of hanging it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.server_process import running_server

pytestmark = [pytest.mark.slow]

_TIMEOUT = "1s"  # each of the three timeouts in the module's server
_PATIENCE_S = 4.0  # how long a client waits for the server to close a connection
_REQUEST_LINE = b"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\n"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("slow-clients")
    env = {
        "EMBEDSERVE_HEADER_TIMEOUT": _TIMEOUT,
        "EMBEDSERVE_BODY_TIMEOUT": _TIMEOUT,
        "EMBEDSERVE_IDLE_TIMEOUT": _TIMEOUT,
    }
    with running_server(root / "home", root / "server.log", env) as url:
        yield url


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=_PATIENCE_S)


def _closed_by_server(conn: socket.socket) -> bool:
    """True once the server closes the connection; False if it is still open at the deadline.
    Whatever it answers before closing is read and dropped."""
    try:
        while conn.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def _ask_health(conn: socket.socket) -> None:
    """One request on the connection, its answer read whole; the connection is kept alive."""
    conn.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    answer = b""
    while not answer.endswith(b'{"status":"ok"}'):
        answer += conn.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize(
    "sent",
    [b"", _REQUEST_LINE, _REQUEST_LINE + b"Content-Type: application/json"],
    ids=["nothing", "request line and one header", "half a header"],
)
def test_a_connection_that_never_finishes_its_headers_is_closed_after_the_header_timeout(
    url: str, sent: bytes
) -> None:
    """A client that stops before the end of its headers loses its connection."""
    with _connect(url) as conn:
        conn.sendall(sent)
        assert _closed_by_server(conn)


def test_a_body_shorter_than_its_content_length_is_dropped_after_the_body_timeout(
    url: str,
) -> None:
    """A request whose body never reaches its Content-Length loses its connection."""
    with _connect(url) as conn:
        conn.sendall(_REQUEST_LINE + b"Content-Length: 100\r\n\r\n" + b'{"model": ')
        assert _closed_by_server(conn)


def test_an_idle_kept_alive_connection_is_closed_after_the_idle_timeout(url: str) -> None:
    """After its answer, a kept-alive connection that sends nothing more is closed."""
    with _connect(url) as conn:
        _ask_health(conn)
        assert _closed_by_server(conn)


def test_a_second_request_that_stops_in_its_headers_is_closed_too(url: str) -> None:
    """The header timeout also covers the requests after the first on a kept-alive connection."""
    with _connect(url) as conn:
        _ask_health(conn)
        conn.sendall(_REQUEST_LINE)
        assert _closed_by_server(conn)


def test_a_kept_alive_connection_still_serves_its_next_request(url: str) -> None:
    """The timeouts close only connections that owe something: one that asks again is served."""
    with httpx.Client(base_url=url) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/api/version").status_code == 200


# A flood of slow connections, past what the process's descriptors allow: the server may keep
# them only by refusing everyone else. Its header timeout is long, so only the connection cap
# can let the normal request through.
_DESCRIPTORS = 256
_SLOW_CONNECTIONS = 300


def test_a_flood_of_slow_connections_does_not_starve_a_normal_request(tmp_path: Path) -> None:
    """Hundreds of connections stuck in their headers, more than the server has descriptors
    for, and a normal request sent after them is still answered; the server never runs out of
    descriptors."""
    env = {"EMBEDSERVE_HEADER_TIMEOUT": "5m"}
    log = tmp_path / "server.log"
    with (
        running_server(tmp_path / "home", log, env, max_descriptors=_DESCRIPTORS) as url,
        ExitStack() as slow,
    ):
        for _ in range(_SLOW_CONNECTIONS):
            conn = slow.enter_context(_connect(url))
            conn.sendall(_REQUEST_LINE)
        answer = httpx.get(f"{url}/api/version", timeout=_PATIENCE_S * 2)
        assert answer.status_code == 200
    # the cap keeps the server inside its descriptors: asyncio never failed to accept
    assert "out of system resource" not in log.read_text(encoding="utf-8")
