"""The residency policy alone: specs, sizes and times in, decisions out; no loop, no engine."""

from __future__ import annotations

from application.catalogue import CATALOGUE
from application.residency import ResidencyPolicy, Unload
from domain.errors import ModelUnavailable
from domain.models import ModelSpec

_BY_NAME = {spec.name: spec for spec in CATALOGUE}
A, B, C = (_BY_NAME[n] for n in ("all-MiniLM-L6-v2", "gte-base", "bert-base-uncased"))
NOW = 1_000_000.0
NOTHING_BUILDING: dict[ModelSpec, int] = {}


def _used(policy: ResidencyPolicy, *specs: ModelSpec, keep_alive_s: float | None = None) -> None:
    """Each spec admitted (100 bytes) if new, then used by one request that has finished, at NOW."""
    for spec in specs:
        if spec not in _listed(policy):
            policy.admit(spec, 100, NOW)
        policy.use(spec, keep_alive_s)
        assert policy.release(spec, NOW) == []


def _listed(policy: ResidencyPolicy, now: float = NOW) -> list[ModelSpec]:
    return [spec for spec, _ in policy.resident(now)]


def test_an_idle_model_expires_its_keep_alive_after_its_last_release() -> None:
    """next_expiry is the release plus the keep-alive; at that moment expire unloads it."""
    policy = ResidencyPolicy()
    _used(policy, A, keep_alive_s=60)
    assert policy.next_expiry() == NOW + 60
    assert policy.expire(NOW + 59) == []
    assert policy.expire(NOW + 60) == [Unload(A, "keep_alive")]
    assert policy.next_expiry() is None
    assert _listed(policy, NOW + 60) == []


def test_the_soonest_idle_expiry_is_the_next() -> None:
    """Of several idle models, the one whose keep-alive ends first sets the next expiry;
    a negative keep-alive never expires."""
    policy = ResidencyPolicy()
    _used(policy, A, keep_alive_s=60)
    _used(policy, B, keep_alive_s=20)
    _used(policy, C, keep_alive_s=-1)
    assert policy.next_expiry() == NOW + 20
    assert policy.expire(NOW + 25) == [Unload(B, "keep_alive")]
    assert policy.next_expiry() == NOW + 60


def test_a_model_in_use_never_expires() -> None:
    """While a request uses it, a model has no idle expiry, however long it takes."""
    policy = ResidencyPolicy()
    policy.admit(A, 100, NOW)
    policy.use(A, 60)
    assert policy.next_expiry() is None
    assert policy.expire(NOW + 10**6) == []
    assert policy.release(A, NOW + 10**6) == []
    assert policy.next_expiry() == NOW + 10**6 + 60


def test_a_query_lists_no_expired_model_and_unloads_nothing() -> None:
    """resident() leaves out a model past its keep-alive, and leaves it to expire() to go."""
    policy = ResidencyPolicy()
    _used(policy, A, keep_alive_s=60)
    assert _listed(policy, NOW + 61) == []
    assert _listed(policy, NOW + 59) == [A]
    assert policy.expire(NOW + 61) == [Unload(A, "keep_alive")]


def test_the_shown_expiry_of_each_state() -> None:
    """Idle: release plus keep-alive; in use: now plus keep-alive; pending unload: now;
    pinned or negative keep-alive: None."""
    policy = ResidencyPolicy()
    _used(policy, A, keep_alive_s=60)
    policy.admit(B, 100, NOW)
    policy.use(B, 30)
    policy.pin(C)
    _used(policy, C, keep_alive_s=0)
    assert dict(policy.resident(NOW + 10)) == {A: NOW + 60, B: NOW + 40, C: None}
    assert policy.unload(B, "requested") == [Unload(B, "requested", users=1)]
    assert dict(policy.resident(NOW + 10))[B] == NOW + 10


def test_the_list_runs_from_least_to_most_recently_used() -> None:
    """Using a model again moves it to the end of the list."""
    policy = ResidencyPolicy()
    _used(policy, A, B, C)
    _used(policy, A)
    assert _listed(policy) == [B, C, A]


def test_the_latest_keep_alive_and_the_default_apply() -> None:
    """A request's keep-alive replaces the model's; one that names none gets the default."""
    policy = ResidencyPolicy(default_keep_alive_s=300)
    _used(policy, A, keep_alive_s=3600)
    _used(policy, A, keep_alive_s=10)
    assert policy.next_expiry() == NOW + 10
    _used(policy, A)
    assert policy.next_expiry() == NOW + 300


def test_zero_keep_alive_unloads_with_the_last_release_unless_pinned() -> None:
    """keep-alive 0 unloads the model as its last user finishes; a pinned one stays."""
    policy = ResidencyPolicy()
    policy.admit(A, 100, NOW)
    policy.use(A, 0)
    policy.use(A, 0)
    assert policy.release(A, NOW) == []
    assert policy.release(A, NOW) == [Unload(A, "keep_alive")]
    policy.pin(B)
    policy.admit(B, 100, NOW)
    policy.use(B, 0)
    assert policy.release(B, NOW) == []
    assert _listed(policy, NOW + 10**9) == [B]


def test_an_unload_of_a_model_in_use_waits_for_its_last_user() -> None:
    """Asked while in use, the unload is deferred (and said once); the last release does it."""
    policy = ResidencyPolicy()
    policy.admit(A, 100, NOW)
    policy.use(A, None)
    assert policy.unload(A, "requested") == [Unload(A, "requested", users=1)]
    assert policy.unload(A, "requested") == []
    assert policy.release(A, NOW) == [Unload(A, "requested")]
    assert policy.unload(A, "requested") == []


def test_room_is_made_from_the_least_recently_used() -> None:
    """At the model limit, making room for one more unloads the one used longest ago."""
    policy = ResidencyPolicy(max_loaded_models=2)
    _used(policy, A, B, A)
    assert policy.make_room(C, 100, NOTHING_BUILDING) == [Unload(B, "max_loaded_models")]
    assert _listed(policy) == [A]


def test_idle_models_make_room_before_ones_in_use() -> None:
    """An idle model goes first, however recently one in use was used; one in use is only
    marked to go, and no longer counts against the limit."""
    policy = ResidencyPolicy(max_loaded_models=2)
    policy.admit(A, 100, NOW)
    policy.use(A, None)
    _used(policy, B)
    assert policy.make_room(C, 100, NOTHING_BUILDING) == [Unload(B, "max_loaded_models")]
    policy.admit(C, 100, NOW)
    policy.use(C, None)
    assert policy.make_room(B, 100, NOTHING_BUILDING) == [Unload(A, "max_loaded_models", users=1)]
    assert policy.make_room(B, 100, NOTHING_BUILDING) == []


def test_the_memory_limit_counts_sizes() -> None:
    """Under max_memory_bytes, the oldest goes once the sizes would pass the limit."""
    policy = ResidencyPolicy(max_memory_bytes=1000)
    policy.admit(A, 400, NOW)
    policy.admit(B, 500, NOW)
    assert policy.make_room(C, 100, NOTHING_BUILDING) == []
    assert policy.make_room(C, 200, NOTHING_BUILDING) == [Unload(A, "max_memory")]


def test_loads_in_flight_count_against_the_limits() -> None:
    """A load past its room check holds its room: the next model makes room around it."""
    policy = ResidencyPolicy(max_memory_bytes=1000)
    policy.admit(A, 400, NOW)
    assert policy.make_room(C, 200, {B: 500}) == [Unload(A, "max_memory")]


def test_pinned_models_count_but_are_never_unloaded_to_make_room() -> None:
    """The unpinned models make room around a pinned one."""
    policy = ResidencyPolicy(max_loaded_models=2)
    policy.pin(A)
    policy.admit(A, 100, NOW)
    _used(policy, B)
    assert policy.make_room(C, 100, NOTHING_BUILDING) == [Unload(B, "max_loaded_models")]


def test_a_model_that_fits_only_without_the_pinned_ones_is_refused() -> None:
    """When the pinned models alone (and pinned loads in flight) fill a limit, the refusal
    names it; a model that fits beside them, unpinned ones gone, is not refused."""
    policy = ResidencyPolicy(max_loaded_models=2, max_memory_bytes=1000)
    policy.pin(A)
    policy.admit(A, 100, NOW)
    _used(policy, C)
    assert policy.refusal(B, 100, NOTHING_BUILDING) is None
    policy.pin(C)
    refused = policy.refusal(B, 100, NOTHING_BUILDING)
    assert isinstance(refused, ModelUnavailable)
    assert "max_loaded_models" in refused.reason
    assert policy.refusal(A, 100, NOTHING_BUILDING) is None

    policy = ResidencyPolicy(max_memory_bytes=1000)
    policy.pin(A)
    policy.pin(B)
    policy.admit(A, 400, NOW)
    _used(policy, C)
    assert policy.refusal(C, 100, {B: 500}) is None
    refused = policy.refusal(C, 200, {B: 500})
    assert isinstance(refused, ModelUnavailable)
    assert "max_memory" in refused.reason
