"""The process heap: giving memory that a large request freed back to the system.

glibc's malloc keeps what large allocations freed in its arenas (one per thread that allocated:
the tokenizers library tokenizes on a pool of threads), so RSS would stay at a request's peak for
good. `malloc_trim(0)` returns the free pages of every arena (glibc >= 2.8); elsewhere (musl,
macOS) this does nothing. It costs a few milliseconds, so it runs only after large requests:
right after the adapter that read a lot is done with it, and once more a moment later, when the
request's own objects (a text, or a list of ids, that the HTTP layer decoded) are freed too.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
from collections.abc import Callable
from functools import cache

__all__ = ["give_back_freed_memory", "note_large_request"]

_LATER_S = 2.0  # a large request is answered by then; a later one re-arms the timer
_lock = threading.Lock()
_timer: list[threading.Timer] = []


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


def give_back_freed_memory() -> None:
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def note_large_request() -> None:
    """Gives the freed heap back now, and again shortly, after the request is done."""
    give_back_freed_memory()
    later = threading.Timer(_LATER_S, give_back_freed_memory)
    later.daemon = True
    with _lock:
        for pending in _timer:
            pending.cancel()
        _timer[:] = [later]
    later.start()
