"""Each setting is declared once (adapters/settings.py): the command line, the environment and
`Settings` all follow from that declaration."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from adapters.cli import build_parser, main
from adapters.cli.options import settings_from
from adapters.settings import OPTIONS, SettingError, Settings, parse_size, read_settings
from domain.requests import Truncation

HOME = {"EMBEDSERVE_HOME": "/srv/embedserve"}


def _settings(*argv: str, env: dict[str, str] | None = None) -> Settings:
    return settings_from(build_parser().parse_args(list(argv)), HOME | (env or {}))


def _help_of(flag: str) -> str:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    serve = commands.choices["serve"]
    return next(a.help or "" for a in serve._actions if flag in a.option_strings)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("1048576", 1 << 20),
        ("256MiB", 256 << 20),
        ("256 mib", 256 << 20),
        ("1GB", 10**9),
        ("1.5GiB", 3 << 29),
        ("64k", 64_000),
        ("64KiB", 65_536),
        ("100B", 100),
    ],
)
def test_sizes_read_as_their_units_say(text: str, size: int) -> None:
    """KB/MB/GB count in 1000s, KiB/MiB/GiB in 1024s, a bare number in bytes."""
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "MiB", "-1", "12 apples", "1iB", "9" * 400])
def test_what_is_not_a_size_is_none(text: str) -> None:
    """A size the server cannot use is refused rather than guessed."""
    assert parse_size(text) is None


def test_a_flag_wins_over_its_variable_and_the_variable_over_the_default() -> None:
    """The same setting from the three places it can come from, in that order."""
    assert _settings("serve").keep_alive_s == 300.0
    assert _settings("serve", env={"EMBEDSERVE_KEEP_ALIVE": "1m"}).keep_alive_s == 60.0
    given = _settings("serve", "--keep-alive", "2s", env={"EMBEDSERVE_KEEP_ALIVE": "1m"})
    assert given.keep_alive_s == 2.0


@pytest.mark.parametrize(
    ("flag", "shown", "field", "value"),
    [
        ("--keep-alive", "default 5m", "keep_alive_s", 300.0),
        ("--max-body-size", "default 16MiB", "max_body_bytes", 16 * 2**20),
        ("--max-batch-tokens", "default 8192", "max_batch_tokens", 8192),
        ("--queue-limit", "default 16384", "queue_limit", 16_384),
    ],
)
def test_help_shows_the_default_as_it_is_written(
    flag: str, shown: str, field: str, value: object
) -> None:
    """`--help` shows the declared default in the user's spelling; Settings holds it read."""
    assert shown in _help_of(flag)
    assert getattr(Settings(home=Path("/x")), field) == value


def test_every_default_is_the_declared_text_read() -> None:
    """A field's default is its option's default, read: no second spelling of it anywhere."""
    settings = Settings(home=Path("/x"))
    for name, option in OPTIONS.items():
        if name != "home":
            assert getattr(settings, name) == option.read(option.default_text()), name


@pytest.mark.parametrize(
    ("argv", "env", "mode"),
    [
        ((), {}, Truncation.CUT),
        (("--truncate", "chunk"), {}, Truncation.CHUNK),
        (("--no-truncate",), {}, Truncation.REFUSE),
        ((), {"EMBEDSERVE_TRUNCATE": "False"}, Truncation.REFUSE),
        ((), {"EMBEDSERVE_NO_TRUNCATE": "1"}, Truncation.REFUSE),
        ((), {"EMBEDSERVE_NO_TRUNCATE": "1", "EMBEDSERVE_TRUNCATE": "chunk"}, Truncation.CHUNK),
        (("--no-truncate", "--truncate", "true"), {}, Truncation.CUT),
    ],
)
def test_truncate_is_read_once_into_a_mode(
    argv: tuple[str, ...], env: dict[str, str], mode: Truncation
) -> None:
    """--truncate, --no-truncate and their variables all end as a Truncation, never a bool;
    EMBEDSERVE_TRUNCATE wins over the older EMBEDSERVE_NO_TRUNCATE, and the last flag wins."""
    truncate = _settings("serve", *argv, env=env).truncate
    assert type(truncate) is Truncation
    assert truncate is mode


def test_an_unreadable_variable_is_refused_by_its_name() -> None:
    """A bad value in the environment names the variable and what was expected."""
    with pytest.raises(SettingError, match="EMBEDSERVE_PORT: not a whole number: 'eighty'"):
        read_settings({}, HOME | {"EMBEDSERVE_PORT": "eighty"})


def test_the_server_stops_on_an_unreadable_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`embedserve serve` exits with usage (status 2) and names the variable."""
    monkeypatch.setenv("EMBEDSERVE_KEEP_ALIVE", "soon")
    with pytest.raises(SystemExit) as stopped:
        main(["serve", "--home", "/srv/embedserve"])
    assert stopped.value.code == 2
    assert "EMBEDSERVE_KEEP_ALIVE: not a duration: 'soon'" in capsys.readouterr().err


def test_a_model_command_reads_only_the_settings_it_offers() -> None:
    """`pull` has no --port, so a bad EMBEDSERVE_PORT cannot stop it; `list` reads it."""
    env = {"EMBEDSERVE_PORT": "eighty", "HF_HUB_OFFLINE": "yes"}
    pulled = _settings("pull", "all-minilm", env=env)
    assert (pulled.home, pulled.offline, pulled.port) == (Path("/srv/embedserve"), True, 11434)
    assert _settings("list", env={"EMBEDSERVE_PORT": "8080"}).port == 8080
    with pytest.raises(SettingError, match="EMBEDSERVE_PORT"):
        _settings("list", env=env)


def test_from_environment_reads_the_home_and_the_hubs_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HF_HUB_OFFLINE and HF_ENDPOINT as huggingface_hub reads them; the server's own
    variables are left to the command line."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("EMBEDSERVE_PORT", "eighty")
    settings = Settings.from_environment(Path("/h"))
    assert (settings.home, settings.offline, settings.hf_endpoint) == (
        Path("/h"),
        True,
        "http://127.0.0.1:9",
    )
    assert settings.port == 11434


def test_precision_is_one_default_and_some_models() -> None:
    """--precision repeats; MODEL=bf16 names one model, and the last default given wins."""
    given = _settings("serve", "--precision", "bf16", "--precision", "m=fp32")
    assert (given.precision, dict(given.model_precision)) == ("bf16", {"m": "fp32"})
    from_env = _settings("serve", env={"EMBEDSERVE_PRECISION": " m=bf16 , fp32"})
    assert (from_env.precision, dict(from_env.model_precision)) == ("fp32", {"m": "bf16"})
    assert _settings("serve").precision == "fp32"


def test_a_list_in_a_variable_is_comma_separated_and_trimmed() -> None:
    """Blank items are skipped, the others trimmed; a flag given replaces the variable."""
    env = {"EMBEDSERVE_ORIGINS": " https://a.example, ,https://b.example "}
    assert _settings("serve", env=env).origins == ("https://a.example", "https://b.example")
    assert _settings("serve", "--origins", "https://c.example", env=env).origins == (
        "https://c.example",
    )


def test_api_keys_are_trimmed_and_counted_once() -> None:
    """Keys from the flag or the variable, blank ones dropped and repeats kept once."""
    flags = ("--api-key", " k1 ", "--api-key", "k1", "--api-key", "", "--api-key", "k2")
    assert _settings("serve", *flags).api_keys == ("k1", "k2")
    env = {"EMBEDSERVE_API_KEYS": "k3,,k3, k4"}
    assert _settings("serve", env=env).api_keys == ("k3", "k4")


def test_batching_follows_its_three_settings() -> None:
    """--max-batch-tokens, --queue-limit and --max-concurrent-batches make the batcher's
    settings; one pass at a time by default."""
    assert _settings("serve").batching.passes_at_once == 1
    flags = ("--max-batch-tokens", "512", "--queue-limit", "7", "--max-concurrent-batches", "2")
    batching = _settings("serve", *flags).batching
    assert (batching.token_budget, batching.queue_limit, batching.passes_at_once) == (512, 7, 2)


def test_passes_side_by_side_share_the_cores() -> None:
    """Each of N passes at once gets cores / N threads, unless --threads says; one pass at a
    time leaves the runtime its own choice (every core)."""
    cores = len(os.sched_getaffinity(0))
    assert _settings("serve").threads_per_pass is None
    assert _settings("serve", "--max-concurrent-batches", "2").threads_per_pass == max(
        1, cores // 2
    )
    assert _settings("serve", "--max-concurrent-batches", f"{cores * 4}").threads_per_pass == 1
    given = _settings("serve", "--max-concurrent-batches", "2", "--threads", "3")
    assert given.threads_per_pass == 3


def test_slow_clients_are_bounded_by_default() -> None:
    """Headers, bodies and idle keep-alive all have a timeout, and the connection cap follows
    the descriptor limit unless a number is given."""
    settings = _settings("serve")
    assert (settings.header_timeout_s, settings.body_timeout_s) == (10.0, 60.0)
    assert settings.idle_timeout_s == 5.0
    assert settings.max_connections is None
    given = _settings("serve", "--max-connections", "500", "--header-timeout", "2s")
    assert (given.max_connections, given.header_timeout_s) == (500, 2.0)


@pytest.mark.parametrize(
    ("variable", "text", "expected"),
    [
        ("EMBEDSERVE_HEADER_TIMEOUT", "0", "not a timeout: '0'"),
        ("EMBEDSERVE_IDLE_TIMEOUT", "-1", "not a timeout: '-1'"),
        ("EMBEDSERVE_MAX_CONNECTIONS", "0", "not a number of connections: '0'"),
        ("EMBEDSERVE_MAX_CONNECTIONS", "many", "not a number of connections: 'many'"),
    ],
)
def test_a_timeout_or_cap_that_bounds_nothing_is_refused(
    variable: str, text: str, expected: str
) -> None:
    """A zero or negative timeout, or a cap of no connections, would lock every client out
    or none: refused by the variable's name."""
    with pytest.raises(SettingError, match=f"{variable}: {expected}"):
        read_settings({}, HOME | {variable: text})
