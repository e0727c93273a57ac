"""The reference's probe answers on disk: returned only for the same files, probe and code."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from adapters.engines.probe_answers import NpyProbeAnswers
from domain.ops import Array, IdArray

_PROBE: list[tuple[IdArray, IdArray]] = [
    (np.array([[101, 7, 102], [101, 102, 0]]), np.array([[1, 1, 1], [1, 1, 0]])),
]
_ANSWER: Array = (np.arange(8, dtype=np.float32) / np.float32(7)).reshape(2, 4)


def _model(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "config.json").write_text("{}")
    return folder


def test_an_answer_comes_back_bit_for_bit(tmp_path: Path) -> None:
    folder, answers = _model(tmp_path), NpyProbeAnswers(tmp_path / "cache")
    assert answers.recall(folder, _PROBE) is None
    answers.remember(folder, _PROBE, _ANSWER)
    again = NpyProbeAnswers(tmp_path / "cache").recall(folder, _PROBE)
    assert again is not None
    assert again.tobytes() == _ANSWER.tobytes()
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".partial")]


def test_a_changed_file_or_probe_is_a_miss(tmp_path: Path) -> None:
    folder, answers = _model(tmp_path), NpyProbeAnswers(tmp_path / "cache")
    answers.remember(folder, _PROBE, _ANSWER)
    other = [(_PROBE[0][0] + 1, _PROBE[0][1])]
    assert answers.recall(folder, other) is None
    weights = folder / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert answers.recall(folder, _PROBE) is None


def test_an_unreadable_or_misshapen_answer_is_a_miss(tmp_path: Path) -> None:
    folder, answers = _model(tmp_path), NpyProbeAnswers(tmp_path / "cache")
    answers.remember(folder, _PROBE, _ANSWER[:1])  # one row for a probe of two
    assert answers.recall(folder, _PROBE) is None
    answers.remember(folder, _PROBE, _ANSWER)
    (stored,) = (tmp_path / "cache").glob("*-probe.npy")
    stored.write_bytes(stored.read_bytes()[:20])
    assert answers.recall(folder, _PROBE) is None
