"""Robustness suite: hostile or odd requests get a 4xx (or a 2xx), never a 5xx, and the
server keeps answering afterwards."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from conformance.target import Target

_ENDPOINTS = [
    pytest.param("/v1/embeddings", marks=pytest.mark.dialect("openai"), id="openai"),
    pytest.param("/api/embed", marks=pytest.mark.dialect("ollama"), id="ollama"),
]
_JSON = {"content-type": "application/json"}
_CLIENTS = 64
_REQUESTS_EACH = 2


def _no_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500, f"{response.status_code} {response.text[:300]}"


def _still_alive(http: httpx.Client) -> None:
    assert http.get("/").status_code < 500 or http.get("/v1/models").status_code == 200


@pytest.mark.parametrize("path", _ENDPOINTS)
def test_a_ten_megabyte_body_is_refused_politely(
    http: httpx.Client, target: Target, path: str
) -> None:
    """A 10 MB+ input string is answered with 2xx or 4xx, and the server lives on."""
    body = json.dumps({"model": target.model, "input": "a " * 5_500_000}).encode()
    _no_server_error(http.post(path, content=body, headers=_JSON))
    _still_alive(http)


@pytest.mark.parametrize("path", _ENDPOINTS)
@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_is_a_client_error(
    http: httpx.Client, target: Target, path: str, depth: int
) -> None:
    """JSON nested thousands deep must not crash the parser: a 4xx."""
    body = f'{{"model":{json.dumps(target.model)},"input":' + "[" * depth + "]" * depth + "}"
    response = http.post(path, content=body, headers=_JSON)
    assert 400 <= response.status_code < 500, response.status_code
    _still_alive(http)


@pytest.mark.parametrize("path", _ENDPOINTS)
@pytest.mark.parametrize(
    "raw",
    [b"", b"\xff\xfe\xfd", b'{"model": "\xff", "input": "x"}', b"{", b"[]", b"null", b"42"],
    ids=["empty", "not-utf8", "bad-utf8-string", "truncated", "array", "null", "number"],
)
def test_unparseable_bodies_are_client_errors(http: httpx.Client, path: str, raw: bytes) -> None:
    """Empty, truncated, non-UTF-8 or non-object bodies are a 4xx."""
    response = http.post(path, content=raw, headers=_JSON)
    assert 400 <= response.status_code < 500, response.status_code


@pytest.mark.parametrize("path", _ENDPOINTS)
def test_a_wrong_content_type_is_not_a_server_error(
    http: httpx.Client, target: Target, path: str
) -> None:
    """A JSON body labelled text/plain is answered, not crashed on."""
    body = json.dumps({"model": target.model, "input": "x"})
    _no_server_error(http.post(path, content=body, headers={"content-type": "text/plain"}))


@pytest.mark.parametrize("path", _ENDPOINTS)
def test_unknown_fields_are_ignored(http: httpx.Client, target: Target, path: str) -> None:
    """Extra fields (user, options, prefixes, nested junk) do not make a valid request fail."""
    body = {"model": target.model, "input": ["x"], "user": "u", "zzz": {"a": [1, {"b": None}]}}
    assert http.post(path, json=body).status_code == 200


@pytest.mark.dialect("openai")
@pytest.mark.parametrize("token_id", [10**30, 2**63, 2**31, -1])
def test_huge_token_ids_are_client_errors(
    http: httpx.Client, target: Target, token_id: int
) -> None:
    """A token id no vocabulary holds is a 4xx, however large."""
    response = http.post("/v1/embeddings", json={"model": target.model, "input": [[token_id]]})
    assert 400 <= response.status_code < 500, response.status_code


@pytest.mark.parametrize("path", _ENDPOINTS)
def test_negative_dimensions_are_not_a_server_error(
    http: httpx.Client, target: Target, path: str
) -> None:
    """dimensions=-5 is refused (OpenAI) or ignored (Ollama), never a 5xx."""
    body = {"model": target.model, "input": "x", "dimensions": -5}
    _no_server_error(http.post(path, json=body))


@pytest.mark.parametrize("path", _ENDPOINTS)
def test_sixty_four_concurrent_clients(http: httpx.Client, target: Target, path: str) -> None:
    """64 clients at once each get their own correct-length answer; no 5xx; the server lives on."""

    def client(n: int) -> list[int]:
        with httpx.Client(base_url=target.base_url, timeout=target.timeout_s) as own:
            statuses = []
            for k in range(_REQUESTS_EACH):
                texts = [f"client {n} request {k} text {i}" for i in range(1 + n % 4)]
                response = own.post(path, json={"model": target.model, "input": texts})
                rows = response.json().get("data") or response.json().get("embeddings") or []
                assert len(rows) == len(texts)
                statuses.append(response.status_code)
            return statuses

    with ThreadPoolExecutor(max_workers=_CLIENTS) as pool:
        statuses = [s for result in pool.map(client, range(_CLIENTS)) for s in result]
    assert statuses == [200] * (_CLIENTS * _REQUESTS_EACH)
    _still_alive(http)
