"""Every `embedserve serve` option has an EMBEDSERVE_* variable, and README's table says so."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from adapters.cli import build_parser as parser
from adapters.settings import OPTIONS

_ENV = re.compile(r"EMBEDSERVE_[A-Z_]+")


def _serve() -> argparse.ArgumentParser:
    commands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return commands.choices["serve"]


def _options() -> dict[str, str]:
    """Each option's long flag -> the environment variable its help names."""
    found = {}
    for action in _serve()._actions:
        if isinstance(action, argparse._HelpAction) or not action.option_strings:
            continue
        flag = max(action.option_strings, key=len)
        named = _ENV.findall(action.help or "")
        assert named, f"{flag}'s help names no EMBEDSERVE_* variable"
        found[flag] = named[0]
    return found


def _readme_table() -> list[list[str]]:
    text = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| `--")]
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]


def _readme_rows() -> dict[str, str]:
    rows: dict[str, str] = {}
    for row in _readme_table():
        cells = [c.strip("`") for c in row]
        if len(cells) > 1:
            rows[cells[0].split()[0]] = cells[1]
    return rows


def test_every_option_reads_an_environment_variable() -> None:
    options = _options()
    assert "--port" in options
    assert len(set(options.values())) == len(options), "two options share a variable"


def test_the_readme_table_lists_every_option_with_its_variable() -> None:
    assert _readme_rows() == _options()


def test_the_readme_shows_each_written_default_as_declared() -> None:
    """A default the table writes as a value (`5m`, `16MiB`) is the declared one, as written."""
    declared = {o.flag: o.default for o in OPTIONS.values() if isinstance(o.default, str)}
    checked = set()
    for flag, _env, default, *_ in _readme_table():
        if default.startswith("`") and flag.strip("`") in declared:
            assert default.split("`")[1] == declared[flag.strip("`")], flag
            checked.add(flag.strip("`"))
    assert {"--keep-alive", "--max-body-size", "--max-batch-tokens", "--queue-limit"} <= checked
