"""The HTTP layer enters the application by its front door, and by nothing else."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HTTP = Path(__file__).resolve().parents[2] / "adapters" / "http"
ALLOWED = {"application.front_door"}


def _application_imports(module: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "application"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("application"):
            found.add(str(node.module))
    return found


@pytest.mark.parametrize("module", sorted(HTTP.glob("*.py")), ids=lambda p: p.name)
def test_http_modules_import_only_the_front_door_from_the_application(module: Path) -> None:
    """No module under adapters/http reaches the registry, the catalogue or a loaded model:
    the application's front door (application/front_door.py) is its only way in."""
    assert _application_imports(module) <= ALLOWED


def test_the_check_sees_a_reach_past_the_front_door(tmp_path: Path) -> None:
    """The walk finds both spellings of an import, so the test above can fail."""
    module = tmp_path / "reach.py"
    module.write_text(
        "import application.lifecycle\nfrom application.catalogue import Catalogue\n",
        encoding="utf-8",
    )
    assert _application_imports(module) == {"application.lifecycle", "application.catalogue"}
