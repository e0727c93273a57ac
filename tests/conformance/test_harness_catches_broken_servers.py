"""Each deliberate defect is caught by the checks that concern it, and by no other; a correct
server passes every check of the same suites.

The harness runs as users run it (`python -m conformance`, property and robustness suites, both
dialects) against the tiny servers of broken_servers.py; its JSON report says which checks
failed. The five runs go in parallel, each against its own server.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conformance.broken_servers import DEFECTS, Defect, serve

pytestmark = pytest.mark.slow

_EMPTY = "robustness::test_empty_and_blank_inputs_are_not_server_errors"
# what each defect must fail, by check name; a check that also catches a defect belongs here
_CAUGHT_BY: dict[Defect, set[str]] = {
    "unnormalised": {
        "properties::test_api_embed_rows_have_unit_norm",
        "properties::test_both_dialects_agree",
        "properties::test_dimensions_is_the_renormalised_prefix[openai]",
        "properties::test_dimensions_is_the_renormalised_prefix[ollama]",
    },
    "500-on-empty": {
        *(f"{_EMPTY}[{case}-openai]" for case in ("empty", "list-of-empty", "empty-list")),
        *(f"{_EMPTY}[{case}-ollama]" for case in ("empty", "list-of-empty", "empty-list")),
        f"{_EMPTY}[empty-and-text-openai]",
        f"{_EMPTY}[empty-and-text-ollama]",
        f"{_EMPTY}[null-ollama]",  # Ollama reads a null input as no input
    },
    "reordered": {
        "properties::test_a_text_embeds_the_same_alone_and_in_any_batch[openai]",
        "properties::test_a_text_embeds_the_same_alone_and_in_any_batch[ollama]",
        "properties::test_rows_come_back_in_input_order[openai]",
        "properties::test_rows_come_back_in_input_order[ollama]",
        "robustness::test_sixty_four_concurrent_clients_each_get_their_own_answer[openai]",
        "robustness::test_sixty_four_concurrent_clients_each_get_their_own_answer[ollama]",
    },
    "ignores-dimensions": {
        "properties::test_dimensions_is_the_renormalised_prefix[openai]",
        "properties::test_dimensions_is_the_renormalised_prefix[ollama]",
    },
}
# the /v1 unit-norm check applies to normalised models only; unnormalised /v1 vectors make it N/A
_NOT_APPLICABLE: dict[Defect, set[str]] = {
    "unnormalised": {"properties::test_v1_rows_have_unit_norm_for_a_normalised_model"},
}


@dataclass(frozen=True)
class _Run:
    exit_code: int
    outcomes: dict[str, str]  # "suite::check" -> passed, failed, skipped
    output: str

    def named(self, outcome: str) -> set[str]:
        return {name for name, found in self.outcomes.items() if found == outcome}


def _run(defect: Defect, report: Path) -> _Run:
    with serve(defect) as url:
        command = [sys.executable, "-m", "conformance", "--base-url", url, "--model", "fake"]
        command += ["--suite", "properties", "--suite", "robustness", "--json", str(report)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    checks = json.loads(report.read_text(encoding="utf-8"))
    outcomes = {f"{c['suite']}::{c['name']}": c["outcome"] for c in checks}
    return _Run(done.returncode, outcomes, done.stdout[-3000:])


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[Defect, _Run]:
    folder = tmp_path_factory.mktemp("reports")
    defects: list[Defect] = ["none", *DEFECTS]
    with ThreadPoolExecutor(max_workers=len(defects)) as pool:
        done = pool.map(lambda d: _run(d, folder / f"{d}.json"), defects)
        return dict(zip(defects, done, strict=True))


@pytest.mark.parametrize("defect", DEFECTS)
def test_the_defect_is_caught_by_its_checks(defect: Defect, runs: dict[Defect, _Run]) -> None:
    """The checks that concern the defect fail, no other check does, and the run exits 1."""
    run = runs[defect]
    assert run.exit_code == 1, run.output
    assert run.named("failed") == _CAUGHT_BY[defect], run.output
    assert run.named("skipped") == _NOT_APPLICABLE.get(defect, set()), run.output


def test_a_correct_server_passes_every_check(runs: dict[Defect, _Run]) -> None:
    """Without a defect every check of the two suites passes: the failures above are the
    defects' doing, not the fake's."""
    run = runs["none"]
    assert run.exit_code == 0, run.output
    assert run.named("passed") == set(run.outcomes), run.output
    caught = set().union(*_CAUGHT_BY.values(), *_NOT_APPLICABLE.values())
    assert caught <= set(run.outcomes)
