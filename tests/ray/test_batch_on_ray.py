"""`embedserve batch --ray` on the two-node cluster (1 CPU each, a pool of 2 actors) against the
same command in this process, over the same 2,000-row file: every row once, the same vectors
and errors, in both output formats; an OpenAI Batch input file round-trips."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.dataset as pa_dataset
import pyarrow.parquet as pq
import pytest

from tests.cli_in_process import run_command
from tests.corpus import VARIED_TEXTS
from tests.tolerances import BATCH_INVARIANCE

pytestmark = pytest.mark.slow

ROWS = 2000
NO_TEXT = {7, 1000, 1999}  # rows written with the server's error, not dropped
_RUN_S = 300  # a pool that never starts would otherwise hang the suite


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("in") / "rows.jsonl"
    lines = []
    for i in range(ROWS):
        row: dict[str, Any] = {"id": f"doc-{i}", "n": i}
        if i not in NO_TEXT:
            row["text"] = f"{VARIED_TEXTS[i % len(VARIED_TEXTS)][:200]} #{i}"
        lines.append(json.dumps(row))
    path.write_text("\n".join(lines) + "\n")
    return path


def _options(home: Path) -> list[str]:
    return ["--model", "all-minilm", "--engine", "onnxruntime", "--home", str(home)]


def _in_process(home: Path, source: Path, output: Path) -> Path:
    assert run_command(["batch", str(source), str(output), *_options(home)]) == 0
    return output


def _on_ray(home: Path, source: Path, output: Path, address: str) -> Path:
    """A process of its own: this one is already the fixture's driver."""
    command = [sys.executable, "-m", "adapters.cli", "batch", str(source), str(output)]
    command += [*_options(home), "--ray", address, "--actors", "2", "--batch-size", "256"]
    done = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=_RUN_S, env=os.environ
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert output.is_dir()
    return output


def _lines(output: Path) -> list[dict[str, Any]]:
    files = sorted(output.iterdir()) if output.is_dir() else [output]
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def _vector(embedding: list[float] | str) -> np.ndarray:
    if isinstance(embedding, str):
        return np.frombuffer(base64.b64decode(embedding), dtype="<f4")
    return np.array(embedding, dtype=np.float32)


def _assert_same_vectors(a: list[Any], b: list[Any]) -> None:
    """Rows sit in differently composed forward passes on the two runs (Ray Data cuts its own
    batches), which moves a component by a few float32 ulps at most: BATCH_INVARIANCE."""
    mine = np.stack([_vector(x) for x in a])
    theirs = np.stack([_vector(x) for x in b])
    np.testing.assert_allclose(mine, theirs, rtol=0, atol=BATCH_INVARIANCE)


def _same_lines(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    assert ours.keys() == theirs.keys()
    for custom_id, line in ours.items():
        other = theirs[custom_id]
        assert (line["error"], other["error"]) == (other["error"], line["error"])
        if line["response"] is None:
            assert other["response"] is None
            continue
        body, other_body = line["response"]["body"], other["response"]["body"]
        assert line["response"]["status_code"] == other["response"]["status_code"]
        assert {**body, "data": None} == {**other_body, "data": None}
        if "data" in body:
            vectors = [d["embedding"] for d in body["data"]]
            _assert_same_vectors(vectors, [d["embedding"] for d in other_body["data"]])


def test_parquet_rows_are_the_same_on_ray(
    two_nodes: str, home: Path, rows: Path, tmp_path: Path
) -> None:
    """Every row once (by id) with its columns, the same vectors, the same errors."""
    here = pq.read_table(_in_process(home, rows, tmp_path / "here.parquet"))
    there = pa_dataset.dataset(_on_ray(home, rows, tmp_path / "there.parquet", two_nodes))
    there_rows = sorted(there.to_table().to_pylist(), key=lambda r: r["n"])
    assert [r["id"] for r in there_rows] == [f"doc-{i}" for i in range(ROWS)]
    here_rows = here.to_pylist()
    assert [r["id"] for r in here_rows] == [f"doc-{i}" for i in range(ROWS)]
    errors = [r["error"] for r in there_rows]
    assert errors == [r["error"] for r in here_rows]
    assert {i for i, e in enumerate(errors) if e is not None} == NO_TEXT
    assert errors[7] == "Expected `str | array`, got `null` - at `$.input`"
    kept = [i for i in range(ROWS) if i not in NO_TEXT]
    _assert_same_vectors(
        [there_rows[i]["embedding"] for i in kept], [here_rows[i]["embedding"] for i in kept]
    )


def test_batch_output_lines_are_the_same_on_ray(
    two_nodes: str, home: Path, rows: Path, tmp_path: Path
) -> None:
    """One line per row, each custom_id once, each response the same."""
    here = _lines(_in_process(home, rows, tmp_path / "here.jsonl"))
    there = _lines(_on_ray(home, rows, tmp_path / "there.jsonl", two_nodes))
    ids = [line["custom_id"] for line in there]
    assert sorted(ids) == sorted(f"doc-{i}" for i in range(ROWS))
    statuses = {line["custom_id"]: line["response"]["status_code"] for line in there}
    assert {i for i in range(ROWS) if statuses[f"doc-{i}"] != 200} == NO_TEXT
    _same_lines({x["custom_id"]: x for x in here}, {x["custom_id"]: x for x in there})


def test_an_openai_batch_file_round_trips_on_ray(
    two_nodes: str, home: Path, tmp_path: Path
) -> None:
    """Every custom_id once; bodies decode to the same vectors as in this process."""
    requests = []
    for i in range(120):
        body: dict[str, Any] = {"model": "all-minilm", "input": [f"text {i}", f"more {i}"]}
        if i % 3 == 0:
            body["encoding_format"] = "base64"
        if i % 40 == 5:
            body["input"] = []  # refused: 400
        url = "/v1/completions" if i == 50 else "/v1/embeddings"
        requests.append({"custom_id": f"q{i}", "method": "POST", "url": url, "body": body})
    source = tmp_path / "requests.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in requests))
    here = _lines(_in_process(home, source, tmp_path / "here.jsonl"))
    there = _lines(_on_ray(home, source, tmp_path / "there.jsonl", two_nodes))
    assert sorted(x["custom_id"] for x in there) == sorted(f"q{i}" for i in range(120))
    assert next(x for x in there if x["custom_id"] == "q50")["error"]["code"] == "invalid_url"
    _same_lines({x["custom_id"]: x for x in here}, {x["custom_id"]: x for x in there})
