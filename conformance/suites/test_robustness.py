"""Robustness suite: hostile or odd requests get an answer, never a 5xx, and the server keeps
answering afterwards.

Each check runs once per selected dialect, against its embeddings endpoint (/v1/embeddings or
/api/embed), then asks the dialect's liveness route (GET /v1/models, GET /) whether the server
still answers. Where the APIs fix the answer (a body that is not a JSON object, an input that
is no text, a token id no vocabulary holds) the check requires a 4xx; where servers may
reasonably differ (an oversized body refused or truncated, invalid UTF-8 refused or replaced by
U+FFFD as Go's decoder does), any answer short of a 5xx passes.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import httpx
import pytest

from conformance.target import Target
from conformance.vectors import as_matrix, max_abs_diff, unit_rows

Dialect = Literal["openai", "ollama"]
_EACH_DIALECT = [
    pytest.param("openai", marks=pytest.mark.dialect("openai"), id="openai"),
    pytest.param("ollama", marks=pytest.mark.dialect("ollama"), id="ollama"),
]
_ENDPOINT: dict[Dialect, str] = {"openai": "/v1/embeddings", "ollama": "/api/embed"}
_LIVENESS: dict[Dialect, str] = {"openai": "/v1/models", "ollama": "/"}
_JSON = {"content-type": "application/json"}
_CLIENTS = 64
_REQUESTS_EACH = 2
_POOL = [f"concurrent text number {i}: {'abc ' * i}" for i in range(8)]
_TOLERANCE = 1e-5  # as in the property suite: the same text, another batch


def _no_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500, f"{response.status_code} {response.text[:300]}"


def _client_error(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, f"{response.status_code} {response.text[:300]}"


def _still_answers(http: httpx.Client, dialect: Dialect) -> None:
    path = _LIVENESS[dialect]
    try:
        response = http.get(path)
    except httpx.TransportError as exc:
        pytest.fail(f"the server no longer answers GET {path}: {exc!r}")
    assert response.status_code == 200, f"afterwards GET {path}: {response.status_code}"


def _rows(dialect: Dialect, answer: dict[str, Any]) -> list[Any]:
    if dialect == "openai":
        return [d["embedding"] for d in answer["data"]]
    rows: list[Any] = answer["embeddings"]
    return rows


@pytest.mark.parametrize("dialect", _EACH_DIALECT)
def test_a_ten_megabyte_body_gets_an_answer(
    http: httpx.Client, target: Target, dialect: Dialect
) -> None:
    """An 11 MB input string is refused (413, 400) or embedded truncated, never a 5xx."""
    body = json.dumps({"model": target.model, "input": "a " * 5_500_000}).encode()
    _no_server_error(http.post(_ENDPOINT[dialect], content=body, headers=_JSON))
    _still_answers(http, dialect)


@pytest.mark.parametrize("dialect", _EACH_DIALECT)
@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_is_a_client_error(
    http: httpx.Client, target: Target, dialect: Dialect, depth: int
) -> None:
    """An input of arrays nested thousands deep is no valid input, and must not blow the
    parser's stack: a 4xx."""
    body = f'{{"model":{json.dumps(target.model)},"input":' + "[" * depth + "]" * depth + "}"
    _client_error(http.post(_ENDPOINT[dialect], content=body, headers=_JSON))
    _still_answers(http, dialect)


@pytest.mark.parametrize("dialect", _EACH_DIALECT)
@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b'{"model": "x", "input": ["a"', b"[]", b"null", b"42", b'"text"', b"\xff\xfe"],
    ids=["empty", "brace", "truncated", "array", "null", "number", "string", "not-utf8"],
)
def test_a_body_that_is_no_json_object_is_a_client_error(
    http: httpx.Client, dialect: Dialect, raw: bytes
) -> None:
    """An empty, truncated, non-UTF-8 or non-object body is a 4xx."""
    _client_error(http.post(_ENDPOINT[dialect], content=raw, headers=_JSON))
    _still_answers(http, dialect)


@pytest.mark.parametrize("dialect", _EACH_DIALECT)
@pytest.mark.parametrize("where", ["model", "input"])
def test_invalid_utf8_in_a_string_is_not_a_server_error(
    http: httpx.Client, target: Target, dialect: Dialect, where: str
) -> None:
    """Bytes that are not UTF-8 inside a JSON string are refused or replaced, never a 5xx."""
    fields = {"model": json.dumps(target.model).encode(), "input": b'"caf\xe9 \xff\xfe"'}
    fields[where] = b'"caf\xe9 \xff\xfe"'
    raw = b'{"model": ' + fields["model"] + b', "input": ' + fields["input"] + b"}"
    _no_server_error(http.post(_ENDPOINT[dialect], content=raw, headers=_JSON))
    _still_answers(http, dialect)


@pytest.mark.parametrize("dialect", _EACH_DIALECT)
@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
    ids=["none", "text", "form", "multipart"],
)
def test_a_wrong_content_type_is_not_a_server_error(
    http: httpx.Client, target: Target, dialect: Dialect, content_type: str | None
) -> None:
    """A JSON body under another (or no) content type is answered, not crashed on."""
    body = json.dumps({"model": target.model, "input": "x"}).encode()
    headers = {"content-type": content_type} if content_type else {}
    _no_server_error(http.post(_ENDPOINT[dialect], content=body, headers=headers))
    _still_answers(http, dialect)


@pytest.mark.parametrize("dialect", _EACH_DIALECT)
def test_unknown_fields_are_no_server_error(
    http: httpx.Client, target: Target, dialect: Dialect
) -> None:
    """Extra fields (prefixes, nested junk, nulls) are ignored by /api/embed, as Ollama does
    and Open WebUI relies on; /v1/embeddings may ignore them or refuse them with a 4xx as
    OpenAI does, never a 5xx."""
    junk = {"prefix": "query: ", "zzz": {"a": [1, {"b": None}]}, "options": {"num_ctx": None}}
    response = http.post(
        _ENDPOINT[dialect], json={"model": target.model, "input": ["x"], "user": "u", **junk}
    )
    if dialect == "ollama":
        assert response.status_code == 200, f"{response.status_code} {response.text[:300]}"
    _no_server_error(response)
    _still_answers(http, dialect)


@pytest.mark.parametrize("dialect", _EACH_DIALECT)
@pytest.mark.parametrize("token_id", [10**30, 2**64, 2**63, -1], ids=["1e30", "2^64", "2^63", "-1"])
def test_huge_token_ids_are_client_errors(
    http: httpx.Client, target: Target, dialect: Dialect, token_id: int
) -> None:
    """A token id no vocabulary holds, however large, is a 4xx (Ollama takes no token ids at
    all: a 4xx there too)."""
    for value in ([token_id], [[token_id]]):
        response = http.post(_ENDPOINT[dialect], json={"model": target.model, "input": value})
        _client_error(response)
    _still_answers(http, dialect)


@pytest.mark.parametrize("dialect", _EACH_DIALECT)
@pytest.mark.parametrize("dimensions", [-5, 0, 2**31, 10**30])
def test_odd_dimensions_are_not_a_server_error(
    http: httpx.Client, target: Target, dialect: Dialect, dimensions: int
) -> None:
    """dimensions below 1 or beyond any model is refused (OpenAI) or ignored (Ollama), never
    a 5xx."""
    body = {"model": target.model, "input": "x", "dimensions": dimensions}
    _no_server_error(http.post(_ENDPOINT[dialect], json=body))
    _still_answers(http, dialect)


@pytest.mark.parametrize("dialect", _EACH_DIALECT)
@pytest.mark.parametrize(
    "value",
    ["", [""], [], [" "], ["", "x"], "\n\t ", None],
    ids=["empty", "list-of-empty", "empty-list", "blank", "empty-and-text", "whitespace", "null"],
)
def test_empty_and_blank_inputs_are_not_server_errors(
    http: httpx.Client, target: Target, dialect: Dialect, value: object
) -> None:
    """Empty and blank inputs are embedded or refused with a 4xx (the APIs differ: Ollama
    embeds "" in a list and answers no rows for "", OpenAI refuses it), never a 5xx."""
    response = http.post(_ENDPOINT[dialect], json={"model": target.model, "input": value})
    _no_server_error(response)
    _still_answers(http, dialect)


@pytest.mark.parametrize("dialect", _EACH_DIALECT)
def test_sixty_four_concurrent_clients_each_get_their_own_answer(
    http: httpx.Client, target: Target, dialect: Dialect
) -> None:
    """64 clients at once, a few requests each: every answer is a 200 whose rows are the
    vectors of that request's own texts (no cross-talk between batched requests)."""
    path = _ENDPOINT[dialect]
    expected = unit_rows(as_matrix(_rows(dialect, _post_ok(http, path, target.model, _POOL))))
    timeout = min(target.timeout_s, 60.0)

    def client(n: int) -> list[str]:
        problems = []
        with httpx.Client(base_url=target.base_url, timeout=timeout) as own:
            for k in range(_REQUESTS_EACH):
                picked = [(n + k + i) % len(_POOL) for i in range(1 + (n + k) % 4)]
                body = {"model": target.model, "input": [_POOL[i] for i in picked]}
                response = own.post(path, json=body)
                if response.status_code != 200:
                    problems.append(f"client {n}: {response.status_code} {response.text[:200]}")
                    continue
                rows = unit_rows(as_matrix(_rows(dialect, response.json())))
                own_texts = rows.shape[0] == len(picked)
                if not own_texts or max_abs_diff(rows, expected[picked]) >= _TOLERANCE:
                    problems.append(f"client {n}, request {k}: rows are not its texts' vectors")
        return problems

    with ThreadPoolExecutor(max_workers=_CLIENTS) as pool:
        problems = [p for found in pool.map(client, range(_CLIENTS)) for p in found]
    assert not problems, "\n".join(problems[:5])
    _still_answers(http, dialect)


def _post_ok(http: httpx.Client, path: str, model: str, texts: list[str]) -> dict[str, Any]:
    response = http.post(path, json={"model": model, "input": texts})
    assert response.status_code == 200, f"{response.status_code} {response.text[:300]}"
    answer: dict[str, Any] = response.json()
    return answer
