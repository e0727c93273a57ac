"""The connection cap against the process's real descriptor limit."""

from __future__ import annotations

import resource

from adapters.http.connections import descriptor_budget


def test_the_connection_budget_leaves_descriptors_for_the_rest_of_the_server() -> None:
    """The cap, with three backlogs of connections accepted past it, stays below the soft
    descriptor limit."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    budget = descriptor_budget()
    assert budget.connections > 0
    assert budget.backlog > 0
    assert budget.connections + 3 * budget.backlog < soft
