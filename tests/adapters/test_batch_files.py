"""`embedserve batch`'s files without a model: which kind a file is, chunks in order, the
output under a `.partial` name until whole, and request bodies refused in the server's words."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from adapters.bootstrap import Settings, build_app
from adapters.corpus.bodies import decode_body
from adapters.corpus.files import OutputFile, chunks, count_rows
from adapters.corpus.job import LINE, ROW, BatchJob, InputKind, OutputKind, input_kind, output_kind
from adapters.http.errors import MalformedBody
from adapters.http.openai import openai_body

BASE = "http://embedserve.localhost"
BATCH_LINE = {"custom_id": "a", "method": "POST", "url": "/v1/embeddings", "body": {}}


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_a_jsonl_whose_first_line_is_a_batch_request_is_a_batch_file(tmp_path: Path) -> None:
    """The first line decides: a custom_id and a body make an OpenAI Batch input file."""
    assert input_kind(_jsonl(tmp_path / "b.jsonl", [BATCH_LINE])) is InputKind.OPENAI_BATCH
    assert input_kind(_jsonl(tmp_path / "r.jsonl", [{"text": "x"}])) is InputKind.JSONL


def test_extensions_choose_readers_and_writers(tmp_path: Path) -> None:
    """.csv and .parquet read as such; .parquet and .jsonl write; others are refused by name."""
    assert input_kind(tmp_path / "a.csv") is InputKind.CSV
    assert input_kind(tmp_path / "a.parquet") is InputKind.PARQUET
    assert output_kind(tmp_path / "o.parquet") is OutputKind.PARQUET
    assert output_kind(tmp_path / "o.jsonl") is OutputKind.OPENAI_BATCH
    with pytest.raises(ValueError, match=r"o\.txt"):
        output_kind(tmp_path / "o.txt")
    with pytest.raises(ValueError, match=r"a\.xlsx"):
        input_kind(tmp_path / "a.xlsx")


@pytest.mark.parametrize("kind", [InputKind.JSONL, InputKind.CSV, InputKind.PARQUET])
def test_chunks_hold_every_row_once_in_order(tmp_path: Path, kind: InputKind) -> None:
    """Whatever the reader's own blocks, chunks are `size` rows, the last shorter, in order."""
    table = pa.table({"id": list(range(1000)), "text": [f"t{i}" for i in range(1000)]})
    path = tmp_path / f"rows.{kind.value}"
    if kind is InputKind.JSONL:
        _jsonl(path, table.to_pylist())
    elif kind is InputKind.CSV:
        pa_csv.write_csv(table, path)
    else:
        pq.write_table(table, path, row_group_size=333)
    job = BatchJob(model="m", source=kind)
    got = list(chunks(path, job, 300))
    assert [c.num_rows for c in got] == [300, 300, 300, 100]
    assert pa.concat_tables(got).column("id").to_pylist() == list(range(1000))
    assert count_rows(path, kind) in {1000, None}  # a CSV is not counted


def test_rows_without_an_id_column_are_numbered_for_the_batch_output(tmp_path: Path) -> None:
    """The Batch output names a row by its number where the input has no id column."""
    path = _jsonl(tmp_path / "r.jsonl", [{"text": f"t{i}"} for i in range(5)])
    job = BatchJob(model="m", output=OutputKind.OPENAI_BATCH)
    got = pa.concat_tables(chunks(path, job, 2))
    assert got.column(ROW).to_pylist() == [0, 1, 2, 3, 4]


def test_a_batch_file_is_read_as_its_non_blank_lines(tmp_path: Path) -> None:
    """Each line as text, as Ray Data's read_text reads it: bodies of any shape survive."""
    path = tmp_path / "b.jsonl"
    path.write_text('{"custom_id": "a"}\n\n{"custom_id": "b", "body": [1]}\n')
    job = BatchJob(model="m", source=InputKind.OPENAI_BATCH)
    got = pa.concat_tables(chunks(path, job, 10)).column(LINE).to_pylist()
    assert got == ['{"custom_id": "a"}', '{"custom_id": "b", "body": [1]}']


def test_an_output_appears_only_once_written_whole(tmp_path: Path) -> None:
    """Until the run ends well the rows lie under a .partial name; a failed run leaves none."""
    path = tmp_path / "o.parquet"
    with OutputFile(path, OutputKind.PARQUET) as output:
        output.write(pa.table({"id": [1]}))
        assert not path.exists()
    assert pq.read_table(path).column("id").to_pylist() == [1]
    failed = tmp_path / "f.jsonl"
    with pytest.raises(RuntimeError, match="stopped"):
        _write_then_fail(failed)
    assert list(tmp_path.iterdir()) == [path]


def _write_then_fail(path: Path) -> None:
    with OutputFile(path, OutputKind.OPENAI_BATCH) as output:
        output.write(pa.table({LINE: ["{}"]}))
        raise RuntimeError("stopped")


REFUSED_BODIES = [
    {"input": "x"},
    {"model": 5, "input": "x"},
    {"model": "m", "input": None},
    {"model": "m", "input": ["a", [1.5]]},
    {"model": "m", "input": "x", "dimensions": 0},
    {"model": "m", "input": "x", "encoding_format": "hex"},
    [1, 2],
]


@pytest.mark.parametrize("body", REFUSED_BODIES, ids=range(len(REFUSED_BODIES)))
async def test_a_body_is_refused_in_the_servers_words(tmp_path: Path, body: object) -> None:
    """What decode_body refuses, POST /v1/embeddings refuses with the same error body."""
    app = build_app(Settings(home=tmp_path, offline=True, log_format="json"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        answer = await http.post("/v1/embeddings", json=body)
    refused = decode_body(body)
    assert isinstance(refused, MalformedBody)
    assert answer.status_code == 400
    assert answer.json() == json.loads(json.dumps(openai_body(refused), default=_fields))


def _fields(struct: object) -> dict[str, object]:
    return {name: getattr(struct, name) for name in struct.__struct_fields__}  # type: ignore[attr-defined]


def test_a_body_the_route_takes_leniently_is_taken() -> None:
    """Litestar converts the body leniently: a number given as a string is a number."""
    data = decode_body({"model": "m", "input": "x", "dimensions": "8"})
    assert not isinstance(data, MalformedBody)
    assert data.dimensions == 8
