"""domain imports the standard library, numpy and itself, nothing else.

An allow list, read from the source: import-linter's forbidden contracts name the packages to
keep out, and would let through any they do not name (onnx, PIL, pyarrow, httpx, ...).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import domain

_ALLOWED = frozenset(sys.stdlib_module_names) | {"numpy", "domain"}


def _imported(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in the file, at any depth: those
    under `if TYPE_CHECKING:` and inside functions too."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def test_domain_imports_only_the_standard_library_and_numpy() -> None:
    """Every module under domain/ imports only the stdlib, numpy, or domain itself."""
    root = Path(domain.__file__).parent
    modules = sorted(root.rglob("*.py"))
    assert len(modules) > 10  # the walk found the package, not an empty folder
    outside = [
        f"{path.relative_to(root.parent)}:{line}: {name}"
        for path in modules
        for line, name in _imported(path)
        if name not in _ALLOWED
    ]
    assert outside == []
