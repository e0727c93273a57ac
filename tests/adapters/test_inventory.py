"""Facts about model folders on disk: one damaged weights file is reported, never raised."""

from __future__ import annotations

import json
import struct
from typing import TYPE_CHECKING

import numpy as np
import pytest
from safetensors.numpy import save_file

from adapters.stores.inventory import Inventory
from application.catalogue import CATALOGUE
from tests.fakes import FakeStore

if TYPE_CHECKING:
    from pathlib import Path

SPEC = CATALOGUE[0]


def _with_header(header: object, data: bytes = bytes(48)) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def _tensor(shape: list[int], offsets: tuple[int, int] = (0, 48)) -> dict[str, object]:
    return {"w": {"dtype": "F32", "shape": shape, "data_offsets": list(offsets)}}


DAMAGED = {
    "empty": b"",
    "shorter than its length": b"\x07\x00\x00",
    "length past the file": struct.pack("<Q", 10**9) + b"{}",
    "length past 2**63": struct.pack("<Q", 2**63 + 5) + b"{}",
    "length of 2**64-1": b"\xff" * 8 + b"{}",
    "not JSON": struct.pack("<Q", 5) + b"abcde",
    "not UTF-8": struct.pack("<Q", 4) + b"\xff\xfe\xfd\xfc",
    "a list, not an object": _with_header([]),
    "shape that overflows": _with_header(_tensor([2**62, 2**62])),
    "shape of 2**64": _with_header(_tensor([2**64])),
    "negative dimension": _with_header(_tensor([-1])),
    "shape beyond its bytes": _with_header(_tensor([1000])),
    "offsets beyond the file": _with_header(_tensor([12], (0, 10**12))),
    "shape not a list": _with_header({"w": {"dtype": "F32", "shape": 12, "data_offsets": [0, 48]}}),
}


def _folder(tmp_path: Path, weights: bytes) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def test_parameters_are_counted_from_the_header(tmp_path: Path) -> None:
    """A sound file's facts: every tensor's elements counted, its sha256, nothing damaged."""
    folder = tmp_path / "model"
    folder.mkdir()
    save_file(
        {"a": np.zeros((3, 4), np.float32), "b": np.zeros(5, np.int64)},
        folder / "model.safetensors",
    )

    facts = Inventory(FakeStore({SPEC.repo_id: folder})).facts(SPEC)

    assert facts is not None
    assert facts.parameters == 17
    assert facts.damaged is None
    assert len(facts.digest) == 64


@pytest.mark.parametrize("weights", DAMAGED.values(), ids=DAMAGED.keys())
def test_a_damaged_weights_file_is_listed_and_marked(tmp_path: Path, weights: bytes) -> None:
    """A weights file safetensors cannot read: size and time are still known, parameters are
    0, and `damaged` says why, without the machine's paths."""
    folder = _folder(tmp_path, weights)

    facts = Inventory(FakeStore({SPEC.repo_id: folder})).facts(SPEC)

    assert facts is not None
    assert facts.size == len(weights) + 2
    assert facts.parameters == 0
    assert facts.damaged is not None
    assert facts.damaged.startswith("model.safetensors ")
    assert str(tmp_path) not in facts.damaged


def test_a_file_repaired_in_place_is_seen(tmp_path: Path) -> None:
    """Facts follow the weights file itself, not only its folder's time."""
    folder = _folder(tmp_path, DAMAGED["not JSON"])
    inventory = Inventory(FakeStore({SPEC.repo_id: folder}))
    assert inventory.facts(SPEC) is not None
    save_file({"a": np.zeros((2, 2), np.float32)}, tmp_path / "sound.safetensors")
    (folder / "model.safetensors").write_bytes((tmp_path / "sound.safetensors").read_bytes())

    facts = inventory.facts(SPEC)

    assert facts is not None
    assert (facts.parameters, facts.damaged) == (4, None)
