"""Engine choices on disk: a damaged file is ignored with a warning, never a failed load."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import structlog
from structlog.testing import LogCapture

import adapters.engines.engine_memory
from adapters.engines.engine_memory import JsonChoiceMemory

if TYPE_CHECKING:
    from collections.abc import MutableMapping
    from pathlib import Path

HOST = "host-a"
KEY = "all-MiniLM-L6-v2:latest|fp32"


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> list[MutableMapping[str, Any]]:
    """The module's log lines (its logger may be cached by an app built earlier)."""
    capture = LogCapture()
    logger = structlog.wrap_logger(None, processors=[capture])
    monkeypatch.setattr(adapters.engines.engine_memory, "log", logger, raising=False)
    return capture.entries


def test_a_choice_is_remembered_across_instances(tmp_path: Path) -> None:
    """What one instance remembers, a later one on the same file recalls."""
    path = tmp_path / "engine-choices.json"
    JsonChoiceMemory(path, HOST).remember(KEY, "openvino")
    assert JsonChoiceMemory(path, HOST).recall(KEY) == "openvino"
    assert JsonChoiceMemory(path, "host-b").recall(KEY) is None


@pytest.mark.parametrize(
    "slot",
    [[], "openvino", 3, None, {KEY: 1}, {KEY: ["openvino"]}],
    ids=["list", "string", "int", "null", "int-choice", "list-choice"],
)
def test_a_wrong_shaped_host_slot_is_ignored_and_replaced(
    tmp_path: Path, slot: object, logs: list[MutableMapping[str, Any]]
) -> None:
    """A host's slot that is not {key: engine} recalls nothing, warns, and the next choice
    replaces it; another host's choices survive."""
    path = tmp_path / "engine-choices.json"
    path.write_text(json.dumps({HOST: slot, "host-b": {KEY: "onnxruntime"}}))
    memory = JsonChoiceMemory(path, HOST)

    assert memory.recall(KEY) is None
    assert any(e["event"] == "engine_choices_ignored" and e["log_level"] == "warning" for e in logs)
    memory.remember(KEY, "openvino")
    assert json.loads(path.read_text()) == {
        HOST: {KEY: "openvino"},
        "host-b": {KEY: "onnxruntime"},
    }


@pytest.mark.parametrize(
    "content",
    [b"[]", b'"text"', b"42", b"{not json", b"", b"\xff\xfe"],
    ids=["list", "string", "int", "not-json", "empty", "not-utf8"],
)
def test_a_wrong_shaped_file_is_ignored_and_replaced(
    tmp_path: Path, content: bytes, logs: list[MutableMapping[str, Any]]
) -> None:
    """A file that is not a JSON object recalls nothing, warns, and the next choice replaces it."""
    path = tmp_path / "engine-choices.json"
    path.write_bytes(content)
    memory = JsonChoiceMemory(path, HOST)

    assert memory.recall(KEY) is None
    assert [e["event"] for e in logs] == ["engine_choices_ignored"]
    memory.remember(KEY, "openvino")
    assert JsonChoiceMemory(path, HOST).recall(KEY) == "openvino"


def test_a_directory_in_its_place_only_means_nothing_is_remembered(
    tmp_path: Path, logs: list[MutableMapping[str, Any]]
) -> None:
    """A directory where the file belongs: recall finds nothing, remember warns and does not
    raise, and no temporary file is left beside it."""
    path = tmp_path / "engine-choices.json"
    path.mkdir()
    memory = JsonChoiceMemory(path, HOST)

    assert memory.recall(KEY) is None
    memory.remember(KEY, "openvino")
    assert memory.recall(KEY) is None
    assert {e["event"] for e in logs} == {"engine_choices_unreadable", "engine_choice_not_saved"}
    assert all(e["log_level"] == "warning" for e in logs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["engine-choices.json"]
