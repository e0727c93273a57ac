"""What starting the console script imports: every start pays for it, in time and memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]


def test_the_console_script_leaves_the_corpus_and_cluster_libraries_out() -> None:
    """pyarrow (~17 MB resident, ~30 ms) is for `embedserve batch`'s files and ray for
    `--ray`: `embedserve serve` imports neither."""
    probe = (
        "import sys, adapters.cli; "
        "print(' '.join(m for m in ('pyarrow', 'ray') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    assert loaded == []
