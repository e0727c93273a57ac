"""`embedserve ray serve` with two replicas on the two-node cluster (1 CPU each, so the two
replicas can only run one per node): both dialects, the conformance harness, the single
server's vectors, and a replica killed under load.

The tests share one deployment and run in file order; the last one stops it, so the cluster's
CPUs are free again for the Ray tests that follow on the same session cluster.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import ray
from ray import serve
from ray.serve._private.constants import SERVE_CONTROLLER_NAME, SERVE_NAMESPACE

from adapters.on_ray.serve_app import APP_NAME, DEPLOYMENT_NAME
from tests.ray.serve_process import RayServe, start
from tests.server_process import _free_port, running_server

pytestmark = [pytest.mark.slow]

_ENGINE = ["--engine", "onnxruntime", "--threads", "1"]  # as each replica runs: 1 CPU each
_REPLACED_S = 180.0
_TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "",
    "x",
    "東京は日本の首都です。 مرحبا بالعالم 🙂",
    "   spaced   out   ",
    "word " * 400,  # past max_seq_length: truncated
]


@pytest.fixture(scope="module")
def deployed(two_nodes: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayServe]:
    root = tmp_path_factory.mktemp("ray-serve")
    args = ["--address", two_nodes, "--replicas", "2", "--proxy-location", "HeadOnly"]
    args += ["--port", str(_free_port()), "--home", str(root / "home"), *_ENGINE]
    served = start(args, root / "stdout.txt", root / "stderr.txt")
    try:
        yield served
    finally:
        served.stop()


def _replicas() -> list[dict[str, Any]]:
    """The app's live replica actors, from the GCS's actor table (Ray's state API needs the
    dashboard, which the test cluster does not run)."""
    prefix = f"SERVE_REPLICA::{APP_NAME}#{DEPLOYMENT_NAME}#"
    table = ray._private.state.actors(actor_state_name="ALIVE").values()
    return [a for a in table if a["Name"].startswith(prefix)]


def _running_replicas() -> int:
    app = serve.status().applications.get(APP_NAME)
    if app is None:
        return 0
    return app.deployments[DEPLOYMENT_NAME].replica_states.get("RUNNING", 0)


def test_both_dialects_answer_through_the_proxy(deployed: RayServe) -> None:
    """/v1/embeddings and /api/embed both answer 200 with one 384-dimension vector per input."""
    openai = httpx.post(
        f"{deployed.url}/v1/embeddings", json={"model": "all-MiniLM-L6-v2", "input": ["a", "b"]}
    )
    ollama = httpx.post(f"{deployed.url}/api/embed", json={"model": "all-minilm", "input": "a"})
    assert openai.status_code == 200, openai.text
    assert [len(d["embedding"]) for d in openai.json()["data"]] == [384, 384]
    assert ollama.status_code == 200, ollama.text
    assert [len(v) for v in ollama.json()["embeddings"]] == [384]


def test_conformance_smoke_and_openai_suites_pass(deployed: RayServe, tmp_path: Path) -> None:
    """`python -m conformance --suite smoke --suite openai` exits 0 against the endpoint, with
    checks passed in both suites."""
    report = tmp_path / "report.json"
    command = [sys.executable, "-m", "conformance", "--base-url", deployed.url]
    command += ["--model", "all-minilm", "--suite", "smoke", "--suite", "openai"]
    command += ["--json", str(report)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-6000:]
    checks = json.loads(report.read_text(encoding="utf-8"))
    passed = {c["suite"] for c in checks if c["outcome"] == "passed"}
    assert passed == {"smoke", "openai"}, done.stdout[-6000:]


def _vectors(url: str) -> list[np.ndarray]:
    """Each text alone, then all in one request, sent one at a time: the same batches on any
    server, so the same arithmetic."""
    bodies = [{"model": "all-minilm", "input": t} for t in _TEXTS]
    bodies.append({"model": "all-minilm", "input": _TEXTS})
    answers = [httpx.post(f"{url}/api/embed", json=b, timeout=60) for b in bodies]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    return [np.asarray(a.json()["embeddings"], dtype=np.float32) for a in answers]


def test_vectors_equal_the_single_servers(deployed: RayServe, tmp_path: Path) -> None:
    """Every vector through Ray Serve equals `embedserve serve`'s bit for bit, with the same
    engine and thread count: the replicas run the same composition root, and Ray only
    carries the bytes. Each request is sent twice, so both replicas likely answer some."""
    env = {"HF_HUB_OFFLINE": "1", "EMBEDSERVE_ENGINE": "onnxruntime", "EMBEDSERVE_THREADS": "1"}
    with running_server(tmp_path / "home", tmp_path / "server.log", env) as url:
        single = _vectors(url)
    for _ in range(2):
        through_ray = _vectors(deployed.url)
        for ours, theirs in zip(through_ray, single, strict=True):
            np.testing.assert_array_equal(ours, theirs)


def test_two_replicas_run_on_two_nodes(deployed: RayServe) -> None:
    """Serve reports 2 RUNNING replicas, and their actors live on different nodes."""
    assert _running_replicas() == 2
    nodes = {a["Address"]["NodeID"] for a in _replicas()}
    assert len(nodes) == 2


def test_a_killed_replica_is_replaced_and_only_its_requests_fail(deployed: RayServe) -> None:
    """4 clients x 30 requests; one replica is killed once 12 have been answered. Ray starts a
    new replica (2 RUNNING again, one of them new), and at most the 4 requests that can be in
    flight at the kill fail: the rest go to the surviving replica."""
    before = {a["Name"] for a in _replicas()}
    answered, failures = [], []
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=deployed.url, timeout=60) as http:
            for n in range(30):
                try:
                    ok = http.post("/api/embed", json={"model": "all-minilm", "input": f"t{n}"})
                    failed = ok.status_code != 200
                except httpx.TransportError:
                    failed = True
                with lock:
                    (failures if failed else answered).append(n)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    while len(answered) < 12 and any(t.is_alive() for t in threads):
        time.sleep(0.01)
    victim = min(before)
    ray.kill(ray.get_actor(victim, namespace=SERVE_NAMESPACE), no_restart=True)
    for t in threads:
        t.join(timeout=300)
    assert len(answered) + len(failures) == 120
    assert len(failures) <= 4, f"{len(failures)} requests failed"
    deadline = time.monotonic() + _REPLACED_S
    while time.monotonic() < deadline:
        names = {a["Name"] for a in _replicas()}
        if _running_replicas() == 2 and len(names) == 2 and victim not in names:
            break
        time.sleep(0.5)
    assert victim not in {a["Name"] for a in _replicas()}
    assert _running_replicas() == 2
    assert len({a["Name"] for a in _replicas()} - before) == 1


def test_sigterm_exits_0_and_frees_the_cluster(deployed: RayServe) -> None:
    """On SIGTERM the command exits 0, having shut down the Serve instance it started: no
    controller, no replica, both CPUs free."""
    assert deployed.stop() == 0
    with pytest.raises(ValueError, match="Failed to look up actor"):
        ray.get_actor(SERVE_CONTROLLER_NAME, namespace=SERVE_NAMESPACE)
    assert _replicas() == []
    deadline = time.monotonic() + 30
    while ray.available_resources().get("CPU") != 2.0 and time.monotonic() < deadline:
        time.sleep(0.2)  # resources are reported by each raylet, a moment later
    assert ray.available_resources().get("CPU") == 2.0
