"""HubStore against a local stand-in for the Hub's HTTP API (tests/hub_standin.py)."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from huggingface_hub.constants import DOWNLOAD_CHUNK_SIZE

from adapters.stores.hf_hub import HubStore
from domain.errors import ModelNotFound, ModelUnavailable
from domain.models import Family, ModelSpec, PoolingMode
from domain.ports import FileProgress
from tests.hub_standin import HubStandIn, hub_reachable, unreachable_url

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = "org/tiny-bert"
WEIGHTS = "model.safetensors"
PICKLE_WEIGHTS = "pytorch_model.bin"
NEEDED = {
    "config.json": b'{"model_type": "bert", "hidden_size": 4}',
    "tokenizer.json": b"{}",
    "tokenizer_config.json": b"{}",
    "special_tokens_map.json": b"{}",
    "modules.json": b"[]",
    "sentence_bert_config.json": b'{"max_seq_length": 8}',
    "config_sentence_transformers.json": b"{}",
    "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}',
    WEIGHTS: random.Random(0).randbytes(64 * 1024),  # noqa: S311 - test bytes, not a secret
}
NOT_WEIGHTS = {name: data for name, data in NEEDED.items() if name != WEIGHTS}
# what hub repos carry besides the files a family reads
OTHER_FORMATS = {
    "tf_model.h5": b"tf",
    "flax_model.msgpack": b"flax",
    "rust_model.ot": b"rust",
    "onnx/model.onnx": b"onnx",
    "onnx/config.json": b"{}",
    "openvino/openvino_model.xml": b"<net/>",
    "openvino/openvino_model.bin": b"openvino",
    "checkpoint-500/model.safetensors": b"an old checkpoint",
    "checkpoint-500/pytorch_model.bin": b"an old pickle",
    "README.md": b"# a model card",
}
DECOYS = OTHER_FORMATS | {PICKLE_WEIGHTS: b"pickle"}  # a second weights file: safetensors wins
SPEC = ModelSpec(
    name="tiny-bert",
    repo_id=REPO,
    family=Family.BERT,
    dimensions=4,
    max_tokens=8,
    pooling=PoolingMode.MEAN,
)
ROOT = Path(__file__).resolve().parents[2]


def spec_for(repo_id: str, revision: str = "main", family: Family = Family.BERT) -> ModelSpec:
    return ModelSpec(
        name=repo_id.rsplit("/", 1)[-1],
        repo_id=repo_id,
        family=family,
        dimensions=4,
        max_tokens=8,
        pooling=PoolingMode.MEAN,
        revision=revision,
    )


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file()
    }


@pytest.fixture(autouse=True)
def no_hf_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    hub_reachable(monkeypatch)


@pytest.fixture
def hub() -> Iterator[HubStandIn]:
    repos = {
        REPO: NEEDED | DECOYS,
        "org/bin-only": NOT_WEIGHTS | OTHER_FORMATS | {PICKLE_WEIGHTS: b"pickle weights"},
        "org/no-weights": NOT_WEIGHTS | OTHER_FORMATS,
        "org/gated": dict(NEEDED),
    }
    with HubStandIn(repos, gated=frozenset({"org/gated"})) as standin:
        yield standin


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "Embeddings"


@pytest.fixture
def store(root: Path, hub: HubStandIn) -> HubStore:
    return HubStore(root, endpoint=hub.url)


def kill_mid_download(root: Path, hub: HubStandIn) -> None:
    """Run a fetch in a child process and SIGKILL it while the weights are half sent."""
    hub.cut(WEIGHTS, after=1000, how="stall")
    child = (
        "import sys; from pathlib import Path;"
        "from adapters.stores.hf_hub import HubStore;"
        "from domain.models import Family, ModelSpec, PoolingMode;"
        f"spec = ModelSpec('tiny-bert', {REPO!r}, Family.BERT, 4, 8, PoolingMode.MEAN);"
        "HubStore(Path(sys.argv[1]), endpoint=sys.argv[2]).fetch(spec)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env["PYTHONPATH"] = str(ROOT)
    process = subprocess.Popen(
        [sys.executable, "-c", child, str(root), hub.url],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    stalled = hub.stalled.wait(timeout=60)
    process.kill()
    _, stderr = process.communicate()
    assert stalled, stderr.decode(errors="replace")
    hub.release()


def test_fetch_downloads_only_the_files_the_family_needs(store: HubStore, hub: HubStandIn) -> None:
    """Only FILES_NEEDED matches are asked for: no TF, Flax, ONNX or pickle weights, no README."""
    store.fetch(SPEC)

    asked = set(hub.requested("GET")) | set(hub.requested("HEAD"))
    assert asked == set(NEEDED)
    assert asked.isdisjoint(DECOYS)


def test_fetched_folder_has_the_repo_layout(store: HubStore, root: Path) -> None:
    """The model lands at root/org/name holding the repo's own paths and bytes."""
    folder = store.fetch(SPEC)

    assert folder == root / "org" / "tiny-bert"
    assert files_under(folder) == NEEDED


def test_model_folder_holds_no_download_bookkeeping(store: HubStore, root: Path) -> None:
    """huggingface_hub's .cache folder and our .partial folder do not outlive the download."""
    folder = store.fetch(SPEC)

    assert isinstance(folder, Path)
    assert not (folder / ".cache").exists()
    assert not (root / ".partial" / "org--tiny-bert").exists()


def test_second_fetch_does_not_touch_the_network(store: HubStore, hub: HubStandIn) -> None:
    """A model already on disk is served from there."""
    first = store.fetch(SPEC)
    seen = len(hub.requests)

    assert store.fetch(SPEC) == first
    assert len(hub.requests) == seen


def test_locate_never_downloads(store: HubStore, hub: HubStandIn) -> None:
    """locate() answers None for a missing model without a single request."""
    assert store.locate(SPEC) is None
    assert hub.requests == []


def test_unknown_repo_is_model_not_found(store: HubStore) -> None:
    """A repo the Hub does not have is ModelNotFound."""
    result = store.fetch(spec_for("org/no-such-model"))

    assert isinstance(result, ModelNotFound)
    assert "org/no-such-model" in result.reason


def test_gated_repo_is_model_not_found(store: HubStore) -> None:
    """A gated repo we may not read is ModelNotFound, and says it is gated."""
    result = store.fetch(spec_for("org/gated"))

    assert isinstance(result, ModelNotFound)
    assert "gated" in result.reason


def test_unknown_revision_is_model_not_found(store: HubStore) -> None:
    """A revision the repo does not have is ModelNotFound."""
    result = store.fetch(spec_for(REPO, revision="v9.9"))

    assert isinstance(result, ModelNotFound)
    assert "v9.9" in result.reason


def test_invalid_repo_id_is_model_not_found_without_a_request(
    store: HubStore, hub: HubStandIn
) -> None:
    """An id that could climb out of the root is refused before any request."""
    result = store.fetch(spec_for("../outside"))

    assert isinstance(result, ModelNotFound)
    assert hub.requests == []


def test_unreachable_endpoint_is_model_unavailable(root: Path) -> None:
    """A Hub that refuses connections is ModelUnavailable."""
    result = HubStore(root, endpoint=unreachable_url()).fetch(SPEC)

    assert isinstance(result, ModelUnavailable)
    assert not (root / REPO).exists()


def test_hub_outage_is_model_unavailable(store: HubStore, hub: HubStandIn) -> None:
    """A Hub answering 503 is ModelUnavailable."""
    hub.outage = 503

    result = store.fetch(SPEC)

    assert isinstance(result, ModelUnavailable)
    assert "503" in result.reason


def test_repo_with_both_weights_files_fetches_only_safetensors(
    store: HubStore, hub: HubStandIn
) -> None:
    """Given model.safetensors and pytorch_model.bin, only the safetensors is downloaded."""
    folder = store.fetch(SPEC)

    assert isinstance(folder, Path)
    assert WEIGHTS in hub.requested("GET")
    assert PICKLE_WEIGHTS not in hub.requested("GET") + hub.requested("HEAD")
    assert not (folder / PICKLE_WEIGHTS).exists()


def test_repo_with_only_pytorch_bin_fetches_the_bin(store: HubStore, hub: HubStandIn) -> None:
    """A repo without model.safetensors gives its pytorch_model.bin, and nothing else extra."""
    folder = store.fetch(spec_for("org/bin-only"))

    assert isinstance(folder, Path)
    assert files_under(folder) == NOT_WEIGHTS | {PICKLE_WEIGHTS: b"pickle weights"}
    assert set(hub.requested("GET")) == {*NOT_WEIGHTS, PICKLE_WEIGHTS}


def test_a_folder_with_pytorch_bin_is_a_downloaded_model(store: HubStore, hub: HubStandIn) -> None:
    """locate() accepts a folder whose weights are pytorch_model.bin: no second download."""
    spec = spec_for("org/bin-only")
    folder = store.fetch(spec)
    seen = len(hub.requests)

    assert store.locate(spec) == folder
    assert store.fetch(spec) == folder
    assert len(hub.requests) == seen


def test_repo_without_weights_is_model_unavailable(store: HubStore, hub: HubStandIn) -> None:
    """A repo with neither weights file (only TF, Flax, ONNX...) is ModelUnavailable, naming
    both files it looked for, and nothing is downloaded."""
    result = store.fetch(spec_for("org/no-weights"))

    assert isinstance(result, ModelUnavailable)
    assert "org/no-weights" in result.reason
    assert WEIGHTS in result.reason
    assert PICKLE_WEIGHTS in result.reason
    assert hub.requested("GET") == []


def test_model2vec_reads_safetensors_only(store: HubStore, hub: HubStandIn) -> None:
    """model2vec writes only safetensors: a Model2Vec repo with a pickle alone is unavailable."""
    result = store.fetch(spec_for("org/bin-only", family=Family.MODEL2VEC))

    assert isinstance(result, ModelUnavailable)
    assert WEIGHTS in result.reason
    assert PICKLE_WEIGHTS not in result.reason
    assert hub.requested("GET") == []


@pytest.mark.parametrize("repo", [REPO, "org/bin-only"])
def test_other_formats_are_never_downloaded(store: HubStore, hub: HubStandIn, repo: str) -> None:
    """TF, Flax, Rust, ONNX, OpenVINO and old checkpoints' weights are never asked for."""
    folder = store.fetch(spec_for(repo))

    assert isinstance(folder, Path)
    asked = set(hub.requested("GET")) | set(hub.requested("HEAD"))
    assert asked.isdisjoint(OTHER_FORMATS)
    assert set(files_under(folder)).isdisjoint(OTHER_FORMATS)


def test_offline_store_makes_no_request(root: Path, hub: HubStandIn) -> None:
    """offline=True answers a missing model with ModelUnavailable, without a request."""
    result = HubStore(root, endpoint=hub.url, offline=True).fetch(SPEC)

    assert isinstance(result, ModelUnavailable)
    assert "offline" in result.reason
    assert hub.requests == []


def test_hf_hub_offline_variable_turns_offline_mode_on(
    store: HubStore, hub: HubStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HF_HUB_OFFLINE=1 in the environment works as offline=True."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    result = store.fetch(SPEC)

    assert isinstance(result, ModelUnavailable)
    assert "offline" in result.reason
    assert hub.requests == []


def test_offline_store_serves_a_downloaded_model(root: Path, store: HubStore) -> None:
    """Offline mode still finds what an earlier online fetch put on disk."""
    folder = store.fetch(SPEC)

    assert HubStore(root, offline=True).fetch(SPEC) == folder


def test_broken_download_leaves_no_model_folder(
    store: HubStore, hub: HubStandIn, root: Path
) -> None:
    """When the weights stop mid-file, fetch is ModelUnavailable and no model folder appears."""
    hub.cut(WEIGHTS, after=1000)

    result = store.fetch(SPEC)

    assert isinstance(result, ModelUnavailable)
    assert not (root / REPO).exists()
    assert store.locate(SPEC) is None


def test_retry_after_broken_download_fetches_only_what_is_missing(
    store: HubStore, hub: HubStandIn
) -> None:
    """A second fetch completes the model and does not download finished files again."""
    hub.cut(WEIGHTS, after=1000)
    store.fetch(SPEC)

    folder = store.fetch(SPEC)

    assert isinstance(folder, Path)
    assert files_under(folder) == NEEDED
    downloads = hub.requested("GET")
    assert sorted(downloads) == sorted([*NEEDED, WEIGHTS])


def test_dropped_connection_resumes_with_a_range_request(root: Path) -> None:
    """A connection dropped mid-file is resumed with a Range request, not started over."""
    # huggingface_hub counts only whole chunks as received: drop past the first one.
    weights = random.Random(1).randbytes(DOWNLOAD_CHUNK_SIZE + 4096)  # noqa: S311
    with HubStandIn({REPO: NEEDED | {WEIGHTS: weights}}) as hub:
        hub.cut(WEIGHTS, after=DOWNLOAD_CHUNK_SIZE + 1000, how="drop")

        folder = HubStore(root, endpoint=hub.url).fetch(SPEC)

    assert isinstance(folder, Path)
    assert (folder / WEIGHTS).read_bytes() == weights
    ranges = [seen.range for seen in hub.requests if seen.file == WEIGHTS and seen.method == "GET"]
    assert ranges == [None, f"bytes={DOWNLOAD_CHUNK_SIZE}-"]


def test_killed_download_leaves_no_model_folder(root: Path, hub: HubStandIn) -> None:
    """A process killed mid-download leaves only its .partial folder, never a model folder."""
    kill_mid_download(root, hub)

    assert not (root / REPO).exists()
    assert (root / ".partial" / "org--tiny-bert").is_dir()


def test_fetch_after_killed_download_completes_cleanly(
    root: Path, hub: HubStandIn, store: HubStore
) -> None:
    """The next fetch finishes the model, and the killed run's leftovers do not leak into it."""
    kill_mid_download(root, hub)

    folder = store.fetch(SPEC)

    assert isinstance(folder, Path)
    assert files_under(folder) == NEEDED
    assert not (root / ".partial" / "org--tiny-bert").exists()


def test_concurrent_fetches_download_once(store: HubStore, hub: HubStandIn) -> None:
    """Two threads fetching one model at once both get it, and it is downloaded once."""
    hub.cut(WEIGHTS, after=1000, how="stall")
    start = threading.Barrier(2)
    results: list[object] = []

    def fetch() -> None:
        start.wait()
        results.append(store.fetch(SPEC))

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    assert hub.stalled.wait(timeout=60)
    hub.release()
    for thread in threads:
        thread.join()

    assert results == [store.locate(SPEC)] * 2
    assert hub.requested("GET").count(WEIGHTS) == 1
    assert len([path for path in hub.api_calls() if "/revision/" in path]) == 1


@pytest.mark.parametrize("first", [Family.MODEL2VEC, Family.STATIC])
def test_both_readings_of_a_model2vec_repo_find_their_files(root: Path, first: Family) -> None:
    """The catalogue reads M2V_base_output as Model2Vec and as Static, from one folder: whichever
    reading fetches it first also brings the other's files (config.json, modules.json)."""
    model2vec_files = {
        "config.json": b'{"normalize": true}',
        "tokenizer.json": b"{}",
        "modules.json": b"[]",
        WEIGHTS: b"weights",
    }
    second = Family.STATIC if first is Family.MODEL2VEC else Family.MODEL2VEC
    repo = "org/m2v"
    with HubStandIn({repo: model2vec_files | OTHER_FORMATS}) as hub:
        store = HubStore(root, endpoint=hub.url)
        folder = store.fetch(spec_for(repo, family=first))

        assert isinstance(folder, Path)
        assert files_under(folder) == model2vec_files
        assert store.locate(spec_for(repo, family=second)) == folder


def test_progress_reports_every_file_up_to_its_size(store: HubStore) -> None:
    """The callback hears of each needed file, and last of each at completed == total."""
    heard: list[FileProgress] = []

    store.fetch(SPEC, heard.append)

    last = {p.file: p for p in heard}
    assert set(last) == set(NEEDED)
    assert all(p.completed == p.total == len(NEEDED[p.file]) for p in last.values())
    assert last[WEIGHTS].digest == f"sha256:{hashlib.sha256(NEEDED[WEIGHTS]).hexdigest()}"


def test_a_new_store_resumes_a_cut_file_where_it_stopped(root: Path, hub: HubStandIn) -> None:
    """What a broken attempt received is kept: a later fetch, by another store object (another
    process), asks only for the rest with a Range request."""
    hub.cut(WEIGHTS, after=1000)
    assert isinstance(HubStore(root, endpoint=hub.url).fetch(SPEC), ModelUnavailable)

    folder = HubStore(root, endpoint=hub.url).fetch(SPEC)

    assert isinstance(folder, Path)
    assert files_under(folder) == NEEDED
    ranges = [seen.range for seen in hub.requests if seen.file == WEIGHTS and seen.method == "GET"]
    assert ranges == [None, "bytes=1000-"]


def test_a_kept_part_that_fails_its_digest_is_fetched_again(
    root: Path, hub: HubStandIn, store: HubStore
) -> None:
    """Kept bytes that do not belong to the file fail the sha256 check: that attempt is
    ModelUnavailable, no model appears, and the next one fetches the file whole."""
    hub.cut(WEIGHTS, after=1000)
    store.fetch(SPEC)
    (kept,) = (root / ".partial" / "org--tiny-bert" / ".cache").glob("*.incomplete")
    kept.write_bytes(b"\0" * 1000)

    spoiled = store.fetch(SPEC)
    folder = store.fetch(SPEC)

    assert isinstance(spoiled, ModelUnavailable)
    assert "sha256" in spoiled.reason
    assert isinstance(folder, Path)
    assert files_under(folder) == NEEDED


def test_kept_files_of_another_commit_are_not_reused(root: Path) -> None:
    """When the repo moved on between attempts, the new attempt starts over."""
    old = NEEDED | {WEIGHTS: b"old weights " * 200}
    with HubStandIn({REPO: old}) as hub:
        hub.cut(WEIGHTS, after=1000)
        HubStore(root, endpoint=hub.url).fetch(SPEC)
    with HubStandIn({REPO: NEEDED}) as hub:
        folder = HubStore(root, endpoint=hub.url).fetch(SPEC)
        gets = hub.requested("GET")

    assert isinstance(folder, Path)
    assert files_under(folder) == NEEDED
    assert sorted(gets) == sorted(NEEDED)


def test_remove_deletes_the_model_folder(store: HubStore, root: Path) -> None:
    """remove() deletes a downloaded model, leaves no empty org folder, and is False after."""
    store.fetch(SPEC)

    assert store.remove(SPEC) is True
    assert store.locate(SPEC) is None
    assert not (root / "org").exists()
    assert store.remove(SPEC) is False


def test_remove_deletes_a_folder_copied_in_by_hand(root: Path) -> None:
    """A model folder put there by hand, with no download ever made (so no .partial), removes."""
    folder = root / REPO
    for name, data in NEEDED.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    store = HubStore(root, endpoint=unreachable_url())

    assert store.remove(SPEC) is True
    assert not folder.exists()
    assert not (root / "org").exists()
