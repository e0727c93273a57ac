"""The memory this machine has available now, as the kernel estimates it."""

from __future__ import annotations

from pathlib import Path

__all__ = ["available_memory"]

_MEMINFO = Path("/proc/meminfo")


def available_memory() -> int | None:
    """Linux's MemAvailable (free memory plus what the page cache can give back without
    swapping), in bytes; None where the system does not say (macOS, Windows)."""
    try:
        lines = _MEMINFO.read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    for line in lines:
        name, _, value = line.partition(":")
        if name == "MemAvailable":
            number, _, unit = value.strip().partition(" ")
            return int(number) * (1024 if unit == "kB" else 1)
    return None
