"""`embedserve batch` in this process on all-MiniLM-L6-v2 (carried by an installed package):
every row once, in order, with its vector or the server's error, and each answer what
POST /v1/embeddings answers for the same body."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest

from adapters.bootstrap import Settings, build_app
from domain.requests import Truncation
from tests.cli_in_process import run_command
from tests.tolerances import BATCH_INVARIANCE

pytestmark = pytest.mark.slow

MODEL = "all-minilm"
BASE = "http://embedserve.localhost"
LONG = "word " * 400  # past the model's 256 tokens
ROWS: list[dict[str, Any]] = [
    {"id": "a", "text": "The cat sat on the mat.", "lang": "en"},
    {"id": "b", "text": LONG, "lang": "en"},  # refused: --truncate false
    {"id": "c", "lang": "fr"},  # no text
    {"id": "d", "text": "", "lang": "en"},
    {"id": "e", "text": "東京は日本の首都です。", "lang": "ja"},
]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("in") / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    return path


def _batch(home: Path, source: Path, output: Path, *options: str) -> int:
    common = ["--model", MODEL, "--engine", "numpy", "--home", str(home), "--no-truncate"]
    return run_command(["batch", str(source), str(output), *common, *options])


async def _answers(home: Path, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    settings = Settings(home=home, engine="numpy", truncate=Truncation.REFUSE, offline=True)
    app = build_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        return [await http.post("/v1/embeddings", json=body) for body in bodies]


def _server(home: Path, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """What the server, built by the same composition root, answers each body."""
    return asyncio.run(_answers(home, bodies))


def _vector(embedding: list[float] | str) -> np.ndarray:
    if isinstance(embedding, str):
        return np.frombuffer(base64.b64decode(embedding), dtype="<f4")
    return np.array(embedding, dtype=np.float32)


def _assert_same_answer(ours: dict[str, Any], served: httpx.Response) -> None:
    """The same status and body; vectors to BATCH_INVARIANCE, since a row embedded among other
    rows (a chunk, or requests the batcher merged) sits in a differently padded pass."""
    assert ours["status_code"] == served.status_code
    body, theirs = ours["body"], served.json()
    if served.status_code != 200:
        assert body == theirs
        return
    assert {**body, "data": None} == {**theirs, "data": None}  # model, usage, object
    assert len(body["data"]) == len(theirs["data"])
    for mine, their in zip(body["data"], theirs["data"], strict=True):
        assert mine["index"] == their["index"]
        assert type(mine["embedding"]) is type(their["embedding"])
        a, b = _vector(mine["embedding"]), _vector(their["embedding"])
        np.testing.assert_allclose(a, b, rtol=0, atol=BATCH_INVARIANCE)


def test_every_row_is_written_once_with_its_vector_or_its_error(
    home: Path, rows: Path, tmp_path: Path
) -> None:
    """In input order, other columns kept; a refused row is kept with the server's message,
    and the rows beside it in its chunk still get their vectors."""
    out = tmp_path / "vectors.parquet"
    assert _batch(home, rows, out, "--batch-size", "4") == 0
    table = pq.read_table(out)
    got = table.to_pylist()
    assert [r["id"] for r in got] == ["a", "b", "c", "d", "e"]
    assert [r["lang"] for r in got] == ["en", "en", "fr", "en", "ja"]
    assert str(table.schema.field("embedding").type) == "list<element: float>"
    assert [r["error"] is None for r in got] == [True, False, False, True, True]
    assert "maximum context length is 256 tokens" in got[1]["error"]
    assert got[2]["error"] == "Expected `str | array`, got `null` - at `$.input`"
    assert all(len(r["embedding"]) == 384 for r in got if r["error"] is None)


def test_vectors_equal_the_servers(home: Path, rows: Path, tmp_path: Path) -> None:
    """With the same model, engine and options (here --dimensions 128)."""
    out = tmp_path / "vectors.parquet"
    assert _batch(home, rows, out, "--dimensions", "128") == 0
    got = {r["id"]: r["embedding"] for r in pq.read_table(out).to_pylist()}
    texts = {r["id"]: r["text"] for r in ROWS if r.get("text") and r["text"] != LONG}
    bodies = [{"model": MODEL, "input": text, "dimensions": 128} for text in texts.values()]
    answers = _server(home, bodies)
    for row_id, answer in zip(texts, answers, strict=True):
        served = np.array(answer.json()["data"][0]["embedding"], dtype=np.float32)
        mine = np.array(got[row_id], dtype=np.float32)
        np.testing.assert_allclose(mine, served, rtol=0, atol=BATCH_INVARIANCE)


def test_batch_output_bodies_are_the_servers(home: Path, rows: Path, tmp_path: Path) -> None:
    """A plain row's line holds, as its body, what the server answers {model, input: text}."""
    out = tmp_path / "answers.jsonl"
    assert _batch(home, rows, out) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["custom_id"] for line in lines] == ["a", "b", "c", "d", "e"]
    answers = _server(home, [{"model": MODEL, "input": r.get("text")} for r in ROWS])
    for line, answer in zip(lines, answers, strict=True):
        _assert_same_answer(line["response"], answer)
        assert line["error"] is None


def test_an_openai_batch_file_round_trips(home: Path, tmp_path: Path) -> None:
    """Every custom_id once; each body answered as the server answers it, base64 included; a
    line for another endpoint made no request and says why."""
    bodies: list[dict[str, Any]] = [
        {"model": MODEL, "input": ["one", "two"], "encoding_format": "base64"},
        {"model": MODEL, "input": "three", "dimensions": 64},
        {"model": MODEL, "input": LONG},
        {"model": "no-such-model", "input": "x"},
        {"input": "no model"},
    ]
    requests = [
        {"custom_id": f"r{i}", "method": "POST", "url": "/v1/embeddings", "body": body}
        for i, body in enumerate(bodies)
    ]
    requests.append({"custom_id": "chat", "method": "POST", "url": "/v1/chat/completions"})
    source = tmp_path / "requests.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in requests))
    out = tmp_path / "answers.jsonl"
    assert _batch(home, source, out) == 0
    lines = {line["custom_id"]: line for line in map(json.loads, out.read_text().splitlines())}
    assert sorted(lines) == sorted(r["custom_id"] for r in requests)
    answers = _server(home, bodies)
    for i, answer in enumerate(answers):
        _assert_same_answer(lines[f"r{i}"]["response"], answer)
    vectors = [base64.b64decode(d["embedding"]) for d in lines["r0"]["response"]["body"]["data"]]
    assert [len(v) for v in vectors] == [384 * 4, 384 * 4]
    assert lines["chat"]["response"] is None
    assert lines["chat"]["error"]["code"] == "invalid_url"


def test_an_input_without_the_text_column_writes_nothing(
    home: Path, rows: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command fails, naming the column, and leaves no output behind."""
    out = tmp_path / "vectors.parquet"
    assert _batch(home, rows, out, "--text-field", "body") == 1
    assert "no `body` column" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
