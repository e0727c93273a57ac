"""The real server's log with `--log-format json`: every line is one JSON object, whoever wrote
it (the server, uvicorn), and a client's strings in it are bounded."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest

from tests.server_process import running_server

pytestmark = [pytest.mark.slow]

_LONG_NAME = "m" * 2_000_000


def _refuse(constant: str) -> object:
    msg = f"not JSON: {constant}"
    raise ValueError(msg)


def _serve_a_few_requests(url: str) -> None:
    """A request served, one for a model with a two-megabyte name, and a connection that sends
    no HTTP at all."""
    answer = httpx.post(f"{url}/api/embed", json={"model": "all-minilm", "input": "hi"}, timeout=60)
    assert answer.status_code == 200
    refused = httpx.post(f"{url}/v1/embeddings", json={"model": _LONG_NAME, "input": "hi"})
    assert refused.status_code == 404
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as bad:
        bad.sendall(b"NOT HTTP\r\n\r\n")
        assert bad.recv(65536).startswith(b"HTTP/1.1 400")


def test_every_line_of_the_log_is_json_and_bounded(tmp_path: Path) -> None:
    """From start to shutdown, each line parses as strict JSON (no NaN), uvicorn's included,
    and no line carries the whole of a client's model name."""
    log = tmp_path / "server.log"
    env = {"EMBEDSERVE_LOG_FORMAT": "json", "EMBEDSERVE_ENGINE": "numpy"}
    with running_server(tmp_path / "home", log, env) as url:
        _serve_a_few_requests(url)
    lines = log.read_text(encoding="utf-8").splitlines()
    parsed = [json.loads(line, parse_constant=_refuse) for line in lines]
    assert {line.get("logger") for line in parsed} >= {"uvicorn.error"}
    embeds = [line for line in parsed if line["event"] == "embed"]
    assert [line["status"] for line in embeds] == [200, 404]
    assert all(len(line) < 10_000 for line in lines)
