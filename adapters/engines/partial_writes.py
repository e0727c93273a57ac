"""Partial writes in the engines' cache folder (`<home>/Embeddings/.graphs`), and their sweep.

Graphs and probe answers are written under a `.partial-` name and renamed into place when whole,
so a killed writer leaves only a `.partial-*` entry, which no reader ever opens. The sweep at
start removes those a killed writer left: ones untouched (the entry and everything in it) for an
hour. A live writer touches its partial as it writes (the folder when it is made, each file as
bytes land), and no write pauses for anywhere near an hour, so the rule never removes a write in
progress, in this process or another sharing the home. Process ids are not used: a home can be
shared by containers or machines, where a writer's id says nothing, and ids are reused.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import structlog

__all__ = ["PREFIX", "STALE_AFTER_S", "sweep_stale"]

log = structlog.get_logger(__name__)

PREFIX = ".partial-"
STALE_AFTER_S = 3600.0


def sweep_stale(
    root: Path, *, now: float | None = None, stale_after_s: float = STALE_AFTER_S
) -> list[Path]:
    """Removes the partial writes in `root` untouched for `stale_after_s`; returns them."""
    now = time.time() if now is None else now
    removed = []
    for entry in sorted(root.glob(f"{PREFIX}*")):
        try:
            if now - _last_touched(entry) < stale_after_s:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            continue  # gone already (another process swept it), or not ours to remove
        removed.append(entry)
    if removed:
        log.info("stale_partials_removed", folder=str(root), removed=len(removed))
    return removed


def _last_touched(entry: Path) -> float:
    times = [entry.lstat().st_mtime]
    if entry.is_dir() and not entry.is_symlink():
        times += [p.lstat().st_mtime for p in entry.rglob("*")]
    return max(times)
