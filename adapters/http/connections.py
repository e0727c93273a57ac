"""The server's connections, against slow clients: how long one may take to send its headers
and its body, how long it may sit idle between requests, and how many may be open at once.

uvicorn (0.54, h11) bounds only the idle time after an answer (`timeout_keep_alive`): a client
that connects and sends nothing, or a request line and one header, or a body shorter than its
Content-Length, holds its connection, and a descriptor, for good; and `limit_concurrency` only
answers 503 once a request is complete, while every slow connection is still accepted, so a
flood of them exhausts the descriptors and every later client waits. `guarded_protocol` is
uvicorn's h11 protocol with the missing timers, and a cap below the descriptor limit that makes
room by closing the oldest connection that is not serving a request (as nginx reclaims its idle
ones), so a flood of slow connections only ever displaces other slow connections.
"""

from __future__ import annotations

import asyncio
import resource
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["ConnectionLimits", "DescriptorBudget", "descriptor_budget", "guarded_protocol"]

# Descriptors kept back from the cap for model files, graph caches, the hub's sockets, the log.
_RESERVE = 64
# What an unlimited descriptor limit counts as: a cap is wanted all the same.
_UNLIMITED = 65536
# Past the descriptors, connections cost memory (~10 KB each, idle): a cap however high the
# descriptor limit (containers often give a million).
_MOST_CONNECTIONS = 10_000
# uvicorn's listen backlog, which asyncio also takes as how many connections it accepts in one
# go: uvicorn's default where the descriptors allow, else an eighth of them.
_MAX_BACKLOG = 2048


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionLimits:
    header_timeout_s: float  # from the connection, or the first byte after an answer
    body_timeout_s: float  # from the end of the headers to the end of the body
    max_connections: int


@dataclass(frozen=True, slots=True)
class DescriptorBudget:
    connections: int  # the cap on open connections
    backlog: int  # uvicorn's listen backlog


def descriptor_budget() -> DescriptorBudget:
    """How many connections fit under the process's descriptor limit, and the backlog to
    listen with, so that accepting never runs out of descriptors.

    asyncio accepts up to `backlog` connections at a time and a connection closed to make room
    frees its descriptor two turns of the loop later, so up to three backlogs of connections
    can be open past the cap: they are kept back, with a reserve for the rest of the server.
    (Out of descriptors, asyncio 3.11 stops accepting for a second, and logs an error for every
    connection it tried to accept in that go.) A smaller backlog costs a client of a burst
    past it a second (its SYN sent again), so it is only as small as the limit demands.
    """
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = _UNLIMITED if soft == resource.RLIM_INFINITY else soft
    backlog = min(_MAX_BACKLOG, max(1, limit // 8))
    room = max(1, limit - _RESERVE - 3 * backlog)
    return DescriptorBudget(connections=min(room, _MOST_CONNECTIONS), backlog=backlog)


class _GuardedH11Protocol(H11Protocol):
    """One connection. `limits` and `waiting` are set per server by `guarded_protocol`."""

    limits: ClassVar[ConnectionLimits]
    # Open connections not serving a request (silent, sending headers, or idle between
    # requests), oldest first: the ones to close when the cap is reached. A dict keeps order.
    waiting: ClassVar[dict[_GuardedH11Protocol, None]]
    opened: ClassVar[set[_GuardedH11Protocol]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.opened) >= self.limits.max_connections and not self._make_room():
            transport.abort()  # every open connection is serving a request: this one waits
            return
        self.opened.add(self)
        self._header_timer = self._arm(self.limits.header_timeout_s)
        self.waiting[self] = None

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self.conn.their_state is h11.IDLE:
            # the first byte of a request on a kept-alive connection: its headers are timed
            self._header_timer = self._arm(self.limits.header_timeout_s)
        super().data_received(data)
        self._follow_request()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow_request()

    def connection_lost(self, exc: Exception | None) -> None:
        self._header_timer = _cancelled(self._header_timer)
        self._body_timer = _cancelled(self._body_timer)
        self.waiting.pop(self, None)
        self.opened.discard(self)
        super().connection_lost(exc)

    def _follow_request(self) -> None:
        """Times what the client still owes, after h11 has read what it sent."""
        if self.transport.is_closing():
            return
        state = self.conn.their_state
        if state is not h11.SEND_BODY:
            self._body_timer = _cancelled(self._body_timer)
        if state is h11.IDLE:  # waiting for a request (the keep-alive timer runs until a byte)
            # Back from an answer it is the newest, the last to be closed for room; a byte of
            # headers does not make it newer, or a trickle would never be closed.
            self.waiting.setdefault(self, None)
            return
        self._header_timer = _cancelled(self._header_timer)
        self.waiting.pop(self, None)
        if state is h11.SEND_BODY and self._body_timer is None:
            self._body_timer = self._arm(self.limits.body_timeout_s)

    def _make_room(self) -> bool:
        """Closes the oldest connection not serving a request; False if there is none."""
        for oldest in self.waiting:
            del self.waiting[oldest]
            self.opened.discard(oldest)
            oldest.transport.abort()
            return True
        return False

    def _arm(self, seconds: float) -> asyncio.TimerHandle:
        return self.loop.call_later(seconds, self._time_out)

    def _time_out(self) -> None:
        # abort, not close: a client that stopped reading must not keep the descriptor either
        self.transport.abort()


def _cancelled(timer: asyncio.TimerHandle | None) -> asyncio.TimerHandle | None:
    """No timer, once the one given is cancelled."""
    if timer is not None:
        timer.cancel()
    return None


def guarded_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    """The protocol class for one server (uvicorn's `http=`): its connections share a cap."""

    class GuardedH11Protocol(_GuardedH11Protocol):
        pass

    GuardedH11Protocol.limits = limits
    GuardedH11Protocol.waiting = {}
    GuardedH11Protocol.opened = set()
    return GuardedH11Protocol
