"""The `embedserve` console script."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from adapters.bootstrap import build_app
from adapters.cli import batch, models, ray_serve, serve
from adapters.cli.options import settings_from
from adapters.settings import SettingError, Settings

__all__ = ["build_parser", "main", "openapi_document"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="embedserve", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve.add_command(commands)
    commands.add_parser("openapi", help="print the OpenAPI document the server publishes")
    models.add_commands(commands)
    batch.add_command(commands)
    ray_serve.add_command(commands)
    return parser


def openapi_document() -> str:
    """Built without loading any model, so it needs no network and no weights."""
    app = build_app(Settings(home=Path(tempfile.gettempdir()) / "embedserve-openapi"))
    return json.dumps(app.openapi_schema.to_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "openapi":
        sys.stdout.write(openapi_document())
        return 0
    try:
        settings = settings_from(args)
    except SettingError as exc:
        parser.error(str(exc))
    if args.command == "serve":
        return serve.run(settings, parser)
    if args.command == "batch":
        return batch.run(args, settings)
    if args.command == "ray":
        return ray_serve.run(args, settings, parser)
    return models.run(args, settings)
