"""Logging, configured once by the composition root: console for people, JSON for machines.

Every line goes through the same processors, structlog's own and the standard library's
(uvicorn's start-up and error lines, asyncio's, warnings): so with JSON each line is one JSON
object, whoever wrote it, and no value in it is longer than `MAX_LOGGED_CHARS`.
"""

from __future__ import annotations

import logging
import math
import numbers
import sys
from collections.abc import Callable
from typing import Literal

import structlog

__all__ = ["MAX_LOGGED_CHARS", "LogFormat", "bounded", "configure_logging"]

LogFormat = Literal["auto", "console", "json"]

# A model name, a path or a message a client sent can be megabytes: a log line holds this much
# of each string, and says how much it left out.
MAX_LOGGED_CHARS = 512

# Frame locals would put request bodies (the user's text) into the log: never.
_TRACEBACKS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)
# The standard library's handler this module installs, found again by its name when logging is
# configured once more (several apps in one test process).
_HANDLER_NAME = "embedserve"
# Loggers whose information lines are the server's own news (start-up, shutdown); other
# libraries' (httpx's per-request lines when downloading) stay at warnings.
_INFO_LOGGERS = ("uvicorn",)


def bounded(text: str) -> str:
    """The text, cut to MAX_LOGGED_CHARS with a marker saying how much was left out."""
    if len(text) <= MAX_LOGGED_CHARS:
        return text
    return f"{text[:MAX_LOGGED_CHARS]}…[{len(text) - MAX_LOGGED_CHARS} more characters]"


def _finite(value: object) -> object:
    """JSON has no NaN or Infinity (json.dumps writes them all the same): they become null."""
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return value if math.isfinite(value) else None
    return value


def _each_leaf(value: object, change: Callable[[object], object]) -> object:
    if isinstance(value, dict):
        return {key: _each_leaf(item, change) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_each_leaf(item, change) for item in value]
    return change(value)


def _bounded_strings(
    _logger: object, _method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    def cut(value: object) -> object:
        return bounded(value) if isinstance(value, str) else value

    return {key: _each_leaf(value, cut) for key, value in event.items()}


def _finite_numbers(
    _logger: object, _method: str, event: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    return {key: _each_leaf(value, _finite) for key, value in event.items()}


def configure_logging(fmt: LogFormat = "auto", level: int = logging.INFO) -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    # after the traceback is rendered (its message can hold what a client sent), before output
    final: list[structlog.typing.Processor] = [
        _TRACEBACKS if use_json else structlog.dev.set_exc_info,
        _bounded_strings,
        *([_finite_numbers] if use_json else []),
        renderer,
    ]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            *final,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # one write per line, as the standard library's handler below does, so that lines
        # from both never interleave
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    _route_standard_logging(final, level)


def _route_standard_logging(final: list[structlog.typing.Processor], level: int) -> None:
    """The standard library's records (uvicorn, asyncio, warnings) rendered as structlog's."""
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(level, logging.WARNING))
    for name in _INFO_LOGGERS:
        logging.getLogger(name).setLevel(level)
    logging.captureWarnings(capture=True)
