"""EmbeddingGemma downloaded by the real server from a stand-in hub, through both dialects.

The hub stand-in serves google/embeddinggemma-300m's layout, small and random
(tests/model_factory_gemma3.py), under its real repo id, beside weights files no family reads.
The real server (the console script) is asked for it by Ollama's names (`embeddinggemma`,
`embeddinggemma:300m`) and by repo id, on `POST /v1/embeddings` and `POST /api/embed`:

- by default, SentenceTransformer(folder).encode(texts) (unit vectors already: Normalize);
- `"normalize": false`, the same, since the model's own output ends in Normalize;
- `prompt_name: "query"` and `input_type: "search_query"`, encode(texts, prompt_name="query");
  `input_type: "search_document"`, encode(texts, prompt_name="document").

Everything runs once in a module fixture; what went wrong for one request is kept as text and
fails only its own test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest

from tests.corpus import LONG_TEXTS, VARIED_TEXTS
from tests.hub_standin import HubStandIn
from tests.model_factory import reference_model
from tests.model_factory_repos import write_repo_layout
from tests.parity.test_bert_parity import scaled_abs_diff
from tests.server_process import running_server
from tests.tolerances import MAX_ABS_DIFF, MIN_COSINE

pytestmark = [pytest.mark.slow, pytest.mark.reference]

REPO = "google/embeddinggemma-300m"
MODELS = ("embeddinggemma", "embeddinggemma:300m", REPO)
# short and hostile ones, and two far past the sliding window, one cut at 2,048 tokens
TEXTS = [*VARIED_TEXTS[:12], "数据" * 400, "word " * 600, LONG_TEXTS[-2]]
DIALECTS = {"openai": "/v1/embeddings", "ollama": "/api/embed"}
# what a request adds to {"model", "input"}, and the prompt sentence-transformers is asked with
ASKS: dict[str, tuple[dict[str, Any], str | None]] = {
    "default": ({}, None),
    "normalize false": ({"normalize": False}, None),
    "prompt_name query": ({"prompt_name": "query"}, "query"),
    "input_type search_query": ({"input_type": "search_query"}, "query"),
    "input_type search_document": ({"input_type": "search_document"}, "document"),
}
DECOYS = {"pytorch_model.bin": b"a pickle never fetched", "onnx/model.onnx": b"onnx"}

Vectors = np.ndarray


@dataclass
class Gathered:
    references: dict[str | None, Vectors]  # by prompt name
    answers: dict[tuple[str, str, str], Vectors | str]  # (model, dialect, ask) -> vectors
    fetched: set[str]


def _ask(client: httpx.Client, model: str, dialect: str, ask: str) -> Vectors | str:
    body = {"model": model, "input": TEXTS, **ASKS[ask][0]}
    try:
        answer = client.post(DIALECTS[dialect], json=body)
    except httpx.HTTPError as err:
        return f"{type(err).__name__}: {err}"
    if answer.status_code != 200:
        return f"{answer.status_code}: {answer.text[:500]}"
    payload = answer.json()
    rows = (
        [d["embedding"] for d in payload["data"]] if dialect == "openai" else payload["embeddings"]
    )
    return np.asarray(rows, dtype=np.float32)


@pytest.fixture(scope="module")
def gathered(tmp_path_factory: pytest.TempPathFactory) -> Gathered:
    root = tmp_path_factory.mktemp("gemma3")
    folder = write_repo_layout(REPO, root / "repo", seed=91)
    files = {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }
    model = reference_model(folder)
    g = Gathered({}, {}, set())
    for prompt_name in {prompt for _, prompt in ASKS.values()}:
        vectors = model.encode(TEXTS, prompt_name=prompt_name)
        g.references[prompt_name] = np.asarray(vectors, np.float32)
    with (
        HubStandIn({REPO: files | DECOYS}) as hub,
        running_server(root / "home", root / "server.log", {"HF_ENDPOINT": hub.url}) as url,
        httpx.Client(base_url=url, timeout=300) as client,
    ):
        for name in MODELS:
            for dialect in DIALECTS:
                for ask in ASKS:
                    g.answers[name, dialect, ask] = _ask(client, name, dialect, ask)
        g.fetched = set(hub.requested("GET"))
    return g


def _assert_close(answer: Vectors | str, reference: Vectors) -> None:
    assert not isinstance(answer, str), answer
    assert answer.shape == reference.shape
    diff = scaled_abs_diff(answer, reference)
    worst = int(np.argmax(diff.max(axis=1)))
    assert diff.max() < MAX_ABS_DIFF, f"{diff.max():.3g} at text {worst}: {TEXTS[worst][:40]!r}"
    cosine = (answer * reference).sum(axis=1) / (
        np.linalg.norm(answer, axis=1) * np.linalg.norm(reference, axis=1)
    )
    assert cosine.min() > MIN_COSINE, TEXTS[int(np.argmin(cosine))][:40]


@pytest.mark.parametrize("ask", list(ASKS))
@pytest.mark.parametrize("dialect", list(DIALECTS))
@pytest.mark.parametrize("model", MODELS)
def test_embeddinggemma_answers_as_sentence_transformers(
    gathered: Gathered, model: str, dialect: str, ask: str
) -> None:
    """Each name, dialect and prompt choice is encode() with the prompt it names."""
    _assert_close(gathered.answers[model, dialect, ask], gathered.references[ASKS[ask][1]])


def test_only_the_files_the_family_reads_are_downloaded(gathered: Gathered) -> None:
    """The weights come from model.safetensors and both Dense modules; no decoy is fetched."""
    assert "model.safetensors" in gathered.fetched
    assert {"2_Dense/model.safetensors", "3_Dense/model.safetensors"} <= gathered.fetched
    assert not gathered.fetched & set(DECOYS)
