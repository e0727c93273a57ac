"""The `embedserve` console script."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import structlog
import uvicorn

from adapters.bootstrap import Settings, build_app, default_home
from adapters.http.go_duration import parse_go_duration

__all__ = ["main"]


def _env(name: str, default: str) -> str:
    return os.environ.get(f"EMBEDSERVE_{name}", default)


def _duration(text: str) -> float:
    seconds = parse_go_duration(text)
    if seconds is None:
        try:
            return float(text)
        except ValueError:
            msg = f"not a duration: {text!r} (try 5m, 300, 1h, -1 for forever)"
            raise argparse.ArgumentTypeError(msg) from None
    return seconds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="embedserve", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the HTTP server",
        description="Serve embeddings over the OpenAI and Ollama APIs. Every option also reads "
        "an EMBEDSERVE_* environment variable, named in its help.",
    )
    serve.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="EMBEDSERVE_HOST")
    serve.add_argument(
        "--port", type=int, default=int(_env("PORT", "11434")), help="EMBEDSERVE_PORT"
    )
    serve.add_argument(
        "--home",
        type=Path,
        default=None,
        help="base directory; models live in <home>/Embeddings (EMBEDSERVE_HOME; "
        f"default {default_home()})",
    )
    serve.add_argument(
        "--token-ids",
        choices=["openai", "model"],
        default=_env("TOKEN_IDS", "openai"),
        help="how /v1/embeddings reads token-id inputs: OpenAI's cl100k_base ids, decoded and "
        "re-tokenized (default), or ids of the model's own vocabulary (EMBEDSERVE_TOKEN_IDS)",
    )
    serve.add_argument(
        "--no-truncate",
        action="store_true",
        default=_env("NO_TRUNCATE", "").lower() in {"1", "true", "yes"},
        help="refuse /v1/embeddings inputs longer than the model's context with a 400, as "
        "OpenAI does, instead of truncating them (EMBEDSERVE_NO_TRUNCATE)",
    )
    serve.add_argument(
        "--keep-alive",
        type=_duration,
        default=_duration(_env("KEEP_ALIVE", "5m")),
        help="how long an idle model stays loaded: a Go duration or seconds; negative keeps "
        "it forever (EMBEDSERVE_KEEP_ALIVE, default 5m)",
    )
    serve.add_argument(
        "--log-format",
        choices=["auto", "console", "json"],
        default=_env("LOG_FORMAT", "auto"),
        help="auto: console on a terminal, JSON otherwise (EMBEDSERVE_LOG_FORMAT)",
    )
    commands.add_parser("openapi", help="print the OpenAPI document the server publishes")
    return parser


def openapi_document() -> str:
    """Built without loading any model, so it needs no network and no weights."""
    app = build_app(Settings(home=Path(tempfile.gettempdir()) / "embedserve-openapi"))
    return json.dumps(app.openapi_schema.to_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "openapi":
        sys.stdout.write(openapi_document())
        return 0
    base = Settings.from_environment(args.home)
    settings = Settings(
        home=base.home,
        token_ids=args.token_ids,
        truncate=not args.no_truncate,
        keep_alive_s=args.keep_alive,
        offline=base.offline,
        hf_endpoint=base.hf_endpoint,
        log_format=args.log_format,
    )
    app = build_app(settings)
    structlog.get_logger("embedserve").info(
        "server_starting", url=f"http://{args.host}:{args.port}", home=str(settings.home)
    )
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
