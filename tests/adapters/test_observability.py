"""The log as structlog and the standard library write it: one bounded JSON object a line."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator

import numpy as np
import pytest
import structlog

from adapters.observability import MAX_LOGGED_CHARS, configure_logging


def _refuse(constant: str) -> object:
    msg = f"not JSON: {constant}"
    raise ValueError(msg)


def _json_lines(text: str) -> list[dict[str, object]]:
    """Each line as strict JSON: NaN and Infinity, which json.loads would accept, are refused."""
    return [json.loads(line, parse_constant=_refuse) for line in text.splitlines()]


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    """capsys, and the logging of the tests before restored after. Each test configures JSON
    logging itself: during setup, capsys has not yet put its own stream in sys.stderr."""
    before, root = structlog.get_config(), logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield capsys
    structlog.configure(**before)
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(capture=False)


def test_a_long_string_is_cut_with_a_marker(json_logs: pytest.CaptureFixture[str]) -> None:
    """A two-megabyte model name is logged as its first characters and how many were left."""
    configure_logging("json")
    structlog.get_logger("t").info("embed", model="m" * 2_000_000)
    [line] = _json_lines(json_logs.readouterr().err)
    model = str(line["model"])
    assert model.startswith("m" * MAX_LOGGED_CHARS)
    assert model.endswith(f"…[{2_000_000 - MAX_LOGGED_CHARS} more characters]")
    assert len(model) < 2 * MAX_LOGGED_CHARS


def test_non_finite_numbers_are_null(json_logs: pytest.CaptureFixture[str]) -> None:
    """NaN and infinities, which JSON cannot hold, are logged as null; other numbers stay."""
    configure_logging("json")
    structlog.get_logger("t").info(
        "engine_parity",
        max_abs_diff=float("nan"),
        min_cosine=np.float32("nan"),
        texts_per_s=float("inf"),
        checks=[1.5, float("-inf")],
        passed=False,
    )
    [line] = _json_lines(json_logs.readouterr().err)
    assert line["max_abs_diff"] is None
    assert line["min_cosine"] is None
    assert line["texts_per_s"] is None
    assert line["checks"] == [1.5, None]
    assert line["passed"] is False


def test_standard_library_lines_are_json_too(json_logs: pytest.CaptureFixture[str]) -> None:
    """uvicorn's lines, with or without a traceback, and warnings are JSON like the server's."""
    configure_logging("json")
    uvicorn = logging.getLogger("uvicorn.error")
    uvicorn.info("Started server process [%d]", 42)
    try:
        raise RuntimeError("x" * 10_000)  # noqa: TRY301 - a traceback to render
    except RuntimeError:
        uvicorn.exception("Exception in ASGI application\n")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        logging.captureWarnings(capture=True)  # catch_warnings restored what it had replaced
        warnings.warn("a library's warning", UserWarning, stacklevel=1)
    started, crashed, warned = _json_lines(json_logs.readouterr().err)
    assert started["event"] == "Started server process [42]"
    assert started["logger"] == "uvicorn.error"
    assert started["level"] == "info"
    assert crashed["level"] == "error"
    assert "exception" in crashed
    assert len(json.dumps(crashed)) < 20 * MAX_LOGGED_CHARS
    assert warned["logger"] == "py.warnings"
    assert "a library's warning" in str(warned["event"])
