"""The server writes only under --home: loading a model on any engine leaves $HOME untouched.

ONNX Runtime and OpenVINO each wrote telemetry files under the user's home when imported
(~/.cache/Microsoft/DeveloperTools/.onnxruntime, ~/intel); the engines turn that off before the
runtimes load. Each case runs in a fresh process, as the runtimes act at import.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("engine", ["numpy", "onnxruntime", "openvino", "auto"])
def test_loading_a_model_writes_nothing_under_home_outside_embedserve_home(
    engine: str, tmp_path: Path
) -> None:
    """`embedserve embed` (the server's own wiring, in process) with $HOME an empty folder and
    --home elsewhere: the model loads and embeds on `engine`, and $HOME stays empty."""
    pytest.importorskip(engine if engine in {"onnxruntime", "openvino"} else "numpy")
    user_home, home = tmp_path / "user", tmp_path / "embedserve-home"
    user_home.mkdir()
    # every default location a library derives from the user's home points into it
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("HF_", "EMBEDSERVE_", "XDG_")) and k != "ORT_DISABLE_TELEMETRY"
    }
    env |= {"HOME": str(user_home), "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "adapters.cli", "embed", "all-MiniLM-L6-v2", "hello"]
    command += ["--engine", engine, "--home", str(home)]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert list(user_home.rglob("*")) == []
    if engine != "numpy":
        assert list((home / "Embeddings" / ".graphs").glob("*.onnx"))  # a graph engine ran
