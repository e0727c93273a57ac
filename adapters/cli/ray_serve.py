"""`embedserve ray serve`: the server as a Ray Serve application, N replicas behind Ray's proxy.

Ray is imported only when the command runs: without the ray extra the rest of the command line
works, and this command says what to install.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from adapters.cli.options import add_options
from adapters.on_ray.scaling import (
    DEFAULT_MAX_ONGOING_REQUESTS,
    Scaling,
    ScalingError,
    scaling,
)
from adapters.settings import OPTIONS, Settings

__all__ = ["PROXY_LOCATIONS", "add_command", "run", "scaling_from"]

# Ray's names; Disabled is left out, since this command exists to give an endpoint
PROXY_LOCATIONS = ("EveryNode", "HeadOnly")
# What only `embedserve serve`'s own uvicorn listener does: behind Ray's proxy the proxy holds
# the connections, with its own settings (Ray's http_options: keep_alive_timeout_s,
# request_timeout_s). Refused rather than silently ignored.
NOT_BEHIND_RAY = ("header_timeout_s", "body_timeout_s", "idle_timeout_s", "max_connections")


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ray = commands.add_parser("ray", help="run on a Ray cluster (the ray extra)")
    on_ray = ray.add_subparsers(dest="ray_command", required=True)
    parser = on_ray.add_parser(
        "serve",
        help="serve from N replicas behind Ray Serve's proxy",
        description="Deploy the server as a Ray Serve application named embedserve (route /), "
        "print its endpoint, and serve until SIGINT or SIGTERM, then delete it. Each replica "
        "is built as `embedserve serve` builds its server, from the options below.",
    )
    ray_options = parser.add_argument_group("Ray")
    ray_options.add_argument(
        "--address",
        help="the cluster's head (host:port, or ray://host:port); default: RAY_ADDRESS, else a "
        "new local cluster on 127.0.0.1 that stops with this command",
    )
    ray_options.add_argument("--replicas", type=int, metavar="N", help="a fixed count; default 1")
    ray_options.add_argument(
        "--min-replicas", type=int, metavar="A", help="autoscale from A (default 1) ..."
    )
    ray_options.add_argument("--max-replicas", type=int, metavar="B", help="... to B replicas")
    ray_options.add_argument(
        "--target-ongoing-requests",
        type=float,
        metavar="R",
        help="autoscaling keeps each replica's requests in flight near R; default half of "
        "--max-ongoing-requests",
    )
    ray_options.add_argument(
        "--max-ongoing-requests",
        type=int,
        metavar="M",
        help="requests a replica holds at once, and so the most its batcher can merge into "
        f"one forward pass; the rest wait in Ray's queue. Default {DEFAULT_MAX_ONGOING_REQUESTS} "
        "(Ray's own default, 5, would starve the batcher)",
    )
    ray_options.add_argument(
        "--replica-cpus",
        type=float,
        metavar="C",
        help="CPUs Ray reserves for each replica (default 1); --threads defaults to it",
    )
    ray_options.add_argument(
        "--proxy-location",
        choices=PROXY_LOCATIONS,
        default="EveryNode",
        help="where Ray runs its HTTP proxy, listening on --host:--port: every node (Ray's "
        "default), or the head node only (one port per machine: two nodes on one machine "
        "cannot both bind it)",
    )
    offered = [name for name, o in OPTIONS.items() if o.flag and name not in NOT_BEHIND_RAY]
    add_options(parser, offered)
    for name in NOT_BEHIND_RAY:
        parser.add_argument(
            str(OPTIONS[name].flag),
            dest=f"refused_{name}",
            metavar="-",
            help="not here: it applies to `embedserve serve`'s own listener; behind Ray's "
            "proxy, Ray's http_options hold connections",
        )


def scaling_from(args: argparse.Namespace, settings: Settings) -> Scaling:
    """Raises ScalingError for counts that do not go together."""
    return scaling(
        replicas=args.replicas,
        min_replicas=args.min_replicas,
        max_replicas=args.max_replicas,
        target_ongoing_requests=args.target_ongoing_requests,
        max_ongoing_requests=args.max_ongoing_requests,
        replica_cpus=args.replica_cpus,
        # a replica Ray stops lets its requests in flight finish for as long as the server would
        graceful_shutdown_timeout_s=settings.shutdown_timeout_s,
    )


def run(args: argparse.Namespace, settings: Settings, parser: argparse.ArgumentParser) -> int:
    refused = [OPTIONS[n].flag for n in NOT_BEHIND_RAY if getattr(args, f"refused_{n}", None)]
    if refused:
        parser.error(
            f"{', '.join(str(f) for f in refused)}: applies to `embedserve serve`'s own "
            "listener only; behind Ray Serve's proxy, set Ray's http_options instead"
        )
    try:
        replicas = scaling_from(args, settings)
    except ScalingError as exc:
        parser.error(str(exc))
    from adapters.on_ray.cluster import join, leave

    try:
        join(args.address)
    except RuntimeError as exc:  # the ray extra is missing
        sys.stderr.write(f"embedserve ray serve: {exc}\n")
        return 2
    try:
        from adapters.on_ray.serving import deployed

        with deployed(settings, replicas, args.proxy_location) as url:
            sys.stdout.write(f"{url}\n")
            sys.stdout.flush()
            _until_stopped()
    finally:
        leave()
    return 0


def _until_stopped() -> None:
    """Blocks until SIGINT or SIGTERM; either then ends the command normally (exit 0)."""
    stop = threading.Event()

    def handler(_signum: int, _frame: Any) -> None:
        stop.set()

    with _handling((signal.SIGINT, signal.SIGTERM), handler):
        while not stop.wait(0.5):
            pass


@contextmanager
def _handling(signals: tuple[signal.Signals, ...], handler: Any) -> Iterator[None]:
    before = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, previous in before.items():
            signal.signal(s, previous)
