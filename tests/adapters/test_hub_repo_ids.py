"""HubStore as RepoModels: a repo id described from its config files, against the hub stand-in."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from adapters.stores.hf_hub import HubStore
from adapters.stores.saved_specs import SPEC_FILE
from domain.errors import ArchitectureNotSupported, ModelNotFound
from domain.models import Family, ModelSpec, PoolingMode
from tests.hub_standin import HubStandIn, hub_reachable, unreachable_url

REPO = "BAAI/bge-tiny"
CONFIGS = {
    "config.json": {"architectures": ["BertModel"], "hidden_size": 8, "model_type": "bert"},
    "modules.json": [
        {"path": "", "type": "sentence_transformers.models.Transformer"},
        {"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ],
    "1_Pooling/config.json": {"pooling_mode_cls_token": True},
    "sentence_bert_config.json": {"max_seq_length": 64},
}
WEIGHTS = random.Random(1).randbytes(4096)  # noqa: S311 - test bytes
FILES = {name: json.dumps(value).encode() for name, value in CONFIGS.items()} | {
    "model.safetensors": WEIGHTS,
    "tokenizer.json": b"{}",
    "pytorch_model.bin": b"a pickle never fetched",
    "onnx/config.json": b"{}",
}
JINA = "jinaai/jina-embeddings-v2-base-en"
JINA_FILES = {
    "config.json": json.dumps(
        {"architectures": ["JinaBertForMaskedLM"], "auto_map": {"AutoModel": "x.JinaBertModel"}}
    ).encode(),
    "model.safetensors": WEIGHTS,
    "modules.json": b"[]",
}
EXPECTED = ModelSpec(REPO, REPO, Family.BERT, 8, 64, PoolingMode.CLS)


@pytest.fixture(autouse=True)
def no_hf_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    hub_reachable(monkeypatch)


def _hub() -> HubStandIn:
    return HubStandIn({REPO: FILES, JINA: JINA_FILES})


def _resolved(hub: HubStandIn, repo: str) -> list[str]:
    return [s.file for s in hub.requests if s.file and s.path.startswith(f"/{repo}/resolve/")]


def test_a_repo_is_described_from_its_configs_before_any_weight(tmp_path: Path) -> None:
    """Only the config files are asked for; the weights wait for the pull."""
    with _hub() as hub:
        store = HubStore(tmp_path, hub.url)
        assert store.describe(REPO, REPO, "main") == EXPECTED
        asked = set(_resolved(hub, REPO))
    assert asked == set(CONFIGS)


def test_the_spec_lands_with_the_model_and_answers_offline(tmp_path: Path) -> None:
    """After the pull the folder holds the family's files and the spec; offline, with the hub
    gone, the repo is described from the folder and listed as downloaded."""
    with _hub() as hub:
        store = HubStore(tmp_path, hub.url)
        spec = store.describe(REPO, REPO, "main")
        assert isinstance(spec, ModelSpec)
        folder = store.fetch(spec)
        assert isinstance(folder, Path)
    assert (folder / SPEC_FILE).is_file()
    assert not (folder / "pytorch_model.bin").exists()
    offline = HubStore(tmp_path, unreachable_url(), offline=True)
    assert offline.describe(REPO, REPO, "main") == EXPECTED
    assert offline.downloaded() == [EXPECTED]


def test_a_damaged_spec_file_is_described_again_from_the_folder(tmp_path: Path) -> None:
    with _hub() as hub:
        store = HubStore(tmp_path, hub.url)
        spec = store.describe(REPO, REPO, "main")
        assert isinstance(spec, ModelSpec)
        folder = store.fetch(spec)
        assert isinstance(folder, Path)
    (folder / SPEC_FILE).write_text('{"name": 3}')
    offline = HubStore(tmp_path, unreachable_url(), offline=True)
    with capture_logs() as logs:
        assert offline.downloaded() == [EXPECTED]
    assert [e["event"] for e in logs] == ["saved_spec_damaged"]


def test_an_architecture_we_do_not_run_is_refused_from_config_json_alone(tmp_path: Path) -> None:
    """JinaBertForMaskedLM (custom code): a 400's error, no weights asked for, nothing kept."""
    with _hub() as hub:
        refused = HubStore(tmp_path, hub.url).describe(JINA, JINA, "main")
        asked = _resolved(hub, JINA)
    assert isinstance(refused, ArchitectureNotSupported)
    assert refused.architecture == "JinaBertForMaskedLM"
    assert "model.safetensors" not in asked
    assert not any((tmp_path / ".partial").glob("*/*"))


def test_a_missing_repo_is_not_found(tmp_path: Path) -> None:
    with _hub() as hub:
        missing = HubStore(tmp_path, hub.url).describe("nobody/nothing", "nobody/nothing", "main")
    assert isinstance(missing, ModelNotFound)
    assert "no repository" in missing.reason


def test_offline_a_repo_not_on_disk_is_not_found(tmp_path: Path) -> None:
    store = HubStore(tmp_path, unreachable_url(), offline=True)
    missing = store.describe(REPO, REPO, "main")
    assert isinstance(missing, ModelNotFound)
    assert "offline" in missing.reason
