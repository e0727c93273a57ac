"""`embedserve serve`: the HTTP server, with an option for every declared setting."""

from __future__ import annotations

import argparse
import signal

import structlog
import uvicorn

from adapters.bootstrap import build_app
from adapters.cli.options import add_options
from adapters.http.connections import ConnectionLimits, descriptor_budget, guarded_protocol
from adapters.settings import OPTIONS, Settings

__all__ = ["add_command", "run"]


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the HTTP server",
        description="Serve embeddings over the OpenAI and Ollama APIs. Every option also reads "
        "an EMBEDSERVE_* environment variable, named in its help.",
    )
    add_options(serve, (name for name, option in OPTIONS.items() if option.flag is not None))


def run(settings: Settings, parser: argparse.ArgumentParser) -> int:
    try:
        app = build_app(settings)
    except ValueError as exc:  # a setting refused at start (an alias, a preload): say which
        parser.error(str(exc))
    budget = descriptor_budget()
    limits = ConnectionLimits(
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
        max_connections=settings.max_connections or budget.connections,
    )
    structlog.get_logger("embedserve").info(
        "server_starting",
        url=f"http://{settings.host}:{settings.port}",
        home=str(settings.home),
        api_keys=len(settings.api_keys),  # how many, never which
        max_connections=limits.max_connections,
    )
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for whatever
    # handler was there before it: with Python's default one the process would die of the
    # signal (status 143) after a clean shutdown. This one lets main return 0.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: None)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        http=guarded_protocol(limits),
        backlog=budget.backlog,  # how many asyncio accepts at a time: see descriptor_budget
        ws="none",  # no route speaks WebSocket, and an upgraded connection escapes the limits
        # the same loop whatever else is installed: the ray extra brings uvloop, which uvicorn
        # would otherwise pick, and the connection guards are measured on asyncio's
        loop="asyncio",
        # uvicorn hints ints, but hands these to asyncio.wait_for and loop.call_later, which
        # take fractions too
        timeout_graceful_shutdown=settings.shutdown_timeout_s,  # type: ignore[arg-type]
        timeout_keep_alive=settings.idle_timeout_s,  # type: ignore[arg-type]
    )
    return 0
