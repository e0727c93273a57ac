"""The console script run in this process. A command configures logging for its whole process,
as it should in its own; here structlog's configuration and the root logger are put back after
each run, so that later tests log (and capture) as they would have."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import structlog

from adapters.cli import main

__all__ = ["run_command"]


def run_command(argv: Sequence[str]) -> int:
    """`embedserve ARGV...`: its exit status."""
    config = structlog.get_config()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        return main(argv)
    finally:
        structlog.configure(**config)
        root.setLevel(level)
        root.handlers[:] = handlers
