"""How many replicas serve, and how much each takes on: the Serve deployment's options, as plain
values (no ray import), so the command line can check them before it joins a cluster."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_MAX_ONGOING_REQUESTS",
    "DEFAULT_TARGET_ONGOING_REQUESTS",
    "Scaling",
    "ScalingError",
    "scaling",
]

# Ray's default (5) caps how many requests a replica holds at once, and so how many the
# batcher can merge into one forward pass: a burst of single-text requests would run as passes
# of 5 while the rest waited in Ray's queue. 64 lets one pass fill the batcher's row cap
# (BatchSettings.max_batch); the batcher's own queue limit still answers 503 past that.
DEFAULT_MAX_ONGOING_REQUESTS = 64
# Half the cap, whatever it is set to: a replica is added while each still has room to merge
# more, before requests wait in Ray's queue (Ray's default, 2, adds replicas for a load that
# one merged pass absorbs).
DEFAULT_TARGET_ONGOING_REQUESTS = DEFAULT_MAX_ONGOING_REQUESTS / 2


class ScalingError(ValueError):
    """Replica counts that do not go together; says which."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Scaling:
    """A fixed number of replicas, or a range that Ray Serve's autoscaler keeps each replica's
    ongoing requests near `target_ongoing_requests` within."""

    replicas: int | None = 1  # None: autoscaled between min and max
    min_replicas: int = 1
    max_replicas: int = 1
    target_ongoing_requests: float = DEFAULT_TARGET_ONGOING_REQUESTS
    max_ongoing_requests: int = DEFAULT_MAX_ONGOING_REQUESTS
    replica_cpus: float = 1.0
    graceful_shutdown_timeout_s: float | None = None  # None: Ray's default

    def deployment_options(self) -> dict[str, Any]:
        """Keyword arguments of `Deployment.options`."""
        options: dict[str, Any] = {
            "max_ongoing_requests": self.max_ongoing_requests,
            "ray_actor_options": {"num_cpus": self.replica_cpus},
        }
        if self.replicas is None:
            options["autoscaling_config"] = {
                "min_replicas": self.min_replicas,
                "max_replicas": self.max_replicas,
                "target_ongoing_requests": self.target_ongoing_requests,
            }
        else:
            options["num_replicas"] = self.replicas
        if self.graceful_shutdown_timeout_s is not None:
            options["graceful_shutdown_timeout_s"] = self.graceful_shutdown_timeout_s
        return options


def scaling(  # noqa: PLR0913 - the command line's options, as given (None: not given)
    *,
    replicas: int | None = None,
    min_replicas: int | None = None,
    max_replicas: int | None = None,
    target_ongoing_requests: float | None = None,
    max_ongoing_requests: int | None = None,
    replica_cpus: float | None = None,
    graceful_shutdown_timeout_s: float | None = None,
) -> Scaling:
    """--replicas N, or --min-replicas A --max-replicas B (either may be left out: 1 and A),
    with --target-ongoing-requests only for a range; nothing given is one replica.

    Raises ScalingError for counts that do not go together."""
    ranged = min_replicas is not None or max_replicas is not None
    if replicas is not None and ranged:
        raise ScalingError("--replicas is a fixed count: give it, or --min/--max-replicas")
    if target_ongoing_requests is not None and not ranged:
        raise ScalingError("--target-ongoing-requests steers autoscaling: give --max-replicas")
    max_ongoing = (
        DEFAULT_MAX_ONGOING_REQUESTS if max_ongoing_requests is None else max_ongoing_requests
    )
    _at_least(1, max_ongoing, "--max-ongoing-requests")
    cpus = 1.0 if replica_cpus is None else replica_cpus
    if cpus < 0:
        raise ScalingError(f"--replica-cpus must be 0 or more, not {cpus:g}")
    common: dict[str, Any] = {
        "max_ongoing_requests": max_ongoing,
        "replica_cpus": cpus,
        "graceful_shutdown_timeout_s": graceful_shutdown_timeout_s,
    }
    if not ranged:
        fixed = 1 if replicas is None else replicas
        _at_least(1, fixed, "--replicas")
        return Scaling(replicas=fixed, min_replicas=fixed, max_replicas=fixed, **common)
    low = 1 if min_replicas is None else min_replicas
    high = low if max_replicas is None else max_replicas
    _at_least(0, low, "--min-replicas")
    _at_least(max(1, low), high, "--max-replicas")
    target = max_ongoing / 2 if target_ongoing_requests is None else target_ongoing_requests
    if not 0 < target <= max_ongoing:
        raise ScalingError(
            f"--target-ongoing-requests must be above 0 and at most --max-ongoing-requests "
            f"({max_ongoing}), not {target:g}"
        )
    return Scaling(
        replicas=None,
        min_replicas=low,
        max_replicas=high,
        target_ongoing_requests=target,
        **common,
    )


def _at_least(low: int, value: int, flag: str) -> None:
    if value < low:
        raise ScalingError(f"{flag} must be at least {low}, not {value}")
