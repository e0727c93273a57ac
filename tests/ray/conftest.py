"""A local Ray cluster of two nodes, 1 CPU each, every process on 127.0.0.1; skipped without
the ray extra. Started once per session and stopped by the fixture that started it (never a
machine-wide `ray stop`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.on_ray.cluster import LOOPBACK, MISSING_EXTRA

# before ray is imported: see adapters/on_ray/cluster.py
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

try:
    import ray  # noqa: F401 - only whether it imports
except ImportError:
    # Each module here imports ray: reported as skipped, with the reason, instead of an error.
    class _WithoutRay(pytest.Module):
        def _getobj(self) -> object:
            pytest.skip(MISSING_EXTRA, allow_module_level=True)

    def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module:
        return _WithoutRay.from_parent(parent, path=module_path)


@pytest.fixture(scope="session")
def two_nodes() -> Iterator[str]:
    """The head's address (host:port); this process is connected to it as a driver."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "node_ip_address": LOOPBACK, "include_dashboard": False},
    )
    try:
        cluster.add_node(num_cpus=1, node_ip_address=LOOPBACK)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, _node_ip_address=LOOPBACK)
        yield cluster.address
    finally:
        ray.shutdown()
        cluster.shutdown()
