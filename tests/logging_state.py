"""Commands run in process (`adapters.cli.main`) configure logging for the whole process, as
they should in their own: tests that run them put structlog's configuration and the root
logger back afterwards, so that later tests log (and capture) as they would have."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

__all__ = ["logging_restored"]


@contextmanager
def logging_restored() -> Iterator[None]:
    config = structlog.get_config()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        structlog.configure(**config)
        root.setLevel(level)
        root.handlers[:] = handlers
