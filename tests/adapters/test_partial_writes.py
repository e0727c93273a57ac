"""Partial writes a killed writer left in the cache folder are swept at start; live ones stay."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from adapters.bootstrap import Settings, build_front_door
from adapters.engines.partial_writes import STALE_AFTER_S, sweep_stale

if TYPE_CHECKING:
    from pathlib import Path

OLD = time.time() - STALE_AFTER_S - 60


def _age(*paths: Path) -> None:
    for path in paths:
        os.utime(path, (OLD, OLD))


def _cache_with_partials(cache: Path) -> None:
    """A killed graph write (a folder with half a graph), a killed answer write, a live graph
    write (an old folder with a file still growing), a finished graph, a fresh answer write."""
    cache.mkdir(parents=True)
    killed = cache / ".partial-abc123"
    killed.mkdir()
    (killed / "x-text.onnx").write_bytes(b"half a graph")
    _age(killed / "x-text.onnx", killed)
    (cache / ".partial-def456.npy").write_bytes(b"half an answer")
    _age(cache / ".partial-def456.npy")
    live = cache / ".partial-live"
    live.mkdir()
    (live / "y-text.onnx").write_bytes(b"growing")
    _age(live)
    (cache / "0123-text.onnx").write_bytes(b"a finished graph")
    _age(cache / "0123-text.onnx")
    (cache / ".partial-fresh.npy").write_bytes(b"being written")


def test_only_partials_untouched_for_an_hour_are_removed(tmp_path: Path) -> None:
    cache = tmp_path / ".graphs"
    _cache_with_partials(cache)

    removed = sweep_stale(cache)

    assert sorted(p.name for p in removed) == [".partial-abc123", ".partial-def456.npy"]
    assert sorted(p.name for p in cache.iterdir()) == [
        ".partial-fresh.npy",
        ".partial-live",
        "0123-text.onnx",
    ]


def test_a_missing_cache_folder_is_nothing_to_sweep(tmp_path: Path) -> None:
    assert sweep_stale(tmp_path / "nowhere") == []


def test_starting_sweeps_the_graph_cache(tmp_path: Path) -> None:
    """Building the application (server or CLI) sweeps `<home>/Embeddings/.graphs`."""
    cache = tmp_path / "Embeddings" / ".graphs"
    _cache_with_partials(cache)

    build_front_door(Settings(home=tmp_path, offline=True))

    assert not (cache / ".partial-abc123").exists()
    assert not (cache / ".partial-def456.npy").exists()
    assert (cache / ".partial-live").exists()
