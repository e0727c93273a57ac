"""Joining a Ray cluster, or starting one on this machine that listens on the loopback only."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Mapping

from adapters.settings import Settings

__all__ = ["LOOPBACK", "MISSING_EXTRA", "join", "leave", "threads_as_assigned"]

LOOPBACK = "127.0.0.1"
MISSING_EXTRA = "Ray is not installed: pip install 'embedserve[ray]'"

# Ray replaces a loopback address with this machine's outward one, on every connect, unless it
# is told it runs clusters on one machine only (its setting for macOS and Windows). Read once,
# when ray is first imported.
_ONE_MACHINE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _on_loopback(address: str) -> bool:
    host = address.removeprefix("ray://").rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def join(address: str | None, environ: Mapping[str, str] = os.environ) -> None:
    """Connect this process to the cluster at `address` (host:port of its head), else at
    RAY_ADDRESS, else start a local one whose every process binds 127.0.0.1, so no Ray traffic
    leaves the machine.

    Raises RuntimeError when the ray extra is missing."""
    address = address or environ.get("RAY_ADDRESS") or None
    local = address is None or _on_loopback(address)
    if local:
        os.environ.setdefault(_ONE_MACHINE, "0")
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError(MISSING_EXTRA) from exc
    if address is None:
        # "local": a new cluster. Without an address ray.init would join the cluster last
        # started on this machine (/tmp/ray/ray_current_cluster): someone else's.
        ray.init(address="local", _node_ip_address=LOOPBACK, include_dashboard=False)
    else:
        ray.init(address=address, _node_ip_address=LOOPBACK if local else None)


def leave() -> None:
    """Disconnect; a local cluster this process started stops with it."""
    import ray

    ray.shutdown()


def threads_as_assigned(settings: Settings) -> Settings:
    """In a replica or an actor: unless --threads says, a forward pass uses the CPUs Ray gave
    it. The runtimes' own default (every core of the node) would have the replicas or actors
    on one node fight over them."""
    if settings.threads is not None:
        return settings
    import ray

    assigned = ray.get_runtime_context().get_assigned_resources()  # type: ignore[no-untyped-call]
    cpus = assigned.get("CPU", 0.0)
    return dataclasses.replace(settings, threads=max(1, round(cpus))) if cpus else settings
