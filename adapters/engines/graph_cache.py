"""Recorded graphs on disk, built once per model and reused until the model's files change.

A graph's file name is a hash of everything it was recorded from: the recorder's version, the
family and graph kind, the weights file's path, size and modification time, and the contents of
the configuration files that decide the forward pass and the pooling head. Change any of them
and the next load records a new graph. Files are written to a temporary name in the cache
folder and renamed into place (os.replace), so a reader never sees half a graph; a file that a
runtime cannot read anyway (truncated, overwritten) is recorded again.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import onnx

from adapters.engines.onnx_graph import initializer_bytes
from adapters.engines.partial_writes import PREFIX

__all__ = ["PROTOBUF_LIMIT", "GraphCache", "GraphKey"]

R = TypeVar("R")

# protobuf refuses messages past 2 GiB: larger graphs keep their weights in a file beside them
PROTOBUF_LIMIT = 2**31 - 2**24  # with room for the nodes themselves


class GraphKey:
    """What a recorded graph depends on, hashed into its file name."""

    def __init__(self, *parts: str) -> None:
        self._hash = hashlib.sha256()
        for part in parts:
            self.add(part)

    def add(self, part: str | bytes) -> None:
        data = part.encode() if isinstance(part, str) else part
        self._hash.update(len(data).to_bytes(8, "little"))
        self._hash.update(data)

    def add_file_identity(self, path: Path) -> None:
        """A large file by path, size and modification time, not by contents (it is GBs)."""
        stat = path.stat()
        self.add(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}")

    def add_file_contents(self, paths: Iterable[Path]) -> None:
        """Small files by contents; an absent file counts, as absent."""
        for path in paths:
            self.add(path.name)
            self.add(path.read_bytes() if path.is_file() else b"\0absent")

    @property
    def digest(self) -> str:
        return self._hash.hexdigest()[:32]


class GraphCache:
    """A folder of graphs by key. Safe to share between processes: writers never collide."""

    def __init__(self, root: Path, *, inline_limit: int = 0) -> None:
        self._root = root
        # weights past this many bytes go to a .data file: by default all of them, since ONNX
        # Runtime maps such a file instead of copying it, and the pages of the token embedding
        # table that no text reads stay on disk (~40 MB of all-MiniLM-L6-v2's 90); a graph past
        # PROTOBUF_LIMIT must keep them apart anyway
        self._inline_limit = min(inline_limit, PROTOBUF_LIMIT)
        # graphs this instance recorded, by file identity: fresh, whatever an earlier process left
        self._recorded: dict[Path, tuple[int, int, int]] = {}

    def path(self, key: GraphKey, kind: str) -> Path:
        return self._root / f"{key.digest}-{kind}.onnx"

    @staticmethod
    def weights_file(path: Path) -> Path:
        """The file beside the graph at `path` that holds its weights, where it has one."""
        return path.with_name(path.name + ".data")

    def open(  # noqa: PLR0913 - the graph's name, its two hooks, and trust in the cache
        self,
        key: GraphKey,
        kind: str,
        build: Callable[[], onnx.ModelProto],
        read: Callable[[Path], R],
        unreadable: tuple[type[Exception], ...],
        *,
        fresh: bool = False,
    ) -> R:
        """`read` the cached graph, recording (and writing) it first if absent or unreadable.

        `fresh`: trust only a graph this instance recorded itself; any other is recorded again
        from the weights (a cached graph can be readable and still wrong).
        """
        path = self.path(key, kind)
        if path.is_file() and (not fresh or self._recorded.get(path) == _identity(path)):
            try:
                return read(path)
            except unreadable:
                pass  # truncated or overwritten: record it again
        self.write(path, build())
        return read(path)

    def write(self, path: Path, model: onnx.ModelProto) -> None:
        """Write atomically: into a temporary folder beside `path`, then renamed into place."""
        self._root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=PREFIX, dir=self._root))
        try:
            staged = staging / path.name
            data = self.weights_file(path)
            if initializer_bytes(model) > self._inline_limit:
                # the weights go to one file beside the graph, which names it relatively
                onnx.save_model(
                    model,
                    staged,
                    save_as_external_data=True,
                    all_tensors_to_one_file=True,
                    location=data.name,
                    size_threshold=1024,
                )
                _durable(staging / data.name)
                (staging / data.name).replace(data)  # before the graph that points at it
            else:
                onnx.save_model(model, staged)
            _durable(staged)
            staged.replace(path)
            self._recorded[path] = _identity(path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _identity(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _durable(path: Path) -> None:
    with path.open("rb") as f:
        os.fsync(f.fileno())
