from __future__ import annotations

import pytest

from adapters.http.go_duration import parse_go_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("10s", 10.0),
        ("1.5h", 5400.0),
        ("300ms", 0.3),
        ("-1s", -1.0),
        ("-1m", -60.0),
        ("0", 0.0),
        ("0s", 0.0),
        ("+2m", 120.0),
    ],
)
def test_go_durations_parse_to_seconds(text: str, seconds: float) -> None:
    """The strings Ollama's keep_alive accepts mean what Go's time.ParseDuration says."""
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "m", "5 m", "five minutes", "1d", "-", "5m3"])
def test_strings_go_refuses_are_refused(text: str) -> None:
    """A bare number without unit (other than 0), a day unit, or junk is not a duration."""
    assert parse_go_duration(text) is None
