"""The real server, started by its console script on 127.0.0.1, driven by the official SDKs.

One server for the module. Its Hugging Face endpoint is a stand-in on 127.0.0.1 that serves a
small random-weight BERT under msmarco-bert-base-dot-v5's repo id, so downloads run for real.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import ollama
import openai
import pytest

from tests.corpus import VARIED_TEXTS
from tests.hub_standin import HubStandIn
from tests.model_factory import minilm_folder, reference_model, write_bert_model
from tests.server_process import running_server
from tests.tolerances import MAX_ABS_DIFF

pytestmark = [pytest.mark.slow, pytest.mark.reference]

MSMARCO_REPO = "sentence-transformers/msmarco-bert-base-dot-v5"
_STARTUP_S = 60.0


@dataclass
class Server:
    url: str
    home: Path
    log: Path
    hub: HubStandIn
    msmarco_folder: Path

    def log_lines(self) -> list[dict[str, object]]:
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


def _repo_files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("e2e")
    source = write_bert_model(root / "msmarco-source", pooling="mean", normalize=False, seed=7)
    decoys = {"tf_model.h5": b"decoy", "onnx/model.onnx": b"decoy", "pytorch_model.bin": b"x"}
    with HubStandIn({MSMARCO_REPO: _repo_files(source) | decoys}) as hub:
        log = root / "server.log"
        env = {"HF_ENDPOINT": hub.url, "EMBEDSERVE_LOG_FORMAT": "json"}
        with running_server(root / "home", log, env) as url:
            yield Server(url, root / "home", log, hub, source)


@pytest.fixture(scope="module")
def oai(server: Server) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0) as client:
        yield client


@pytest.fixture(scope="module")
def oll(server: Server) -> Iterator[ollama.Client]:
    with ollama.Client(host=server.url) as client:
        yield client


@pytest.fixture(scope="module")
def web(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url) as client:
        yield client


@pytest.fixture(scope="module")
def minilm_reference() -> object:
    return reference_model(minilm_folder())


def test_openai_sdk_matches_sentence_transformers(
    oai: openai.OpenAI, minilm_reference: object
) -> None:
    """Over 100+ varied texts, the default base64 path equals sentence-transformers within 1e-5."""
    result = oai.embeddings.create(model="all-MiniLM-L6-v2", input=VARIED_TEXTS)
    ours = np.asarray([d.embedding for d in result.data], dtype=np.float32)
    reference = minilm_reference.encode(VARIED_TEXTS, convert_to_numpy=True)  # type: ignore[attr-defined]
    assert len(VARIED_TEXTS) >= 100
    assert np.abs(ours - reference).max() < MAX_ABS_DIFF


def test_usage_counts_the_tokens_the_reference_tokenizer_makes(
    oai: openai.OpenAI, minilm_reference: object
) -> None:
    """usage.prompt_tokens is the reference's token count after its own truncation."""
    features = minilm_reference.preprocess(VARIED_TEXTS)  # type: ignore[attr-defined]
    expected = int(features["attention_mask"].sum())
    result = oai.embeddings.create(model="all-minilm", input=VARIED_TEXTS, encoding_format="float")
    assert result.usage.prompt_tokens == expected
    assert result.usage.total_tokens == expected


def test_float_and_base64_agree(oai: openai.OpenAI) -> None:
    """encoding_format="float" and the SDK's default base64 carry the same float32 values."""
    texts = VARIED_TEXTS[:20]
    b64 = oai.embeddings.create(model="all-MiniLM-L6-v2", input=texts)
    flt = oai.embeddings.create(model="all-MiniLM-L6-v2", input=texts, encoding_format="float")
    assert [d.embedding for d in b64.data] == [d.embedding for d in flt.data]


def test_ollama_sdk_endpoints(oll: ollama.Client, minilm_reference: object) -> None:
    """embed, embeddings, list, show and ps all parse in the official client."""
    texts = VARIED_TEXTS[:16]
    embedded = oll.embed(model="all-minilm", input=texts)
    reference = minilm_reference.encode(texts, convert_to_numpy=True, normalize_embeddings=True)  # type: ignore[attr-defined]
    assert np.abs(np.asarray(embedded.embeddings) - reference).max() < MAX_ABS_DIFF
    first = next(i for i, t in enumerate(texts) if t)  # an empty prompt embeds nothing
    legacy = oll.embeddings(model="all-minilm", prompt=texts[first])
    assert np.abs(np.asarray(legacy.embedding) - reference[first]).max() < MAX_ABS_DIFF
    assert "all-MiniLM-L6-v2:latest" in [m.model for m in oll.list().models]
    assert oll.show("all-minilm").modelinfo is not None
    assert "all-MiniLM-L6-v2:latest" in [m.model for m in oll.ps().models]


def test_version_and_liveness_over_plain_http(web: httpx.Client) -> None:
    """The calls the ollama SDK does not make: /api/version, GET and HEAD /."""
    version = web.get("/api/version").json()["version"]
    assert all(part.isdigit() for part in version.split("."))
    assert web.get("/").text == "Ollama is running"
    assert web.head("/").status_code == 200


def test_a_catalogue_model_downloads_on_first_use(
    oai: openai.OpenAI, oll: ollama.Client, server: Server
) -> None:
    """msmarco-bert-base-dot-v5 (no Normalize module) comes from the hub stand-in, only its
    needed files, and equals the reference: at unit length on /v1 and /api/embed, as is on /v1
    with `"normalize": false`."""
    texts = VARIED_TEXTS[:40]
    raw = oai.embeddings.create(
        model="msmarco-bert-base-dot-v5",
        input=texts,
        encoding_format="float",
        extra_body={"normalize": False},
    )
    ours = np.asarray([d.embedding for d in raw.data], dtype=np.float32)
    reference = reference_model(server.msmarco_folder).encode(texts, convert_to_numpy=True)
    scale = max(1.0, float(np.abs(reference).max()))  # unnormalised: the tolerance is relative
    assert np.abs(ours - reference).max() < MAX_ABS_DIFF * scale
    assert (
        np.linalg.norm(reference, axis=1).min() > 1.5
    )  # not unit vectors: the check means something
    expected = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    unit = np.asarray(oll.embed(model="msmarco-bert-base-dot-v5", input=texts).embeddings)
    assert np.abs(unit - expected).max() < MAX_ABS_DIFF
    v1 = oai.embeddings.create(model="msmarco-bert-base-dot-v5", input=texts).data
    assert np.abs(np.asarray([d.embedding for d in v1]) - expected).max() < MAX_ABS_DIFF
    fetched = set(server.hub.requested("GET"))
    assert not fetched & {"tf_model.h5", "onnx/model.onnx", "pytorch_model.bin"}
    assert (server.home / "Embeddings" / MSMARCO_REPO / "model.safetensors").is_file()
    assert "msmarco-bert-base-dot-v5:latest" in [m.model for m in oll.list().models]


def test_every_embed_request_writes_one_structured_log_line(
    web: httpx.Client, server: Server
) -> None:
    """JSON lines with dialect, model, inputs, tokens, status and duration; never the text."""
    secret = "a sentence that must never appear in the log"
    web.post("/api/embed", json={"model": "all-minilm", "input": [secret]})
    time.sleep(0.2)  # the server flushes its log line after answering
    lines = [line for line in server.log_lines() if line.get("event") == "embed"]
    last = lines[-1]
    assert {"dialect", "model", "n_inputs", "prompt_tokens", "status", "duration_ms"} <= set(last)
    assert last["status"] == 200
    assert secret not in server.log.read_text(encoding="utf-8")
