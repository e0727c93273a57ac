"""The command line's side of the declared settings (adapters/settings.py): an argparse option
for each declaration a command offers, and the values given there read into `Settings`."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from adapters.settings import OPTIONS, Option, Settings, read_settings

__all__ = ["add_options", "settings_from"]

# Each command's parser remembers the settings it offers, so that main reads those, and no
# more, from the environment: `embedserve pull` must not fail on a bad EMBEDSERVE_PORT.
_OFFERED = "settings_offered"


def add_options(parser: argparse.ArgumentParser, names: Iterable[str]) -> None:
    """An option for each named setting, in the order given."""
    offered = tuple(names)
    for name in offered:
        _add_option(parser, name, OPTIONS[name])
    parser.set_defaults(**{_OFFERED: offered})


def settings_from(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> Settings:
    """What the command line gave, else the environment, else the defaults.

    Raises SettingRefused for a variable that cannot be read.
    """
    offered: tuple[str, ...] = getattr(args, _OFFERED, ())
    given = {name: getattr(args, name) for name in offered if getattr(args, name) is not None}
    given = {n: tuple(v) if OPTIONS[n].many else v for n, v in given.items()}
    return read_settings(given, environ, names=offered)


def _add_option(parser: argparse.ArgumentParser, name: str, option: Option[Any]) -> None:
    if option.flag is None:
        msg = f"{name} is read from {option.env} only: it has no flag to offer"
        raise ValueError(msg)
    kind: dict[str, Any] = {"type": _argparse_type(option.parse)}
    if option.many == "repeated":
        kind["action"] = "append"
    elif option.many == "words":
        kind["nargs"] = "+"
    elif option.many == "commas":  # one flag, its items split as in the variable
        kind["type"] = _argparse_type(option.read)
    parser.add_argument(
        option.flag,
        dest=name,
        default=None,  # not given: settings_from looks in the environment
        choices=option.choices,
        metavar=option.metavar or _metavar(option.flag, option.choices),
        help=_help(option),
        **kind,
    )
    shortcut = option.shortcut
    if shortcut is not None:
        parser.add_argument(
            shortcut.flag,
            dest=name,
            action="store_const",
            const=option.parse(shortcut.means),
            help=f"the same as {option.flag} {shortcut.means} ({shortcut.env})",
        )


def _metavar(flag: str, choices: tuple[str, ...] | None) -> str | None:
    """Named for the flag (the field's own name is no user's word), as argparse would have."""
    return None if choices else flag.lstrip("-").replace("-", "_").upper()


def _help(option: Option[Any]) -> str:
    """The meaning, then where else it is read from and the default, as a user writes them."""
    notes = option.env + (", comma-separated" if option.many else "")
    default = option.default_text()
    if default:
        notes += f"; default {default}"
    return f"{option.meaning} ({notes})".replace("%", "%%")  # argparse formats help with %


def _argparse_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """argparse shows an ArgumentTypeError's message under the flag; a ValueError's it drops."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert
