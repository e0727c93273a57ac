"""The cluster every Ray test runs on: two nodes, both on the loopback."""

from __future__ import annotations

import ray


def test_both_nodes_listen_on_the_loopback_only(two_nodes: str) -> None:
    alive = [node for node in ray.nodes() if node["Alive"]]
    assert [node["NodeManagerAddress"] for node in alive] == ["127.0.0.1"] * 2
    assert [node["Resources"]["CPU"] for node in alive] == [1.0, 1.0]
    assert two_nodes.startswith("127.0.0.1:")
