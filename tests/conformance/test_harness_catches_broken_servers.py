"""Each deliberate defect is caught by the checks that concern it; a correct server passes them.

The harness runs as users run it (`python -m conformance`), against tiny servers from
broken_servers.py, and the JSON report says which checks failed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conformance.broken_servers import Defect, serve

pytestmark = pytest.mark.slow

_CHECKS: dict[Defect, tuple[str, set[str]]] = {
    "unnormalised": ("ollama", {"properties::test_api_embed_rows_have_unit_norm"}),
    "500-on-empty": ("openai", {"openai::test_empty_string_gives_one_embedding"}),
    "reordered": (
        "openai",
        {"properties::test_rows_come_back_in_input_order", "openai::test_rows_follow_input_order"},
    ),
    "ignores-dimensions": (
        "openai",
        {
            "properties::test_dimensions_is_the_renormalised_prefix",
            "openai::test_dimensions_is_the_renormalised_prefix",
        },
    ),
}


def _run(url: str, dialect: str, report: Path) -> tuple[int, dict[str, str]]:
    command = [sys.executable, "-m", "conformance", "--base-url", url, "--model", "fake"]
    command += ["--dialect", dialect, "--suite", "properties", "--suite", dialect]
    command += ["--json", str(report)]
    done = subprocess.run(command, capture_output=True, timeout=300, check=False)
    checks = json.loads(report.read_text(encoding="utf-8"))
    return done.returncode, {f"{c['suite']}::{c['name']}": c["outcome"] for c in checks}


@pytest.mark.parametrize("defect", list(_CHECKS))
def test_the_defect_is_caught_by_its_checks(defect: Defect, tmp_path: Path) -> None:
    """The checks that concern the defect fail, and the run exits non-zero."""
    dialect, checks = _CHECKS[defect]
    with serve(defect) as url:
        code, outcomes = _run(url, dialect, tmp_path / "report.json")
    assert code != 0
    assert {name: outcomes.get(name) for name in checks} == dict.fromkeys(checks, "failed")


@pytest.mark.parametrize("dialect", ["openai", "ollama"])
def test_a_correct_server_passes_those_checks(dialect: str, tmp_path: Path) -> None:
    """Without a defect the same checks pass: the failures above are the defects' doing."""
    concerned = {n for d, names in _CHECKS.values() if d == dialect for n in names}
    with serve("none") as url:
        _, outcomes = _run(url, dialect, tmp_path / "report.json")
    assert {name: outcomes.get(name) for name in concerned} == dict.fromkeys(concerned, "passed")
