"""Resident pages of a mapped file given back (adapters/mapped_files.py), and OpenVINO's use of
it for the graph's weights file."""

from __future__ import annotations

import mmap
from pathlib import Path

import numpy as np
import pytest

from adapters.mapped_files import drop_resident_pages

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/smaps").exists(), reason="the mapping table is Linux's"
)

_SIZE = 8 << 20


def resident_bytes(path: Path) -> int:
    """The resident bytes of this process's mappings of `path`, as the kernel counts them."""
    name, total, current = str(path.resolve()), 0, ""
    for line in Path("/proc/self/smaps").read_text(encoding="utf-8").splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) >= 5 and "-" in fields[0] and not fields[0].endswith(":"):
            current = fields[5] if len(fields) == 6 else ""
        elif fields and fields[0] == "Rss:" and current == name:
            total += int(fields[1]) * 1024
    return total


def _weights(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "w.onnx.data"
    payload = np.random.default_rng(0).bytes(_SIZE)
    path.write_bytes(payload)
    return path, payload


def test_a_read_only_mapping_drops_its_pages_and_reads_back_the_same(tmp_path: Path) -> None:
    path, payload = _weights(tmp_path)
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        assert mapped[:] == payload  # every page read
        assert resident_bytes(path) == _SIZE
        assert drop_resident_pages(path) == _SIZE
        assert resident_bytes(path) == 0
        assert mapped[:] == payload


def test_a_writable_mapping_keeps_its_pages_and_its_writes(tmp_path: Path) -> None:
    """A private writable mapping's written pages exist nowhere else: they are never dropped."""
    path, payload = _weights(tmp_path)
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY) as mapped:
        mapped[0] = payload[0] ^ 0xFF
        assert mapped[1:] == payload[1:]
        assert drop_resident_pages(path) == 0
        assert resident_bytes(path) == _SIZE
        assert mapped[0] == payload[0] ^ 0xFF


def test_a_file_not_mapped_drops_nothing(tmp_path: Path) -> None:
    path, _ = _weights(tmp_path)
    assert drop_resident_pages(path) == 0
    assert drop_resident_pages(tmp_path / "absent") == 0


def test_openvino_keeps_resident_only_the_weights_its_passes_read(tmp_path: Path) -> None:
    """Compiling reads the whole weights file; afterwards a pass reads the weights OpenVINO runs
    from in place and the embedding rows of its tokens: the rest is not held resident."""
    pytest.importorskip("openvino", reason="OpenVINO is not installed")
    from adapters.engines.graph_cache import GraphCache
    from adapters.engines.openvino_engine import OpenVinoEngine
    from application.catalogue import CATALOGUE
    from domain.errors import ModelUnavailable
    from tests.model_factory import minilm_folder

    spec = next(s for s in CATALOGUE if s.name == "all-MiniLM-L6-v2")
    encoder = OpenVinoEngine(tmp_path).load(spec, minilm_folder())
    assert not isinstance(encoder, ModelUnavailable), encoder
    ids = np.array([[101, 7592, 2088, 102]], dtype=np.int64)
    encoder.embed(ids, np.ones_like(ids))
    [weights] = [GraphCache.weights_file(p) for p in tmp_path.glob("*-text.onnx")]
    size = weights.stat().st_size
    assert resident_bytes(weights) < size // 2
