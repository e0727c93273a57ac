"""Each deliberate defect of a rerank server is caught by the rerank checks that concern it, and
by no other; a correct server passes every rerank check.

The harness runs as users run it (`python -m conformance --dialect rerank`) against the tiny
servers of broken_rerankers.py, which score with a random-weight cross-encoder in
ms-marco-MiniLM-L6-v2's layout. The correct server and the one with sloppy scores are also given
that folder as `--reference`, so the fidelity checks run; for the others they are not applicable.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.conformance.broken_rerankers import DEFECTS, Defect, Scorer, serve
from tests.model_factory_cross_encoder import reference_cross_encoder, write_cross_encoder

pytestmark = [pytest.mark.slow, pytest.mark.reference]

_ROUTES = ("/rerank", "/v1/rerank", "/v2/rerank")
_SORTED = "rerank::test_results_are_sorted_by_score_highest_first"
_ONCE = "rerank::test_every_document_is_scored_once"
_TOP = "rerank::test_top_n_gives_the_n_best"
_ALL = "rerank::test_top_n_beyond_the_documents_gives_them_all"
_SHAPE = "rerank::test_answer_has_the_routes_shape"
_BAD = "rerank::test_a_bad_request_is_a_4xx_in_the_routes_envelope"
_FIDELITY = {
    *(f"rerank::test_scores_equal_the_reference_cross_encoder[{r}]" for r in _ROUTES),
    "rerank::test_tei_raw_scores_equal_the_reference_logits",
}
_WITH_REFERENCE: set[Defect] = {"none", "off-scores"}
_BAD_CASES = {
    f"{_BAD}[{case}-{route}]"
    for case in ("no-documents", "no-query", "documents-not-a-list", "unknown-model")
    for route in _ROUTES
    if not (case == "unknown-model" and route == "/rerank")
}
# what each defect must fail, by check name; a check that also catches a defect belongs here
_CAUGHT_BY: dict[Defect, set[str]] = {
    "unsorted": {f"{_SORTED}[{r}]" for r in _ROUTES},
    "ignores-top-n": {f"{_TOP}[/v1/rerank]", f"{_TOP}[/v2/rerank]"},
    "drops-documents": {
        "rerank::test_return_documents_gives_each_text_back",
        "rerank::test_return_text_gives_each_text_back",
    },
    "wrong-envelope": _BAD_CASES,
    "loses-a-document": {
        *(f"{_ONCE}[{r}]" for r in _ROUTES),
        f"{_ALL}[/v1/rerank]",
        f"{_ALL}[/v2/rerank]",
        "rerank::test_document_objects_score_as_strings",  # the lost one has no score to compare
    },
    "off-scores": _FIDELITY,
    "scores-as-strings": {
        *(f"{_SHAPE}[{r}]" for r in _ROUTES),
        f"{_TOP}[/v1/rerank]",  # subtracting strings
        f"{_TOP}[/v2/rerank]",
    },
    "refuses-document-objects": {"rerank::test_document_objects_score_as_strings"},
}


@dataclass(frozen=True)
class _Run:
    exit_code: int
    outcomes: dict[str, str]  # "suite::check" -> passed, failed, skipped
    output: str

    def named(self, outcome: str) -> set[str]:
        return {name for name, found in self.outcomes.items() if found == outcome}


def _run(defect: Defect, scorer: Scorer, folder: Path, report: Path) -> _Run:
    with serve(defect, scorer) as url:
        command = [sys.executable, "-m", "conformance", "--base-url", url, "--dialect", "rerank"]
        command += ["--model", "fake-reranker", "--json", str(report)]
        if defect in _WITH_REFERENCE:
            command += ["--reference", str(folder)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    checks = json.loads(report.read_text(encoding="utf-8"))
    outcomes = {f"{c['suite']}::{c['name']}": c["outcome"] for c in checks}
    return _Run(done.returncode, outcomes, done.stdout[-3000:])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[Defect, _Run]:
    import torch

    folder = write_cross_encoder(tmp_path_factory.mktemp("reranker"), "ms-marco", seed=16)
    model = reference_cross_encoder(folder)

    def scorer(query: str, documents: list[str]) -> tuple[np.ndarray, np.ndarray]:
        pairs = [(query, d) for d in documents]
        logits = model.predict(pairs, activation_fn=torch.nn.Identity())
        return np.asarray(model.predict(pairs), np.float64), np.asarray(logits, np.float64)

    reports = tmp_path_factory.mktemp("reports")
    defects: list[Defect] = ["none", *DEFECTS]
    with ThreadPoolExecutor(max_workers=3) as pool:  # each run is a Python start-up
        done = pool.map(lambda d: _run(d, scorer, folder, reports / f"{d}.json"), defects)
        return dict(zip(defects, done, strict=True))


@pytest.mark.parametrize("defect", DEFECTS)
def test_the_defect_is_caught_by_its_checks(defect: Defect, runs: dict[Defect, _Run]) -> None:
    """The checks that concern the defect fail, no other check does, and the run exits 1."""
    run = runs[defect]
    assert run.exit_code == 1, run.output
    assert run.named("failed") == _CAUGHT_BY[defect], run.output
    expected_na = set() if defect in _WITH_REFERENCE else _FIDELITY
    assert run.named("skipped") == expected_na, run.output


def test_a_correct_server_passes_every_rerank_check(runs: dict[Defect, _Run]) -> None:
    """Without a defect every rerank check passes, fidelity included: the failures above are
    the defects' doing, not the fake's; and every check is caught by some defect."""
    run = runs["none"]
    assert run.exit_code == 0, run.output
    assert run.named("passed") == set(run.outcomes), run.output
    caught = set().union(*_CAUGHT_BY.values())
    assert caught == set(run.outcomes), set(run.outcomes) - caught
