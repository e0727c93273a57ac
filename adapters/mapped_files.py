"""Pages of a mapped file that the process has stopped reading, given back to the system.

A runtime that maps a graph's weights file reads all of it once, to compile the graph, and then
only the parts it runs from in place (OpenVINO: the token embedding table, the weights it does
not repack). Every page read stays resident in the mapping for as long as the model is loaded:
all 86 MB of all-MiniLM-L6-v2's weights, where a pass reads under half of them.
`madvise(MADV_DONTNEED)` drops a mapping's resident pages; a later read maps a page again from
the page cache, unchanged. Only mappings that cannot be written are advised: for a private
writable one, dropping a page would undo the process's writes to it. Linux only (the mapping
table is /proc/self/maps); elsewhere nothing is done.
"""

from __future__ import annotations

import ctypes
import mmap
from collections.abc import Callable
from functools import cache
from pathlib import Path

__all__ = ["drop_resident_pages"]

_MAPS = Path("/proc/self/maps")
_FIELDS = 6  # start-end perms offset dev inode path; an anonymous mapping has no path


@cache
def _madvise() -> Callable[[int, int, int], int] | None:
    if not hasattr(mmap, "MADV_DONTNEED") or not _MAPS.exists():
        return None
    try:
        call = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    call.restype = ctypes.c_int
    advise: Callable[[int, int, int], int] = call
    return advise


def _read_only_mappings(path: Path) -> list[tuple[int, int]]:
    """[start, end) of each mapping of `path` that the process cannot write to."""
    name = str(path.resolve())
    spans = []
    for line in _MAPS.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = line.split(maxsplit=_FIELDS - 1)
        if len(fields) == _FIELDS and fields[5] == name and fields[1][1] == "-":
            start, end = fields[0].split("-")
            spans.append((int(start, 16), int(end, 16)))
    return spans


def drop_resident_pages(path: Path) -> int:
    """Bytes of this process's read-only mappings of `path` whose pages were dropped."""
    madvise = _madvise()
    if madvise is None:
        return 0
    try:
        spans = _read_only_mappings(path)
    except OSError:
        return 0
    dropped = 0
    for start, end in spans:
        if madvise(start, end - start, mmap.MADV_DONTNEED) == 0:
            dropped += end - start
    return dropped
