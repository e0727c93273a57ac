"""Hugging Face repo ids and Ollama's library names through the real server and console script.

A hub stand-in serves small random-weight models under real repo ids, written by
sentence-transformers in the layouts the real repos have: BAAI/bge-small-en-v1.5 (BERT, CLS
pooling, Normalize; no catalogue entry, so it is asked for by repo id), BAAI/bge-m3 (XLM-RoBERTa,
CLS, Normalize; Ollama's `bge-m3`), acme/mini-bert (a plain transformers BERT, for pull / list /
rm), and jinaai/jina-embeddings-v2-base-en (config.json naming JinaBertForMaskedLM, with custom
code, beside weights that must never be fetched). The real server starts with HF_ENDPOINT at the
stand-in; then a second one starts on the same home, offline (HF_HUB_OFFLINE=1, the hub gone),
with `--allow-models 'BAAI/*'`.

Everything runs once in a module fixture; the tests read what it gathered.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import ollama
import openai
import pytest

from tests.corpus import VARIED_TEXTS
from tests.hub_standin import HubStandIn, Seen, unreachable_url
from tests.model_factory import reference_model, write_bert_model
from tests.model_factory_roberta import write_roberta_model
from tests.parity.test_bert_parity import scaled_abs_diff
from tests.server_process import running_server
from tests.tolerances import MAX_ABS_DIFF, MIN_COSINE

pytestmark = [pytest.mark.slow, pytest.mark.reference]

BGE = "BAAI/bge-small-en-v1.5"
BGE_M3 = "BAAI/bge-m3"
MINI = "acme/mini-bert"
JINA = "jinaai/jina-embeddings-v2-base-en"
TEXTS = VARIED_TEXTS
SCRIPT = Path(sys.executable).with_name("embedserve")
CLI_TIMEOUT_S = 120

WRITERS: dict[str, Callable[[Path], Path]] = {
    BGE: functools.partial(write_bert_model, pooling="cls", normalize=True, seed=41),
    BGE_M3: functools.partial(
        write_roberta_model, flavour="xlm-roberta", pooling="cls", normalize=True, seed=42
    ),
    MINI: functools.partial(write_bert_model, layout="transformers", seed=43),
}
JINA_FILES = {
    "config.json": json.dumps(
        {
            "architectures": ["JinaBertForMaskedLM"],
            "model_type": "bert",
            "auto_map": {
                "AutoModel": "jinaai/jina-bert-implementation--modeling_bert.JinaBertModel"
            },
            "hidden_size": 32,
        }
    ).encode(),
    "modules.json": b"[]",
    "model.safetensors": b"weights that must never be fetched",
    "modeling_bert.py": b"raise SystemExit('never run')",
}
# an Ollama library name whose architecture does not run here yet
LISTED = "qwen3-embedding:0.6b"  # a library name, not pulled: listed with size 0

Vectors = np.ndarray


@dataclass
class Gathered:
    references: dict[str, Vectors] = field(default_factory=dict)
    vectors: dict[str, Vectors | str] = field(default_factory=dict)  # what went wrong, as text
    statuses: dict[str, tuple[int, str]] = field(default_factory=dict)  # status, body
    bodies: dict[str, Any] = field(default_factory=dict)
    cli: dict[str, tuple[int, str]] = field(default_factory=dict)  # exit code, output
    requests: list[Seen] = field(default_factory=list)
    home: Path = Path()


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _cli(home: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "EMBEDSERVE_"))}
    done = subprocess.run(
        [str(SCRIPT), *args, "--home", str(home)],
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def _embed(url: str, way: str, model: str) -> Vectors | str:
    try:
        if way == "openai":
            with openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0) as oai:
                data = oai.embeddings.create(model=model, input=TEXTS, encoding_format="float").data
                return np.asarray([d.embedding for d in data], dtype=np.float32)
        with ollama.Client(host=url) as oll:
            return np.asarray(oll.embed(model=model, input=TEXTS).embeddings, dtype=np.float32)
    except (openai.OpenAIError, ollama.ResponseError, httpx.HTTPError) as err:
        return f"{way}: {type(err).__name__}: {err}"


def _status(url: str, name: str, model: str) -> tuple[int, str]:
    """/v1/embeddings and /api/embed answers for `model`, keyed `openai <name>` / `ollama ..`"""
    out = {}
    for way, path in (("openai", "/v1/embeddings"), ("ollama", "/api/embed")):
        answer = httpx.post(f"{url}{path}", json={"model": model, "input": "hi"}, timeout=60)
        out[f"{way} {name}"] = (answer.status_code, answer.text)
    return out  # type: ignore[return-value]


def _online(g: Gathered, url: str, env: dict[str, str]) -> None:
    for way in ("openai", "ollama"):
        g.vectors[f"{way} {BGE}"] = _embed(url, way, BGE)
    with ollama.Client(host=url) as oll:
        g.bodies["pull bge-m3"] = [p.status for p in oll.pull("bge-m3", stream=True)]
    g.vectors["ollama bge-m3"] = _embed(url, "ollama", "bge-m3")
    for name, model in (
        ("custom-code repo", JINA),
        ("missing", "nobody/nothing"),
    ):
        g.statuses |= _status(url, name, model)
    g.bodies["v1 model"] = httpx.get(f"{url}/v1/models/{BGE}", timeout=30).json()
    g.bodies["show"] = httpx.post(f"{url}/api/show", json={"model": BGE}, timeout=30).json()
    g.cli["pull mini"] = _cli(g.home, env, "pull", MINI)
    g.bodies["tags"] = httpx.get(f"{url}/api/tags", timeout=30).json()["models"]
    g.bodies["v1 models"] = httpx.get(f"{url}/v1/models", timeout=30).json()["data"]
    g.cli["list"] = _cli(g.home, env, "list")
    deleted = httpx.request("DELETE", f"{url}/api/delete", json={"model": MINI}, timeout=30)
    g.statuses["delete mini"] = (deleted.status_code, deleted.text)
    g.cli["pull mini again"] = _cli(g.home, env, "pull", MINI)
    g.cli["rm mini"] = _cli(g.home, env, "rm", MINI)
    g.cli["list after rm"] = _cli(g.home, env, "list")


def _offline(g: Gathered, url: str) -> None:
    g.vectors[f"offline {BGE}"] = _embed(url, "openai", BGE)
    g.vectors["offline bge-m3"] = _embed(url, "ollama", "bge-m3")
    g.statuses |= _status(url, "refused all-minilm", "all-minilm")
    g.statuses |= _status(url, "offline missing", "BAAI/not-downloaded")
    g.bodies["offline tags"] = httpx.get(f"{url}/api/tags", timeout=30).json()["models"]


@pytest.fixture(scope="module")
def gathered(tmp_path_factory: pytest.TempPathFactory) -> Gathered:
    root = tmp_path_factory.mktemp("repo-ids")
    folders = {
        repo: write(root / "repos" / repo.replace("/", "--")) for repo, write in WRITERS.items()
    }
    g = Gathered(home=root / "home")
    for repo in (BGE, BGE_M3):
        model = reference_model(folders[repo])
        g.references[repo] = np.asarray(model.encode(TEXTS, convert_to_numpy=True), np.float32)
    repos = {
        repo: _files(folder) | {"pytorch_model.bin": b"decoy"} for repo, folder in folders.items()
    }
    with HubStandIn(repos | {JINA: JINA_FILES}) as hub:
        env = {"HF_ENDPOINT": hub.url}
        with running_server(g.home, root / "online.log", env) as url:
            _online(g, url, env)
        g.requests = list(hub.requests)
    offline = {
        "HF_HUB_OFFLINE": "1",
        "HF_ENDPOINT": unreachable_url(),
        "EMBEDSERVE_ALLOW_MODELS": "BAAI/*",
    }
    with running_server(g.home, root / "offline.log", offline) as url:
        _offline(g, url)
    return g


def _close(ours: Vectors | str, reference: Vectors) -> None:
    assert not isinstance(ours, str), ours
    assert ours.shape == reference.shape
    assert scaled_abs_diff(ours, reference).max() < MAX_ABS_DIFF
    norms = np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1)
    assert ((ours * reference).sum(axis=1) / norms).min() > MIN_COSINE


@pytest.mark.parametrize("way", ["openai", "ollama"])
def test_a_repo_id_embeds_as_sentence_transformers_in_both_dialects(
    gathered: Gathered, way: str
) -> None:
    """BAAI/bge-small-en-v1.5 by repo id: CLS pooling and Normalize, read from its own files."""
    _close(gathered.vectors[f"{way} {BGE}"], gathered.references[BGE])


def test_ollamas_name_pulls_through_the_sdk_and_embeds(gathered: Gathered) -> None:
    """ollama.Client().pull("bge-m3") streams to success; bge-m3 then equals the reference."""
    statuses = gathered.bodies["pull bge-m3"]
    assert statuses[0] == "pulling manifest"
    assert statuses[-1] == "success"
    _close(gathered.vectors["ollama bge-m3"], gathered.references[BGE_M3])


@pytest.mark.parametrize("way", ["openai", "ollama"])
@pytest.mark.parametrize(
    ("name", "architecture"),
    [("custom-code repo", "JinaBertForMaskedLM")],
)
def test_an_architecture_we_do_not_run_is_a_400_naming_it(
    gathered: Gathered, way: str, name: str, architecture: str
) -> None:
    status, body = gathered.statuses[f"{way} {name}"]
    assert status == 400
    assert architecture in body
    assert "BertModel" in body.replace(architecture, "")


def test_no_file_of_a_refused_repo_but_its_configs_is_asked_for(gathered: Gathered) -> None:
    """Its weights and its Python code are never requested, not even by HEAD."""
    asked = {s.file for s in gathered.requests if s.file and s.path.startswith(f"/{JINA}/")}
    assert asked == {"config.json", "modules.json"}


@pytest.mark.parametrize("way", ["openai", "ollama"])
def test_a_repo_the_hub_lacks_is_the_404_of_an_unknown_model(gathered: Gathered, way: str) -> None:
    status, body = gathered.statuses[f"{way} missing"]
    assert status == 404
    assert "nobody/nothing" in body


def test_a_repo_id_model_is_shown_and_listed_under_its_repo_id(gathered: Gathered) -> None:
    """/v1/models/{org}/{name} and /api/show describe it; /api/tags and /v1/models list it,
    and the library names awaiting their architecture are listed with size 0."""
    assert gathered.bodies["v1 model"]["id"] == BGE
    assert gathered.bodies["show"]["model_info"]["general.source"] == BGE
    tags = {m["name"]: m for m in gathered.bodies["tags"]}
    assert tags[f"{BGE}:latest"]["size"] > 0
    # the generated model's width (32), read from its files: the real repo's would be 384
    assert tags[f"{BGE}:latest"]["details"]["embedding_length"] == 32
    assert tags["nomic-embed-text:latest"]["size"] == 0  # runs, not downloaded
    assert tags[LISTED]["size"] == 0
    assert tags["snowflake-arctic-embed:22m"]["size"] == 0
    assert BGE in {m["id"] for m in gathered.bodies["v1 models"]}


def test_pull_list_delete_and_rm_handle_a_repo_id(gathered: Gathered) -> None:
    """`embedserve pull` and `list` see it; DELETE /api/delete and `embedserve rm` remove it."""
    assert gathered.cli["pull mini"][0] == 0, gathered.cli["pull mini"][1]
    assert f"{MINI}:latest" in {m["name"] for m in gathered.bodies["tags"]}
    code, listing = gathered.cli["list"]
    assert code == 0
    assert MINI in listing
    assert gathered.statuses["delete mini"][0] == 200
    assert gathered.cli["pull mini again"][0] == 0
    assert gathered.cli["rm mini"] == (0, f"deleted '{MINI}'\n")
    assert MINI not in gathered.cli["list after rm"][1]
    assert not (gathered.home / "Embeddings" / MINI).exists()


def test_offline_a_downloaded_repo_id_answers_as_before(gathered: Gathered) -> None:
    """A restart with the hub gone resolves the repo-id model from its folder."""
    ours = gathered.vectors[f"offline {BGE}"]
    assert not isinstance(ours, str), ours
    assert np.array_equal(ours, gathered.vectors[f"openai {BGE}"])
    _close(gathered.vectors["offline bge-m3"], gathered.references[BGE_M3])
    assert gathered.statuses["openai offline missing"][0] == 404


@pytest.mark.parametrize("way", ["openai", "ollama"])
def test_allow_models_refuses_what_it_does_not_match(gathered: Gathered, way: str) -> None:
    """With --allow-models 'BAAI/*', all-minilm is an unknown model, and not listed."""
    assert gathered.statuses[f"{way} refused all-minilm"][0] == 404
    listed = {m["name"] for m in gathered.bodies["offline tags"]}
    assert f"{BGE}:latest" in listed
    assert "bge-m3:latest" in listed
    assert not {"all-minilm:latest", "all-MiniLM-L6-v2:latest", "nomic-embed-text:latest"} & listed
