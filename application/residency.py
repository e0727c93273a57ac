"""Which models stay loaded: keep-alive, least recently used first out, limits and pins.

The policy only decides. It holds the bookkeeping (sizes, users, keep-alives, when each model
went idle, pins), takes the time as an argument, and answers with `Unload` decisions that the
registry carries out; it loads nothing, waits for nothing and logs nothing.

A model stays while requests use it, then for its keep-alive (Ollama's `keep_alive`, the latest
request's, else the server's default), counted from the moment its last user finished, as Ollama
counts it. Pinned (preloaded) models stay whatever keep-alive or a limit says. A model is never
unloaded under a request: one that expires, makes room, or is asked to unload while in use is
marked `unload_pending`, and unloads when its last user releases it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from domain.errors import ModelUnavailable
from domain.models import ModelSpec

__all__ = ["DEFAULT_KEEP_ALIVE_S", "ResidencyPolicy", "Unload"]

DEFAULT_KEEP_ALIVE_S = 300.0  # Ollama's 5m, counted from the last release


@dataclass(frozen=True, slots=True)
class Unload:
    """A decision: unload `spec`, now if `users` is 0, else once the last of them releases it."""

    spec: ModelSpec
    reason: str  # "keep_alive", "max_loaded_models", "max_memory", or the caller's
    users: int = 0


@dataclass(slots=True)
class _Stay:
    size_bytes: int
    keep_alive_s: float  # the latest request's; negative keeps it for good
    idle_since: float  # when its last user released it (or it loaded)
    users: int = 0
    unload_pending: str | None = None  # why it unloads as soon as its last user releases it

    def idle_expiry(self, *, pinned: bool) -> float | None:
        """When it unloads if nothing uses it meanwhile; None while in use, or kept for good."""
        if self.users or self.keep_alive_s < 0 or pinned:
            return None
        return self.idle_since + self.keep_alive_s

    def shown_expiry(self, now: float, *, pinned: bool) -> float | None:
        """When it unloads as things stand at `now`; None: kept for good."""
        if pinned or self.keep_alive_s < 0:
            return None
        if self.unload_pending is not None:
            return now  # in use, and unloaded as soon as its requests finish
        if self.users:
            return now + self.keep_alive_s  # its keep-alive starts when they finish
        return self.idle_since + self.keep_alive_s


@dataclass(frozen=True, slots=True)
class _Limits:
    max_models: int | None
    max_bytes: int | None

    def passed(self, sizes: list[int], size: int) -> str | None:
        """The limit one more model, of `size` bytes, passes beside models of `sizes`; None
        where it fits."""
        if self.max_models is not None and len(sizes) + 1 > self.max_models:
            return "max_loaded_models"
        if self.max_bytes is not None and sum(sizes) + size > self.max_bytes:
            return "max_memory"
        return None

    def refusal(self, spec: ModelSpec, limit: str, size: int) -> ModelUnavailable:
        if limit == "max_loaded_models":
            reason = (
                f"the preloaded models already fill the limit of {self.max_models} loaded "
                "models (max_loaded_models)"
            )
        else:
            reason = (
                f"its {size / 2**20:.1f} MiB would pass the memory limit of "
                f"{(self.max_bytes or 0) / 2**20:.1f} MiB (max_memory) even with only the "
                "preloaded models loaded"
            )
        return ModelUnavailable(spec.qualified_name, reason)


class ResidencyPolicy:
    """Keep-alive, LRU and limits over the loaded models, as decisions.

    Limits (`max_loaded_models`, `max_memory_bytes`) count every model that stays, pinned ones
    included, and the loads in flight (`building`: past their room check, not yet admitted).
    Room for one more model is made by unloading unpinned models, least recently used first,
    idle ones before ones in use (those unload when their requests finish, so the limit can be
    passed until they do). A model that would pass a limit even with every unpinned model
    unloaded is refused.
    """

    def __init__(
        self,
        *,
        default_keep_alive_s: float = DEFAULT_KEEP_ALIVE_S,
        max_loaded_models: int | None = None,
        max_memory_bytes: int | None = None,
    ) -> None:
        self._default_keep_alive_s = default_keep_alive_s
        self._limits = _Limits(max_loaded_models, max_memory_bytes)
        self._pinned: set[ModelSpec] = set()  # preloaded: kept whatever keep-alive asks
        self._stays: dict[ModelSpec, _Stay] = {}  # least recently used first

    def pin(self, spec: ModelSpec) -> None:
        self._pinned.add(spec)

    def unpin(self, spec: ModelSpec) -> None:
        self._pinned.discard(spec)

    def is_pinned(self, spec: ModelSpec) -> bool:
        return spec in self._pinned

    def admit(self, spec: ModelSpec, size_bytes: int, now: float) -> None:
        """A model just loaded: idle since `now`, with the default keep-alive until a request
        names its own, and the most recently used."""
        self._stays[spec] = _Stay(size_bytes, self._default_keep_alive_s, idle_since=now)

    def use(self, spec: ModelSpec, keep_alive_s: float | None) -> None:
        """One more request uses `spec`; its keep-alive (None: the default) becomes the model's."""
        stay = self._stays[spec] = self._stays.pop(spec)  # now the most recently used
        stay.users += 1
        stay.keep_alive_s = self._default_keep_alive_s if keep_alive_s is None else keep_alive_s

    def release(self, spec: ModelSpec, now: float) -> list[Unload]:
        """One user of `spec` is done; with the last, its keep-alive starts (or it unloads)."""
        stay = self._stays.get(spec)
        if stay is None or stay.users == 0:
            return []
        stay.users -= 1
        self._stays[spec] = self._stays.pop(spec)
        if stay.users:
            return []
        stay.idle_since = now
        if stay.unload_pending is not None:
            return [self._unload_now(spec, stay.unload_pending)]
        if stay.keep_alive_s == 0 and spec not in self._pinned:
            return [self._unload_now(spec, "keep_alive")]
        return []

    def unload(self, spec: ModelSpec, reason: str) -> list[Unload]:
        """Unloads `spec`: now if idle, else once its last user releases it (said only once)."""
        stay = self._stays.get(spec)
        if stay is None or stay.unload_pending is not None:
            return []
        if stay.users == 0:
            return [self._unload_now(spec, reason)]
        stay.unload_pending = reason
        return [Unload(spec, reason, stay.users)]

    def expire(self, now: float) -> list[Unload]:
        """Unloads every idle model whose keep-alive has run out by `now`."""
        expired = [spec for spec, at in self._idle_expiries().items() if at <= now]
        return [self._unload_now(spec, "keep_alive") for spec in expired]

    def next_expiry(self) -> float | None:
        """When the soonest idle model's keep-alive runs out; None where none will."""
        return min(self._idle_expiries().values(), default=None)

    def resident(self, now: float) -> list[tuple[ModelSpec, float | None]]:
        """The models that stay at `now`, least recently used first, each with when it unloads
        (None: kept for good). One whose keep-alive has run out is as good as unloaded, so it is
        not listed, unloaded yet or not."""
        expiries = self._idle_expiries()
        return [
            (spec, stay.shown_expiry(now, pinned=spec in self._pinned))
            for spec, stay in self._stays.items()
            if expiries.get(spec, math.inf) > now
        ]

    def make_room(
        self, spec: ModelSpec, size: int, building: Mapping[ModelSpec, int]
    ) -> list[Unload]:
        """Unloads least recently used unpinned models until `spec`, of `size` bytes, fits
        beside the others and the loads `building`, or none is left to unload."""
        decisions = []
        while (limit := self._over_limit(spec, size, building)) is not None:
            unpinned = [
                (s, stay)
                for s, stay in self._stays.items()
                if s != spec and s not in self._pinned and stay.unload_pending is None
            ]
            if not unpinned:
                break
            oldest, _ = min(unpinned, key=lambda item: item[1].users > 0)  # idle first
            decisions += self.unload(oldest, limit)
        return decisions

    def unpinned_bytes(self, excluding: ModelSpec) -> int:
        """What the models that make_room may unload hold (every unpinned one but `excluding`)."""
        return sum(
            stay.size_bytes
            for s, stay in self._stays.items()
            if s != excluding and s not in self._pinned
        )

    def refusal(
        self, spec: ModelSpec, size: int, building: Mapping[ModelSpec, int]
    ) -> ModelUnavailable | None:
        """Why `spec` cannot load even with every unpinned model unloaded; None where it can."""
        limit = self._over_limit(spec, size, building, pinned_only=True)
        return None if limit is None else self._limits.refusal(spec, limit, size)

    def _unload_now(self, spec: ModelSpec, reason: str) -> Unload:
        del self._stays[spec]
        return Unload(spec, reason)

    def _idle_expiries(self) -> dict[ModelSpec, float]:
        """When each idle model unloads; one in use, pinned or kept for good has no entry."""
        expiries = {
            s: stay.idle_expiry(pinned=s in self._pinned) for s, stay in self._stays.items()
        }
        return {spec: at for spec, at in expiries.items() if at is not None}

    def _over_limit(
        self,
        spec: ModelSpec,
        size: int,
        building: Mapping[ModelSpec, int],
        *,
        pinned_only: bool = False,
    ) -> str | None:
        """The limit that `spec` would pass beside the models that stay (or only the pinned
        ones) and the loads building; None where it fits."""
        counted = [
            (s, stay.size_bytes) for s, stay in self._stays.items() if stay.unload_pending is None
        ]
        sizes = [
            b
            for s, b in [*counted, *building.items()]
            if s != spec and (s in self._pinned or not pinned_only)
        ]
        return self._limits.passed(sizes, size)
