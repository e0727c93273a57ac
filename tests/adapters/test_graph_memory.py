"""A graph engine's encoder gives its runtime's working memory back only after a large pass."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from adapters.engines.model_graphs import LARGE_PASS_TOKENS, GraphEncoder
from domain.ops import Array


class _Runner:
    def __init__(self) -> None:
        self.releases = 0

    def __call__(self, feeds: Mapping[str, np.ndarray]) -> Array:
        return np.zeros((len(feeds["input_ids"]), 4), dtype=np.float32)

    def release(self) -> None:
        self.releases += 1


def _pass(encoder: GraphEncoder, rows: int, tokens: int) -> None:
    ids = np.ones((rows, tokens), dtype=np.int64)
    encoder.embed(ids, ids)


def test_a_large_pass_is_released_once() -> None:
    """After a pass of LARGE_PASS_TOKENS padded tokens, the next release reaches the runtime;
    a second release with no pass in between does nothing."""
    runner = _Runner()
    encoder = GraphEncoder(4, runner)
    _pass(encoder, 4, LARGE_PASS_TOKENS // 4)
    encoder.release_memory()
    encoder.release_memory()
    assert runner.releases == 1


def test_small_passes_keep_their_memory() -> None:
    """Passes below the threshold keep what they hold: taking it again would cost each pass."""
    runner = _Runner()
    encoder = GraphEncoder(4, runner)
    for _ in range(3):
        _pass(encoder, 2, LARGE_PASS_TOKENS // 4)
        encoder.release_memory()
    assert runner.releases == 0
