"""The connection cap against the process's real descriptor limit."""

from __future__ import annotations

import resource

from adapters.http.connections import descriptor_budget


def test_the_connection_budget_leaves_descriptors_for_the_rest_of_the_server() -> None:
    """The cap stays below the soft descriptor limit, with room kept for model files."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert 0 < descriptor_budget() < soft
