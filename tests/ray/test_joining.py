"""Which cluster a command joins: the one it is given, else RAY_ADDRESS's, else a new local one
(never whichever cluster happens to run on the machine). ray.init is recorded, not run."""

from __future__ import annotations

from typing import Any

import pytest
import ray

from adapters.on_ray.cluster import LOOPBACK, join


@pytest.fixture
def inits(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    return calls


def test_no_address_and_no_variable_starts_a_new_local_cluster(
    inits: list[dict[str, Any]],
) -> None:
    join(None, environ={})
    assert inits == [{"address": "local", "_node_ip_address": LOOPBACK, "include_dashboard": False}]


def test_ray_address_is_joined_when_no_address_is_given(inits: list[dict[str, Any]]) -> None:
    join(None, environ={"RAY_ADDRESS": "10.0.0.5:6379"})
    assert inits == [{"address": "10.0.0.5:6379", "_node_ip_address": None}]


def test_the_address_given_wins_and_a_loopback_one_stays_on_the_loopback(
    inits: list[dict[str, Any]],
) -> None:
    join("127.0.0.1:6380", environ={"RAY_ADDRESS": "10.0.0.5:6379"})
    assert inits == [{"address": "127.0.0.1:6380", "_node_ip_address": LOOPBACK}]
