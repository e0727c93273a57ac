"""Every setting of the server, declared once: its flag, its environment variable, its default
as a user writes it, how such a text is read, and what it means.

`Settings` is what the composition root builds from; each of its fields carries its `Option`.
The command line (adapters/cli) builds its options from these declarations, and `read_settings`
fills a `Settings` from what was given there, else the environment, else the defaults. A
default is written once, in the user's spelling ("5m", "16MiB"), parsed for the field's value
and shown as written in `--help`.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar, get_args

from platformdirs import user_data_dir

from adapters.http.go_duration import parse_go_duration
from adapters.observability import LogFormat
from application.batching import BatchSettings
from application.engine_choice import AUTO, Precision
from domain.chunking import DEFAULT_OVERLAP
from domain.requests import Truncation

__all__ = [
    "ENGINES",
    "OPTIONS",
    "Option",
    "SettingError",
    "Settings",
    "Shortcut",
    "TokenIds",
    "default_engine",
    "default_home",
    "parse_size",
    "read_settings",
    "usable_cores",
]

T = TypeVar("T")

ENGINES = (AUTO, "numpy", "onnxruntime", "openvino", "coreml")
TokenIds = Literal["openai", "model"]
# how a list is given on the command line; in a variable its items are always comma-separated
Many = Literal["repeated", "words", "commas"]

_TRUTHY = {"1", "true", "yes", "on"}
_ABSURD = 2.0**63  # past any machine's memory, and past what an int64 gauge can show
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:([kmgt])(i)?)?b?", re.IGNORECASE)
_BATCHING = BatchSettings()  # the batcher's own defaults, so they are written in one place


class SettingError(ValueError):
    """A value in the environment (or a file it names) that cannot be read; says which."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Shortcut:
    """Another way to give a setting one fixed value, e.g. --no-truncate for --truncate false."""

    flag: str
    env: str
    means: str  # the value it stands for, as written after the setting's own flag


@dataclass(frozen=True, slots=True, kw_only=True)
class Option(Generic[T]):
    """How one setting is given. `parse` reads one value (one item, for a list) as a user writes
    it, and raises ValueError with a message that says what it expected."""

    flag: str | None  # None: read from the environment only
    env: str
    default: str | Callable[[], str]  # as a user would write it; a function where it depends
    parse: Callable[[str], T]
    meaning: str
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    many: Many | None = None  # the setting is a tuple of parsed items
    shortcut: Shortcut | None = None

    def default_text(self) -> str:
        return self.default() if callable(self.default) else self.default

    def read(self, text: str) -> Any:
        """The field's value from a text: a variable's value or the default."""
        if self.many is None:
            return self.parse(text)
        return tuple(self.parse(item.strip()) for item in text.split(",") if item.strip())


def _declared(option: Option[Any], *, secret: bool = False) -> Any:
    metadata = {"option": option}
    if callable(option.default):
        make = option.default
        return field(
            default_factory=lambda: option.read(make()), metadata=metadata, repr=not secret
        )
    return field(default=option.read(option.default), metadata=metadata, repr=not secret)


def setting(option: Option[T]) -> T:
    """A field whose default is its option's default, read."""
    return _declared(option)


def settings_list(option: Option[T], *, secret: bool = False) -> tuple[T, ...]:
    """A field holding several values: `option.many` says how the command line gives them."""
    return _declared(option, secret=secret)


def required(option: Option[T]) -> T:
    """A field without a default: code that builds Settings itself must say it (where models
    live), while read_settings falls back to the option's default."""
    return field(metadata={"option": option})


# How texts are read. Each raises ValueError saying what it expected: the command line shows
# it under the flag, read_settings under the variable's name.


def parse_size(text: str) -> int | None:
    """Bytes from `256MiB`, `1.5GB`, `64k` or `1048576`; None if it is not a size.

    KB/MB/GB are powers of 1000 and KiB/MiB/GiB of 1024, as the units say.
    """
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        return None
    number, prefix, binary = match.groups()
    power = "kmgt".index(prefix.lower()) + 1 if prefix else 0
    size = float(number) * (1024 if binary else 1000) ** power
    return int(size) if size < _ABSURD else None


def _size(examples: str, zero: str | None) -> Callable[[str], int]:
    """A byte size; 0 is accepted only where it means something (`zero` says what)."""

    def parse(text: str) -> int:
        size = parse_size(text)
        if size is None or (size == 0 and zero is None):
            hint = f"try {examples}" + (f"; 0 {zero}" if zero else "")
            msg = f"not a size: {text!r} ({hint})"
            raise ValueError(msg)
        return size

    return parse


def _limit(parse: Callable[[str], int]) -> Callable[[str], int | None]:
    """A limit where 0 is none."""
    return lambda text: parse(text) or None


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        msg = f"not a whole number: {text!r}"
        raise ValueError(msg) from None


def _count(what: str, hint: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.strip().isdigit():
            msg = f"not {what}: {text!r} ({hint})"
            raise ValueError(msg)
        return int(text)

    return parse


def _duration(text: str) -> float:
    seconds = parse_go_duration(text)
    if seconds is None:
        try:
            return float(text)
        except ValueError:
            msg = f"not a duration: {text!r} (try 5m, 300, 1h, -1 for forever)"
            raise ValueError(msg) from None
    return seconds


def _grace(text: str) -> float:
    seconds = _duration(text)
    if seconds < 0:
        msg = f"not a shutdown timeout: {text!r} (try 30s, 30, 0)"
        raise ValueError(msg)
    return seconds


def _timeout(text: str) -> float:
    seconds = _duration(text)
    if seconds <= 0:
        msg = f"not a timeout: {text!r} (try 10s, 1m, 5; more than 0)"
        raise ValueError(msg)
    return seconds


def _connections(text: str) -> int | None:
    """None: as many as the descriptor limit leaves room for (adapters/http/connections.py)."""
    if text.strip().lower() == "auto":
        return None
    if not text.strip().isdigit() or int(text) == 0:
        msg = f"not a number of connections: {text!r} (1 or more, or auto)"
        raise ValueError(msg)
    return int(text)


def _truncation(text: str) -> Truncation:
    try:
        return Truncation(text.strip().lower())
    except ValueError:
        msg = f"not a truncation: {text!r} (true, false or chunk)"
        raise ValueError(msg) from None


def _one_of(choices: tuple[T, ...]) -> Callable[[str], T]:
    def parse(text: str) -> T:
        for choice in choices:
            if choice == text:
                return choice
        shown = ", ".join(repr(c) for c in choices)
        msg = f"invalid choice: {text!r} (choose from {shown})"
        raise ValueError(msg)

    return parse


def _precision(text: str) -> tuple[str | None, Precision]:
    model, sep, value = text.rpartition("=")
    if value not in get_args(Precision):
        msg = f"not a precision: {text!r} (fp32, bf16, or MODEL=bf16)"
        raise ValueError(msg)
    return (model if sep else None), value  # type: ignore[return-value] # checked above


def _alias(text: str) -> tuple[str, str]:
    name, sep, model = text.partition("=")
    if not sep or not name.strip() or not model.strip():
        msg = f"not an alias: {text!r} (NAME=MODEL, e.g. text-embedding-3-small=all-MiniLM-L6-v2)"
        raise ValueError(msg)
    return name.strip(), model.strip()


def _host(text: str) -> str:
    host = text.strip().lower()
    if not host or any(c.isspace() or c in "/@" for c in host):
        msg = f"not a host name: {text!r} (try app.example, *.example.internal, 10.0.0.5:11434)"
        raise ValueError(msg)
    return host


def _text(text: str) -> str:
    return text


def _optional_text(text: str) -> str | None:
    return text or None


def _optional_path(text: str) -> Path | None:
    return Path(text) if text else None


def _truthy(text: str) -> bool:
    return text.lower() in _TRUTHY


def default_home() -> Path:
    return Path(os.environ.get("EMBEDSERVE_HOME") or user_data_dir("embedserve"))


def default_engine() -> str:
    """CoreML on a Mac (it runs on the GPU and Neural Engine too); elsewhere the fastest."""
    return "coreml" if sys.platform == "darwin" else AUTO


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The server's settings, in the order `embedserve serve --help` lists them."""

    host: str = setting(
        Option(
            flag="--host",
            env="EMBEDSERVE_HOST",
            default="127.0.0.1",
            parse=_text,
            meaning="the address the server listens on",
        )
    )
    port: int = setting(
        Option(
            flag="--port",
            env="EMBEDSERVE_PORT",
            default="11434",
            parse=_integer,
            meaning="the port the server listens on; 11434 is Ollama's",
        )
    )
    home: Path = required(
        Option(
            flag="--home",
            env="EMBEDSERVE_HOME",
            default=lambda: user_data_dir("embedserve"),
            parse=Path,
            meaning="base directory; models live in <home>/Embeddings",
        )
    )
    token_ids: TokenIds = setting(
        Option(
            flag="--token-ids",
            env="EMBEDSERVE_TOKEN_IDS",
            default="openai",
            parse=_one_of(get_args(TokenIds)),
            choices=get_args(TokenIds),
            meaning="how /v1/embeddings reads token-id inputs: OpenAI's cl100k_base ids, decoded "
            "and re-tokenized, or ids of the model's own vocabulary",
        )
    )
    # over-long inputs of requests that do not say
    truncate: Truncation = setting(
        Option(
            flag="--truncate",
            env="EMBEDSERVE_TRUNCATE",
            default="true",
            parse=_truncation,
            metavar="{true,false,chunk}",
            meaning="what to do with an input longer than the model's context when the request "
            "does not say (a `truncate` field, on /v1/embeddings and /api/embed alike): true "
            "cuts it, false refuses it with a 400 as OpenAI does, chunk embeds it whole as "
            "overlapping windows pooled into one vector",
            shortcut=Shortcut(flag="--no-truncate", env="EMBEDSERVE_NO_TRUNCATE", means="false"),
        )
    )
    chunk_overlap: int = setting(
        Option(
            flag="--chunk-overlap",
            env="EMBEDSERVE_CHUNK_OVERLAP",
            default=str(DEFAULT_OVERLAP),
            parse=_count("a token count", "0 or more"),
            metavar="TOKENS",
            meaning="tokens that consecutive windows share when an input is chunked, at most "
            "half a window",
        )
    )
    default_prompt_name: str | None = setting(
        Option(
            flag="--default-prompt-name",
            env="EMBEDSERVE_DEFAULT_PROMPT_NAME",
            default="",
            parse=_optional_text,
            metavar="NAME",
            meaning="the prompt a request that chooses none gets (no prompt_name, prompt or "
            "input_type), by name, for the models that define that name; others, and every "
            "model when unset, get no prompt, as TEI and Ollama",
        )
    )
    keep_alive_s: float = setting(
        Option(
            flag="--keep-alive",
            env="EMBEDSERVE_KEEP_ALIVE",
            default="5m",
            parse=_duration,
            meaning="how long an idle model stays loaded: a Go duration or seconds; negative "
            "keeps it forever",
        )
    )
    max_loaded_models: int | None = setting(
        Option(
            flag="--max-loaded-models",
            env="EMBEDSERVE_MAX_LOADED_MODELS",
            default="0",
            parse=_limit(_count("a number of models", "1 or more; 0 for no limit")),
            metavar="N",
            meaning="at most this many models loaded at once, 0 for no limit; loading one more "
            "first unloads the least recently used (preloaded models count, and are never "
            "unloaded)",
        )
    )
    max_memory_bytes: int | None = setting(
        Option(
            flag="--max-memory",
            env="EMBEDSERVE_MAX_MEMORY",
            default="0",
            parse=_limit(_size("4GiB, 500MB, 1073741824", "for no limit")),
            metavar="BYTES",
            meaning="at most this many bytes of models loaded at once, counted as each model's "
            "files (its /api/ps size): 4GiB, 500MB or bytes, 0 for no limit; loading one more "
            "first unloads the least recently used (preloaded models count, and are never "
            "unloaded)",
        )
    )
    engine: str = setting(
        Option(
            flag="--engine",
            env="EMBEDSERVE_ENGINE",
            default=default_engine,
            parse=_one_of(ENGINES),
            choices=ENGINES,
            meaning="what runs the transformer models: auto times the engines on a short probe "
            "at a model's first load and keeps the fastest that passes the parity gate "
            "(remembered per model and host); numpy is the reference; word-vector families "
            "always run on numpy",
        )
    )
    # (None, precision) for every model, (name, precision) for one; the last given wins
    precisions: tuple[tuple[str | None, Precision], ...] = settings_list(
        Option(
            flag="--precision",
            env="EMBEDSERVE_PRECISION",
            default="fp32",
            parse=_precision,
            many="repeated",
            metavar="[MODEL=]fp32|bf16",
            meaning="fp32 (identical to the reference) or bf16 (where the CPU multiplies bf16 "
            "natively, via OpenVINO; gated at min cosine 0.9999 to fp32). MODEL=bf16 sets one "
            "model; repeatable",
        )
    )
    threads: int | None = setting(  # per forward pass; None: the runtime's choice (every core)
        Option(
            flag="--threads",
            env="EMBEDSERVE_THREADS",
            default="0",
            parse=_limit(_integer),
            meaning="threads per forward pass for ONNX Runtime and OpenVINO; 0: the runtime's "
            "choice",
        )
    )
    onnx_providers: tuple[str, ...] = settings_list(
        Option(
            flag="--onnx-providers",
            env="EMBEDSERVE_ONNX_PROVIDERS",
            default="CPUExecutionProvider",
            parse=_text,
            many="commas",
            meaning="ONNX Runtime execution providers, in order, e.g. "
            "CUDAExecutionProvider,CPUExecutionProvider with onnxruntime-gpu installed",
        )
    )
    openvino_device: str = setting(
        Option(
            flag="--openvino-device",
            env="EMBEDSERVE_OPENVINO_DEVICE",
            default="CPU",
            parse=_text,
            meaning="OpenVINO device: CPU, GPU, AUTO, ...",
        )
    )
    coreml_compute_units: str = setting(
        Option(
            flag="--coreml-compute-units",
            env="EMBEDSERVE_COREML_COMPUTE_UNITS",
            default="all",
            parse=_one_of(("all", "cpu_only", "cpu_and_gpu", "cpu_and_ne")),
            choices=("all", "cpu_only", "cpu_and_gpu", "cpu_and_ne"),
            meaning="where CoreML runs a model on macOS",
        )
    )
    max_batch_tokens: int = setting(
        Option(
            flag="--max-batch-tokens",
            env="EMBEDSERVE_MAX_BATCH_TOKENS",
            default=str(_BATCHING.token_budget),
            parse=_integer,
            meaning="padded tokens per forward pass",
        )
    )
    max_concurrent_batches: int = setting(
        Option(
            flag="--max-concurrent-batches",
            env="EMBEDSERVE_MAX_CONCURRENT_BATCHES",
            default="1",
            parse=_integer,
            meaning="forward passes run at once, across models and, on ONNX Runtime, within "
            "one model's batch, where each pass then gets cores / this many threads unless "
            "--threads is set",
        )
    )
    queue_limit: int = setting(
        Option(
            flag="--queue-limit",
            env="EMBEDSERVE_QUEUE_LIMIT",
            default=str(_BATCHING.queue_limit),
            parse=_integer,
            meaning="inputs that may wait for one model; past it requests get a 503 with "
            "Retry-After",
        )
    )
    log_format: LogFormat = setting(
        Option(
            flag="--log-format",
            env="EMBEDSERVE_LOG_FORMAT",
            default="auto",
            parse=_one_of(get_args(LogFormat)),
            choices=get_args(LogFormat),
            meaning="auto: console on a terminal, JSON otherwise",
        )
    )
    preload: tuple[str, ...] = settings_list(  # loaded at start-up and kept for good
        Option(
            flag="--preload",
            env="EMBEDSERVE_PRELOAD",
            default="",
            parse=_text,
            many="words",
            metavar="MODEL",
            meaning="models loaded at start-up and kept loaded; /ready answers 200 once the "
            "first is in; with none, /ready waits for all-MiniLM-L6-v2",
        )
    )
    aliases: tuple[tuple[str, str], ...] = settings_list(  # (alias, catalogue name)
        Option(
            flag="--alias",
            env="EMBEDSERVE_ALIASES",
            default="",
            parse=_alias,
            many="repeated",
            metavar="NAME=MODEL",
            meaning="another name for a catalogue model, answering in both APIs and listed "
            "beside it, e.g. text-embedding-3-small=all-MiniLM-L6-v2 for clients that know "
            "only OpenAI's model names; it may not hide a name the catalogue already has. "
            "Repeatable",
        )
    )
    allow_models: tuple[str, ...] = settings_list(  # fnmatch patterns; none: anything
        Option(
            flag="--allow-models",
            env="EMBEDSERVE_ALLOW_MODELS",
            default="",
            parse=_text,
            many="repeated",
            metavar="PATTERN",
            meaning="only models matching one of these patterns may be used or fetched (fnmatch, "
            "case-insensitive, over catalogue names, Ollama's library names and repo ids, e.g. "
            "'BAAI/*' or 'all-minilm'); anything else is a 404 as an unknown model. Repeatable; "
            "default: anything",
        )
    )
    cache_bytes: int = setting(  # the embeddings cache's budget; 0: no cache
        Option(
            flag="--cache-size",
            env="EMBEDSERVE_CACHE_SIZE",
            default="0",
            parse=_size("256MiB, 1GB, 1048576", "turns the cache off"),
            metavar="BYTES",
            meaning="memory for an LRU cache of embeddings, so a repeated input of the same "
            "model is embedded once: 256MiB, 1GB or bytes; 0 turns it off",
        )
    )
    # none: the server is open; never printed. read_settings adds the key file's keys
    api_keys: tuple[str, ...] = settings_list(
        Option(
            flag="--api-key",
            env="EMBEDSERVE_API_KEYS",
            default="",
            parse=str.strip,
            many="repeated",
            metavar="KEY",
            meaning="require `Authorization: Bearer KEY` on every route but /, /health, /ready, "
            "/api/version, /metrics and /openapi; repeatable; none: the server is open. A key "
            "on the command line shows in the process list: prefer the variable or "
            "--api-key-file",
        ),
        secret=True,
    )
    api_key_file: Path | None = setting(
        Option(
            flag="--api-key-file",
            env="EMBEDSERVE_API_KEY_FILE",
            default="",
            parse=_optional_path,
            metavar="PATH",
            meaning="more API keys, one a line; lines starting with # are skipped",
        )
    )
    origins: tuple[str, ...] = settings_list(  # allowed besides Ollama's defaults
        Option(
            flag="--origins",
            env="EMBEDSERVE_ORIGINS",
            default="",
            parse=_text,
            many="commas",
            metavar="ORIGIN,...",
            meaning="browser origins allowed to call the server (CORS), besides pages on this "
            "machine (localhost, 127.0.0.1, 0.0.0.0, any port) and app://, file://, tauri://, "
            "vscode-webview:// and vscode-file://, as Ollama allows; `*` in one is a wildcard, "
            "e.g. https://*.example.com, and `*` alone allows any. A request from any other "
            "origin gets a 403, as OLLAMA_ORIGINS does",
        )
    )
    allowed_hosts: tuple[str, ...] = settings_list(  # answered besides this machine's names
        Option(
            flag="--allowed-hosts",
            env="EMBEDSERVE_ALLOWED_HOSTS",
            default="",
            parse=_host,
            many="repeated",
            metavar="HOST",
            meaning="Host names the server answers to besides this machine's own (localhost, "
            "*.localhost, 127.0.0.1, [::1] and --host) while it listens on a loopback address; "
            "any other Host gets a 403, as Ollama refuses them, so that a web page on a domain "
            "rebound to this machine cannot call it (DNS rebinding). `*` in one is a wildcard, "
            "e.g. *.example.internal, and `*` alone allows any; repeatable. On any other "
            "address (0.0.0.0, a LAN address) every Host is answered",
        )
    )
    max_body_bytes: int = setting(
        Option(
            flag="--max-body-size",
            env="EMBEDSERVE_MAX_BODY_SIZE",
            default="16MiB",
            parse=_size("16MiB, 1MB, 65536", None),
            metavar="BYTES",
            meaning="the largest request body accepted; a larger one gets a 413: 16MiB, 1MB or "
            "bytes",
        )
    )
    shutdown_timeout_s: float = setting(
        Option(
            flag="--shutdown-timeout",
            env="EMBEDSERVE_SHUTDOWN_TIMEOUT",
            default="30s",
            parse=_grace,
            metavar="DURATION",
            meaning="on SIGTERM or Ctrl-C the server stops accepting connections and lets "
            "requests in flight finish for up to this long, then cancels them and exits 0: a "
            "Go duration or seconds",
        )
    )
    # Against slow clients: a connection may hold a descriptor and a slot only so long
    header_timeout_s: float = setting(
        Option(
            flag="--header-timeout",
            env="EMBEDSERVE_HEADER_TIMEOUT",
            default="10s",
            parse=_timeout,
            metavar="DURATION",
            meaning="how long a client may take to send a request's line and headers, from "
            "its connection or from the first byte after its previous answer; past it the "
            "connection is closed: a Go duration or seconds",
        )
    )
    body_timeout_s: float = setting(
        Option(
            flag="--body-timeout",
            env="EMBEDSERVE_BODY_TIMEOUT",
            default="60s",
            parse=_timeout,
            metavar="DURATION",
            meaning="how long a client may take to send a request's body once its headers "
            "are in; past it the connection is closed: a Go duration or seconds",
        )
    )
    idle_timeout_s: float = setting(
        Option(
            flag="--idle-timeout",
            env="EMBEDSERVE_IDLE_TIMEOUT",
            default="5s",
            parse=_timeout,
            metavar="DURATION",
            meaning="how long a kept-alive connection may wait for its next request before it "
            "is closed: a Go duration or seconds",
        )
    )
    max_connections: int | None = setting(  # None: derived from the descriptor limit
        Option(
            flag="--max-connections",
            env="EMBEDSERVE_MAX_CONNECTIONS",
            default="auto",
            parse=_connections,
            metavar="N",
            meaning="connections open at once; auto: as many as the process's descriptor "
            "limit leaves room for, past a reserve for model files and for connections being "
            "accepted, and at most 10000. At the cap a new connection closes the oldest one "
            "that is idle or still sending its headers, or is itself closed if every one is busy",
        )
    )
    # huggingface_hub's own variables, read as it reads them
    offline: bool = setting(
        Option(flag=None, env="HF_HUB_OFFLINE", default="", parse=_truthy, meaning="no network")
    )
    hf_endpoint: str | None = setting(
        Option(
            flag=None,
            env="HF_ENDPOINT",
            default="",
            parse=_optional_text,
            meaning="the Hub's address",
        )
    )

    @property
    def precision(self) -> Precision:
        """The precision of every model that --precision does not name."""
        named = [value for model, value in self.precisions if model is None]
        return named[-1] if named else "fp32"

    @property
    def model_precision(self) -> Mapping[str, Precision]:
        return {model: value for model, value in self.precisions if model is not None}

    @property
    def threads_per_pass(self) -> int | None:
        """ONNX Runtime's threads per forward pass: --threads, or where its passes run side by
        side (--max-concurrent-batches), their share of the cores rather than every core each.
        (OpenVINO runs one model's passes in turn: it keeps --threads, or every core.)"""
        if self.threads is not None or self.max_concurrent_batches <= 1:
            return self.threads
        return max(1, usable_cores() // self.max_concurrent_batches)

    @property
    def batching(self) -> BatchSettings:
        return BatchSettings(
            token_budget=self.max_batch_tokens,
            queue_limit=self.queue_limit,
            passes_at_once=self.max_concurrent_batches,
        )

    @classmethod
    def from_environment(cls, home: Path | None = None) -> Settings:
        """Defaults overridden by HF_HUB_OFFLINE and HF_ENDPOINT, as huggingface_hub reads them."""
        given = {} if home is None else {"home": home}
        return read_settings(given, os.environ, names=("home",))


OPTIONS: Mapping[str, Option[Any]] = {f.name: f.metadata["option"] for f in fields(Settings)}


def read_settings(
    given: Mapping[str, object],
    environ: Mapping[str, str],
    names: Collection[str] | None = None,
) -> Settings:
    """Settings from values given on the command line (already read, by field name), else the
    environment, else the declared defaults. With `names`, only those settings (and the ones
    read from the environment only) leave their defaults. An empty variable counts as unset.

    Raises SettingError for a variable that cannot be read.
    """
    values: dict[str, Any] = {}
    for name, option in OPTIONS.items():
        if names is None or name in names or option.flag is None:
            values[name] = given[name] if name in given else _from_environment(option, environ)
    if "api_keys" in values:
        values["api_keys"] = _all_keys(values["api_keys"], values.get("api_key_file"))
    return Settings(**values)


def _from_environment(option: Option[Any], environ: Mapping[str, str]) -> Any:
    """The variable's value, else its shortcut's, else the default."""
    text, env = environ.get(option.env) or None, option.env
    shortcut = option.shortcut
    if text is None and shortcut and _truthy(environ.get(shortcut.env, "")):
        text, env = shortcut.means, shortcut.env
    if text is None:
        return option.read(option.default_text())
    try:
        return option.read(text)
    except ValueError as exc:
        raise SettingError(f"{env}: {exc}") from None


def _all_keys(keys: tuple[str, ...], key_file: Path | None) -> tuple[str, ...]:
    """The keys given, then the key file's (it adds to either): blank and repeated ones dropped.
    A refusal never repeats a key."""
    if key_file is not None:
        try:
            lines = key_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingError(f"--api-key-file {key_file}: {exc.__class__.__name__}") from None
        keys = (*keys, *(line for line in lines if not line.lstrip().startswith("#")))
    return tuple(dict.fromkeys(k.strip() for k in keys if k.strip()))


def usable_cores() -> int:
    """The cores this process may run on (a container's or taskset's share, where known)."""
    if hasattr(os, "sched_getaffinity"):  # not on macOS
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
