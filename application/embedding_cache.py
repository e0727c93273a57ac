"""A bounded, least-recently-used store of model vectors, keyed by exactly what the model saw.

The key is the model as it runs (catalogue entry, engine, precision) and the token ids of one
input after tokenizing and truncating, so every option that changes what the model sees is in
it already: text or token-id input, the truncation mode, the `--token-ids` vocabulary. What it
holds is the model's own float32 row, before `dimensions` and normalisation: those run on every
answer, hit or miss, so one entry serves both dialects and every `dimensions`. The token count
of a hit is the length of its key, so usage stays truthful.

It lives on the event loop: no locks, and nothing calls it from a worker thread.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from domain.ops import Array

__all__ = ["ENTRY_OVERHEAD", "CacheStats", "EmbeddingCache"]

# What an entry costs beyond its vector and its packed ids: the bytes objects' headers (~2 x 33),
# the key tuple (~56), the OrderedDict's node and hash slot (~100). Rounded up: the budget is
# the process's memory, and an undercount would let the cache outgrow it.
ENTRY_OVERHEAD = 256


@dataclass(frozen=True, slots=True)
class CacheStats:
    hits: int
    misses: int
    evictions: int
    entries: int
    bytes: int  # vectors, packed ids and ENTRY_OVERHEAD, summed over the entries held
    max_bytes: int


def _pack(ids: Sequence[int]) -> bytes:
    # int32 holds every vocabulary's ids, in 4 bytes where a tuple of ints would take ~36 each
    return np.asarray(ids, dtype="<i4").tobytes()


class EmbeddingCache:
    """Rows by (model, token ids), evicted least recently used first when over `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._rows: OrderedDict[tuple[str, bytes], bytes] = OrderedDict()
        self._bytes = 0
        self._hits = 0
        self._misses = 0
        self._evictions = 0

    def get(self, model: str, ids: Sequence[int]) -> Array | None:
        """The row stored for these ids, read-only; counts a hit or a miss."""
        key = (model, _pack(ids))
        row = self._rows.get(key)
        if row is None:
            self._misses += 1
            return None
        self._rows.move_to_end(key)
        self._hits += 1
        return np.frombuffer(row, dtype=np.float32)

    def put(self, model: str, ids: Sequence[int], row: Array) -> None:
        """Keeps a copy of `row` as float32 bytes, evicting the oldest entries to make room.

        A row larger than the whole budget is not kept.
        """
        key = (model, _pack(ids))
        value = np.ascontiguousarray(row, dtype=np.float32).tobytes()
        cost = _cost(key, value)
        if cost > self.max_bytes:
            return
        old = self._rows.pop(key, None)
        if old is not None:
            self._bytes -= _cost(key, old)
        while self._bytes + cost > self.max_bytes:
            evicted_key, evicted = self._rows.popitem(last=False)
            self._bytes -= _cost(evicted_key, evicted)
            self._evictions += 1
        self._rows[key] = value
        self._bytes += cost

    @property
    def stats(self) -> CacheStats:
        return CacheStats(
            hits=self._hits,
            misses=self._misses,
            evictions=self._evictions,
            entries=len(self._rows),
            bytes=self._bytes,
            max_bytes=self.max_bytes,
        )


def _cost(key: tuple[str, bytes], value: bytes) -> int:
    # the model name is one string shared by every entry of that model: not counted per entry
    return len(value) + len(key[1]) + ENTRY_OVERHEAD
