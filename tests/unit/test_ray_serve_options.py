"""`embedserve ray serve`'s options, read without a cluster (and without the ray extra): replica
counts, the autoscaling config built from them, what is refused, and the missing extra."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from adapters.cli import build_parser, main
from adapters.cli.ray_serve import scaling_from
from adapters.on_ray.scaling import DEFAULT_MAX_ONGOING_REQUESTS, ScalingError
from adapters.settings import Settings


@pytest.fixture(autouse=True)
def _no_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    """`import ray` fails here, as without the extra: a refusal that broke would otherwise go
    on to start a real cluster from a unit test."""
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # join sets it; restored after


def _options(*argv: str) -> dict[str, object]:
    args = build_parser().parse_args(["ray", "serve", *argv])
    return scaling_from(args, Settings(home=Path("/srv"))).deployment_options()


def test_nothing_given_is_one_replica_holding_64_requests() -> None:
    """One fixed replica of 1 CPU; max_ongoing_requests is ours (64), not Ray's 5."""
    options = _options()
    assert options["num_replicas"] == 1
    assert options["max_ongoing_requests"] == DEFAULT_MAX_ONGOING_REQUESTS == 64
    assert options["ray_actor_options"] == {"num_cpus": 1.0}
    assert "autoscaling_config" not in options


def test_replicas_is_a_fixed_count() -> None:
    """--replicas N sets num_replicas, and no autoscaling."""
    options = _options("--replicas", "3", "--max-ongoing-requests", "16", "--replica-cpus", "2")
    assert (options["num_replicas"], options["max_ongoing_requests"]) == (3, 16)
    assert options["ray_actor_options"] == {"num_cpus": 2.0}
    assert "autoscaling_config" not in options


def test_min_and_max_replicas_build_the_autoscaling_config() -> None:
    """--min/--max-replicas and --target-ongoing-requests become Ray's autoscaling_config, and
    no fixed count."""
    options = _options(
        "--min-replicas", "2", "--max-replicas", "6", "--target-ongoing-requests", "8"
    )
    assert options["autoscaling_config"] == {
        "min_replicas": 2,
        "max_replicas": 6,
        "target_ongoing_requests": 8.0,
    }
    assert "num_replicas" not in options


def test_the_target_defaults_to_half_the_cap() -> None:
    """Without --target-ongoing-requests a replica is added at half of --max-ongoing-requests."""
    options = _options("--max-replicas", "4", "--max-ongoing-requests", "40")
    assert options["autoscaling_config"] == {
        "min_replicas": 1,
        "max_replicas": 4,
        "target_ongoing_requests": 20.0,
    }


def test_the_shutdown_timeout_is_the_replicas_grace() -> None:
    """--shutdown-timeout, the server's grace for requests in flight, is Ray's per replica."""
    args = build_parser().parse_args(["ray", "serve", "--shutdown-timeout", "45s"])
    settings = Settings(home=Path("/srv"), shutdown_timeout_s=45.0)
    assert scaling_from(args, settings).deployment_options()["graceful_shutdown_timeout_s"] == 45.0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--replicas", "2", "--max-replicas", "3"], "--replicas is a fixed count"),
        (["--replicas", "2", "--min-replicas", "1"], "--replicas is a fixed count"),
        (["--target-ongoing-requests", "4"], "steers autoscaling"),
        (["--replicas", "0"], "--replicas must be at least 1"),
        (["--min-replicas", "3", "--max-replicas", "2"], "--max-replicas must be at least 3"),
        (["--max-replicas", "2", "--target-ongoing-requests", "100"], "at most --max-ongoing"),
        (["--max-ongoing-requests", "0"], "--max-ongoing-requests must be at least 1"),
    ],
)
def test_counts_that_do_not_go_together_are_refused(argv: list[str], message: str) -> None:
    """Each refusal names the options at fault."""
    args = build_parser().parse_args(["ray", "serve", *argv])
    with pytest.raises(ScalingError, match=message):
        scaling_from(args, Settings(home=Path("/srv")))


@pytest.mark.parametrize(
    "flag", ["--idle-timeout", "--header-timeout", "--body-timeout", "--max-connections"]
)
def test_listener_options_are_refused_with_the_reason(
    flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The options of `embedserve serve`'s own listener exit 2, saying Ray's proxy holds the
    connections, before any cluster is joined."""
    with pytest.raises(SystemExit) as exited:
        main(["ray", "serve", flag, "5"])
    assert exited.value.code == 2
    assert f"{flag}: applies to `embedserve serve`'s own listener only" in capsys.readouterr().err


def test_refused_counts_exit_2_before_joining(capsys: pytest.CaptureFixture[str]) -> None:
    """Refused replica counts are a usage error (exit 2), said before any cluster is joined."""
    with pytest.raises(SystemExit) as exited:
        main(["ray", "serve", "--replicas", "2", "--max-replicas", "3"])
    assert exited.value.code == 2
    assert "--replicas is a fixed count" in capsys.readouterr().err


def test_without_the_ray_extra_it_says_what_to_install(capsys: pytest.CaptureFixture[str]) -> None:
    """With ray not importable the command exits 2 with the pip command, and no traceback."""
    assert main(["ray", "serve", "--home", "/srv"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'embedserve[ray]'" in err
    assert "Traceback" not in err
