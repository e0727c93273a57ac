"""One model with damaged weights on disk never fails a listing: it is listed and marked."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import httpx
import pytest

from adapters.bootstrap import Settings, build_app
from tests.http.conftest import BASE

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

DAMAGED = "gte-base"  # a BERT model of the catalogue, not carried by an installed package
REPO = "thenlper/gte-base"


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A home whose gte-base folder holds a safetensors file with an absurd header length."""
    folder = tmp_path / "Embeddings" / REPO
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "bert"}')
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", 2**63 + 5) + b"{}")
    app = build_app(Settings(home=tmp_path, offline=True, log_format="json"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield client


async def test_ollama_tags_lists_a_damaged_model_and_says_why(http: httpx.AsyncClient) -> None:
    """/api/tags answers 200, with the damaged model's size and details.damaged; a sound
    model's details have no `damaged` at all."""
    tags = await http.get("/api/tags")
    assert tags.status_code == 200
    (listed,) = [m for m in tags.json()["models"] if m["name"] == f"{DAMAGED}:latest"]
    assert listed["size"] > 0
    assert "header" in listed["details"]["damaged"]
    others = [m for m in tags.json()["models"] if m["name"] != f"{DAMAGED}:latest"]
    assert all("damaged" not in m["details"] for m in others)


async def test_ollama_show_describes_a_damaged_model(http: httpx.AsyncClient) -> None:
    """/api/show answers 200 for it, with details.damaged set."""
    shown = await http.post("/api/show", json={"model": DAMAGED})
    assert shown.status_code == 200
    assert shown.json()["details"]["damaged"]


async def test_openai_models_list_a_damaged_model_and_say_why(http: httpx.AsyncClient) -> None:
    """/v1/models and /v1/models/{id} answer 200, with `damaged` on that model only."""
    listing = await http.get("/v1/models")
    assert listing.status_code == 200
    damaged = {m["id"]: m["damaged"] for m in listing.json()["data"] if "damaged" in m}
    assert list(damaged) == [DAMAGED]
    one = await http.get(f"/v1/models/{DAMAGED}")
    assert one.status_code == 200
    assert one.json()["damaged"] == damaged[DAMAGED]
