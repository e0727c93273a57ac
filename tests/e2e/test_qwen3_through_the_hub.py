"""Qwen3-Embedding through the real server, downloaded from the hub stand-in under its real
repo ids, in both dialects; its larger sizes refused for their memory before any weight.

The stand-in serves Qwen/Qwen3-Embedding-0.6B as a small random-weight model in the published
layout (bfloat16 weights, lasttoken pooling, Normalize, the query prompt, a tokenizer that
appends <|endoftext|> and pads left), and Qwen/Qwen3-Embedding-4B and -8B as their published
configs beside safetensors shards whose headers claim the real tensors (4.0 and 7.6 billion
bfloat16 weights) and hold none of their bytes. The server runs with `--max-memory 20GiB`:

- `qwen3-embedding:0.6b` and the repo id embed as sentence-transformers (float32, its own left
  padding) on /v1/embeddings and /api/embed, with the query prompt by `prompt_name` and by
  `input_type: search_query`;
- `qwen3-embedding:8b` and `qwen3-embedding` (latest) need 30 GB as float32, past --max-memory:
  a 400 in both dialects saying so;
- `qwen3-embedding:4b` needs 16 GB, within --max-memory, but twice that while it loads (the
  reference beside the engine it gates): past what this machine has available, a 400 too;
- no shard of the 4B or 8B is ever fetched but for the ranges that hold its header.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pytest

from adapters.machine_memory import available_memory
from tests.corpus import VARIED_TEXTS
from tests.hub_standin import HubStandIn, Seen
from tests.model_factory_qwen3 import published_repo_files, write_qwen3_model
from tests.parity.test_bert_parity import scaled_abs_diff
from tests.server_process import running_server
from tests.tolerances import MAX_ABS_DIFF, MIN_COSINE

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.slow, pytest.mark.reference]

SMALL, MEDIUM, LARGE = (f"Qwen/Qwen3-Embedding-{s}" for s in ("0.6B", "4B", "8B"))
TEXTS = VARIED_TEXTS[::4]
DIALECTS = {"openai": "/v1/embeddings", "ollama": "/api/embed"}
ASKS: dict[str, dict[str, Any]] = {
    "plain": {},
    "prompt_name": {"prompt_name": "query"},
    "input_type": {"input_type": "search_query"},
}
MAX_MEMORY = 20 * 2**30
# the 4B's float32 weights, twice: what its load holds at once where a fast engine is gated
MEDIUM_PEAK = 2 * 16_087_097_344


@dataclass
class Gathered:
    references: dict[str, np.ndarray] = field(default_factory=dict)  # "plain" / "query"
    answers: dict[tuple[str, str, str], np.ndarray | str] = field(default_factory=dict)
    refusals: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)
    requests: list[Seen] = field(default_factory=list)


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _embed(client: httpx.Client, model: str, dialect: str, ask: str) -> np.ndarray | str:
    answer = client.post(DIALECTS[dialect], json={"model": model, "input": TEXTS, **ASKS[ask]})
    if answer.status_code != 200:
        return f"{answer.status_code}: {answer.text[:500]}"
    payload = answer.json()
    rows = (
        payload["embeddings"] if dialect == "ollama" else [d["embedding"] for d in payload["data"]]
    )
    return np.asarray(rows, dtype=np.float32)


@pytest.fixture(scope="module")
def gathered(tmp_path_factory: pytest.TempPathFactory) -> Gathered:
    import torch
    from sentence_transformers import SentenceTransformer

    root = tmp_path_factory.mktemp("qwen3")
    folder = write_qwen3_model(root / "small", seed=91)
    reference = SentenceTransformer(
        str(folder), device="cpu", local_files_only=True, model_kwargs={"dtype": torch.float32}
    )
    g = Gathered()
    g.references["plain"] = np.asarray(reference.encode(TEXTS), np.float32)
    g.references["query"] = np.asarray(reference.encode(TEXTS, prompt_name="query"), np.float32)
    repos = {
        SMALL: _files(folder),
        MEDIUM: published_repo_files("4B", shards=2),
        LARGE: published_repo_files("8B", shards=4),
    }
    env = {"EMBEDSERVE_MAX_MEMORY": str(MAX_MEMORY)}
    with HubStandIn(repos) as hub:
        env["HF_ENDPOINT"] = hub.url
        with (
            running_server(root / "home", root / "server.log", env) as url,
            httpx.Client(base_url=url, timeout=300) as client,
        ):
            for model in ("qwen3-embedding:0.6b", SMALL):
                for dialect in DIALECTS:
                    for ask in ASKS:
                        g.answers[model, dialect, ask] = _embed(client, model, dialect, ask)
            for model in ("qwen3-embedding:4b", "qwen3-embedding:8b", "qwen3-embedding"):
                for dialect, path in DIALECTS.items():
                    answer = client.post(path, json={"model": model, "input": "hi"})
                    g.refusals[model, dialect] = (answer.status_code, answer.text)
        g.requests = list(hub.requests)
    return g


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("ask", list(ASKS))
@pytest.mark.parametrize("dialect", list(DIALECTS))
@pytest.mark.parametrize("model", ["qwen3-embedding:0.6b", SMALL])
def test_the_small_model_embeds_as_sentence_transformers(
    gathered: Gathered, model: str, dialect: str, ask: str
) -> None:
    """By Ollama's name and by repo id, with and without the query prompt, both dialects:
    sentence-transformers' float32 vectors (already unit length: the repo ends in Normalize)."""
    answer = gathered.answers[model, dialect, ask]
    assert not isinstance(answer, str), answer
    reference = gathered.references["plain" if ask == "plain" else "query"]
    assert answer.shape == reference.shape
    assert scaled_abs_diff(answer, reference).max() < MAX_ABS_DIFF
    assert (_unit(answer) * _unit(reference)).sum(axis=1).min() > MIN_COSINE


@pytest.mark.parametrize("dialect", list(DIALECTS))
@pytest.mark.parametrize("model", ["qwen3-embedding:8b", "qwen3-embedding"])
def test_past_max_memory_is_a_400_naming_the_limit(
    gathered: Gathered, model: str, dialect: str
) -> None:
    """The 8B's 30.3 GB as float32 pass --max-memory 20GiB: a 400 that says so."""
    status, body = gathered.refusals[model, dialect]
    assert status == 400, body
    assert "too large" in body
    assert "--max-memory" in body
    assert "28.2 GiB" in body
    if dialect == "openai":
        assert '"code":"model_too_large"' in body.replace(" ", "")


@pytest.mark.parametrize("dialect", list(DIALECTS))
def test_past_the_machines_memory_is_a_400_naming_it(gathered: Gathered, dialect: str) -> None:
    """The 4B fits --max-memory, but not twice over in what this machine has available."""
    available = available_memory()
    if available is None or available >= MEDIUM_PEAK:
        pytest.skip("this machine has room for the 4B's load: nothing to refuse")
    status, body = gathered.refusals["qwen3-embedding:4b", dialect]
    assert status == 400, body
    assert "the memory this machine has available" in body


def test_no_weight_of_a_refused_model_is_fetched(gathered: Gathered) -> None:
    """The 4B's and 8B's shards are asked for only by HEAD and by ranges within their headers."""
    shards = [s for s in gathered.requests if s.file and "-of-" in s.file]
    assert shards
    gets = [s for s in shards if s.method == "GET"]
    assert all(s.range is not None for s in gets), gets
    header_ends = [int(s.range.rsplit("-", 1)[1]) for s in gets if s.range]
    assert max(header_ends) < 200_000
