"""The `embedserve` console script."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog
import uvicorn

from adapters import cli_models
from adapters.bootstrap import ENGINES, Settings, build_app, default_engine, default_home
from adapters.http.go_duration import parse_go_duration
from application.batching import BatchSettings
from application.embedding_cache import parse_size
from application.engine_choice import Precision
from domain.chunking import DEFAULT_OVERLAP
from domain.requests import Truncation

__all__ = ["main"]


def _env(name: str, default: str) -> str:
    return os.environ.get(f"EMBEDSERVE_{name}", default)


def _duration(text: str) -> float:
    seconds = parse_go_duration(text)
    if seconds is None:
        try:
            return float(text)
        except ValueError:
            msg = f"not a duration: {text!r} (try 5m, 300, 1h, -1 for forever)"
            raise argparse.ArgumentTypeError(msg) from None
    return seconds


def _truncation(text: str) -> Truncation:
    try:
        return Truncation(text.strip().lower())
    except ValueError:
        msg = f"not a truncation: {text!r} (true, false or chunk)"
        raise argparse.ArgumentTypeError(msg) from None


def _overlap(text: str) -> int:
    if not text.strip().isdigit():
        msg = f"not a token count: {text!r} (0 or more)"
        raise argparse.ArgumentTypeError(msg)
    return int(text)


def _precision(text: str) -> tuple[str | None, Precision]:
    model, sep, value = text.rpartition("=")
    if value not in {"fp32", "bf16"}:
        msg = f"not a precision: {text!r} (fp32, bf16, or MODEL=bf16)"
        raise argparse.ArgumentTypeError(msg)
    return (model if sep else None), value  # type: ignore[return-value] # checked above


def _precisions(
    given: list[tuple[str | None, Precision]] | None,
) -> tuple[Precision, dict[str, Precision]]:
    if given is None:
        given = [_precision(p.strip()) for p in _env("PRECISION", "fp32").split(",") if p.strip()]
    default: Precision = "fp32"
    per_model: dict[str, Precision] = {}
    for model, value in given:
        if model is None:
            default = value
        else:
            per_model[model] = value
    return default, per_model


def _alias(text: str) -> tuple[str, str]:
    name, sep, model = text.partition("=")
    if not sep or not name.strip() or not model.strip():
        msg = f"not an alias: {text!r} (NAME=MODEL, e.g. text-embedding-3-small=all-MiniLM-L6-v2)"
        raise argparse.ArgumentTypeError(msg)
    return name.strip(), model.strip()


def _aliases(
    given: list[tuple[str, str]] | None, parser: argparse.ArgumentParser
) -> tuple[tuple[str, str], ...]:
    """--alias wins over EMBEDSERVE_ALIASES; a bad value in either is refused alike."""
    if given is None:
        try:
            given = [_alias(a) for a in _env("ALIASES", "").split(",") if a.strip()]
        except argparse.ArgumentTypeError as exc:
            parser.error(f"EMBEDSERVE_ALIASES: {exc}")
    return tuple(given)


def _size(examples: str, zero: str | None) -> Callable[[str], int]:
    """An argparse type for a byte size; 0 is accepted only where it means something."""

    def parse(text: str) -> int:
        size = parse_size(text)
        if size is None or (size == 0 and zero is None):
            hint = f"try {examples}" + (f"; 0 {zero}" if zero else "")
            msg = f"not a size: {text!r} ({hint})"
            raise argparse.ArgumentTypeError(msg)
        return size

    return parse


_byte_size = _size("256MiB, 1GB, 1048576", "turns the cache off")
_memory_limit = _size("4GiB, 500MB, 1073741824", "for no limit")
_body_limit = _size("16MiB, 1MB, 65536", None)


def _model_count(text: str) -> int:
    if not text.strip().isdigit():
        msg = f"not a number of models: {text!r} (1 or more; 0 for no limit)"
        raise argparse.ArgumentTypeError(msg)
    return int(text)


def _grace(text: str) -> float:
    seconds = _duration(text)
    if seconds < 0:
        msg = f"not a shutdown timeout: {text!r} (try 30s, 30, 0)"
        raise argparse.ArgumentTypeError(msg)
    return seconds


def _api_keys(
    given: list[str] | None, key_file: Path | None, parser: argparse.ArgumentParser
) -> tuple[str, ...]:
    """--api-key wins over EMBEDSERVE_API_KEYS; a key file (one key a line, # comments) adds
    to either. Errors never repeat a key."""
    keys = given if given is not None else _env("API_KEYS", "").split(",")
    if key_file is not None:
        try:
            lines = key_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            parser.error(f"--api-key-file {key_file}: {exc.__class__.__name__}")
        keys = [*keys, *(line for line in lines if not line.lstrip().startswith("#"))]
    return tuple(dict.fromkeys(k.strip() for k in keys if k.strip()))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="embedserve", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the HTTP server",
        description="Serve embeddings over the OpenAI and Ollama APIs. Every option also reads "
        "an EMBEDSERVE_* environment variable, named in its help.",
    )
    serve.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="EMBEDSERVE_HOST")
    serve.add_argument(
        "--port", type=int, default=int(_env("PORT", "11434")), help="EMBEDSERVE_PORT"
    )
    serve.add_argument(
        "--home",
        type=Path,
        default=None,
        help="base directory; models live in <home>/Embeddings (EMBEDSERVE_HOME; "
        f"default {default_home()})",
    )
    serve.add_argument(
        "--token-ids",
        choices=["openai", "model"],
        default=_env("TOKEN_IDS", "openai"),
        help="how /v1/embeddings reads token-id inputs: OpenAI's cl100k_base ids, decoded and "
        "re-tokenized (default), or ids of the model's own vocabulary (EMBEDSERVE_TOKEN_IDS)",
    )
    refuse = _env("NO_TRUNCATE", "").lower() in {"1", "true", "yes"}  # the older spelling
    serve.add_argument(
        "--truncate",
        type=_truncation,
        default=_env("TRUNCATE", "false" if refuse else "true"),
        metavar="{true,false,chunk}",
        help="what to do with an input longer than the model's context when the request does "
        "not say (a `truncate` field, on /v1/embeddings and /api/embed alike): true cuts it, "
        "false refuses it with a 400 as OpenAI does, chunk embeds it whole as overlapping "
        "windows pooled into one vector (EMBEDSERVE_TRUNCATE, default true)",
    )
    serve.add_argument(
        "--no-truncate",
        dest="truncate",
        action="store_const",
        const=Truncation.REFUSE,
        help="the same as --truncate false (EMBEDSERVE_NO_TRUNCATE)",
    )
    serve.add_argument(
        "--chunk-overlap",
        type=_overlap,
        default=_env("CHUNK_OVERLAP", str(DEFAULT_OVERLAP)),
        metavar="TOKENS",
        help="tokens that consecutive windows share when an input is chunked, at most half a "
        f"window (EMBEDSERVE_CHUNK_OVERLAP, default {DEFAULT_OVERLAP})",
    )
    serve.add_argument(
        "--keep-alive",
        type=_duration,
        default=_duration(_env("KEEP_ALIVE", "5m")),
        help="how long an idle model stays loaded: a Go duration or seconds; negative keeps "
        "it forever (EMBEDSERVE_KEEP_ALIVE, default 5m)",
    )
    serve.add_argument(
        "--max-loaded-models",
        type=_model_count,
        default=_env("MAX_LOADED_MODELS", "0"),
        metavar="N",
        help="at most this many models loaded at once; loading one more first unloads the "
        "least recently used (preloaded models count, and are never unloaded) "
        "(EMBEDSERVE_MAX_LOADED_MODELS, default 0: no limit)",
    )
    serve.add_argument(
        "--max-memory",
        type=_memory_limit,
        default=_env("MAX_MEMORY", "0"),
        metavar="BYTES",
        help="at most this many bytes of models loaded at once, counted as each model's files "
        "(its /api/ps size): 4GiB, 500MB or bytes; loading one more first unloads the least "
        "recently used (preloaded models count, and are never unloaded) "
        "(EMBEDSERVE_MAX_MEMORY, default 0: no limit)",
    )
    serve.add_argument(
        "--engine",
        choices=ENGINES,
        default=_env("ENGINE", default_engine()),
        help="what runs the transformer models: auto times the engines on a short probe at a "
        "model's first load and keeps the fastest that passes the parity gate (remembered per "
        "model and host); numpy is the reference; word-vector families always run on numpy "
        f"(EMBEDSERVE_ENGINE, default {default_engine()})",
    )
    serve.add_argument(
        "--precision",
        action="append",
        type=_precision,
        default=None,
        metavar="[MODEL=]fp32|bf16",
        help="fp32 (identical to the reference) or bf16 (where the CPU multiplies bf16 natively, "
        "via OpenVINO; gated at min cosine 0.9999 to fp32). MODEL=bf16 sets one model; "
        "repeatable (EMBEDSERVE_PRECISION, comma-separated; default fp32)",
    )
    serve.add_argument(
        "--threads",
        type=int,
        default=int(_env("THREADS", "0")) or None,
        help="threads per forward pass for ONNX Runtime and OpenVINO (EMBEDSERVE_THREADS; "
        "default: the runtime's choice)",
    )
    serve.add_argument(
        "--onnx-providers",
        default=_env("ONNX_PROVIDERS", "CPUExecutionProvider"),
        help="ONNX Runtime execution providers, in order, comma-separated, e.g. "
        "CUDAExecutionProvider,CPUExecutionProvider with onnxruntime-gpu installed "
        "(EMBEDSERVE_ONNX_PROVIDERS)",
    )
    serve.add_argument(
        "--openvino-device",
        default=_env("OPENVINO_DEVICE", "CPU"),
        help="OpenVINO device: CPU, GPU, AUTO, ... (EMBEDSERVE_OPENVINO_DEVICE)",
    )
    serve.add_argument(
        "--coreml-compute-units",
        choices=["all", "cpu_only", "cpu_and_gpu", "cpu_and_ne"],
        default=_env("COREML_COMPUTE_UNITS", "all"),
        help="where CoreML runs a model on macOS (EMBEDSERVE_COREML_COMPUTE_UNITS)",
    )
    serve.add_argument(
        "--max-batch-tokens",
        type=int,
        default=int(_env("MAX_BATCH_TOKENS", "8192")),
        help="padded tokens per forward pass (EMBEDSERVE_MAX_BATCH_TOKENS)",
    )
    serve.add_argument(
        "--max-concurrent-batches",
        type=int,
        default=int(_env("MAX_CONCURRENT_BATCHES", "1")),
        help="forward passes run at once, across models (EMBEDSERVE_MAX_CONCURRENT_BATCHES)",
    )
    serve.add_argument(
        "--queue-limit",
        type=int,
        default=int(_env("QUEUE_LIMIT", "16384")),
        help="inputs that may wait for one model; past it requests get a 503 with Retry-After "
        "(EMBEDSERVE_QUEUE_LIMIT)",
    )
    serve.add_argument(
        "--log-format",
        choices=["auto", "console", "json"],
        default=_env("LOG_FORMAT", "auto"),
        help="auto: console on a terminal, JSON otherwise (EMBEDSERVE_LOG_FORMAT)",
    )
    serve.add_argument(
        "--preload",
        nargs="+",
        default=[m.strip() for m in _env("PRELOAD", "").split(",") if m.strip()],
        metavar="MODEL",
        help="models loaded at start-up and kept loaded; /ready answers 200 once the first is "
        "in (EMBEDSERVE_PRELOAD, comma-separated; default: none, and /ready waits for "
        "all-MiniLM-L6-v2)",
    )
    serve.add_argument(
        "--alias",
        action="append",
        type=_alias,
        default=None,
        metavar="NAME=MODEL",
        help="another name for a catalogue model, answering in both APIs and listed beside "
        "it, e.g. text-embedding-3-small=all-MiniLM-L6-v2 for clients that know only "
        "OpenAI's model names; it may not hide a name the catalogue already has. Repeatable "
        "(EMBEDSERVE_ALIASES, comma-separated)",
    )
    serve.add_argument(
        "--cache-size",
        type=_byte_size,
        default=_env("CACHE_SIZE", "0"),
        metavar="BYTES",
        help="memory for an LRU cache of embeddings, so a repeated input of the same model "
        "is embedded once: 256MiB, 1GB or bytes; 0 turns it off (EMBEDSERVE_CACHE_SIZE, "
        "default 0)",
    )
    serve.add_argument(
        "--api-key",
        action="append",
        default=None,
        metavar="KEY",
        help="require `Authorization: Bearer KEY` on every route but /, /health, /ready, "
        "/api/version, /metrics and /openapi; repeatable. A key on the command line shows in "
        "the process list: prefer the variable or --api-key-file (EMBEDSERVE_API_KEYS, "
        "comma-separated; default: no key, the server is open)",
    )
    serve.add_argument(
        "--api-key-file",
        type=Path,
        default=_env("API_KEY_FILE", "") or None,
        metavar="PATH",
        help="more API keys, one a line; lines starting with # are skipped "
        "(EMBEDSERVE_API_KEY_FILE)",
    )
    serve.add_argument(
        "--origins",
        default=_env("ORIGINS", ""),
        metavar="ORIGIN,...",
        help="browser origins allowed to call the server (CORS), besides pages on this "
        "machine (localhost, 127.0.0.1, 0.0.0.0, any port) and app://, file://, tauri://, "
        "vscode-webview:// and vscode-file://, as Ollama allows; `*` in one is a wildcard, "
        "e.g. https://*.example.com, and `*` alone allows any. A request from any other "
        "origin gets a 403 (EMBEDSERVE_ORIGINS, comma-separated, like OLLAMA_ORIGINS)",
    )
    serve.add_argument(
        "--max-body-size",
        type=_body_limit,
        default=_env("MAX_BODY_SIZE", "16MiB"),
        metavar="BYTES",
        help="the largest request body accepted; a larger one gets a 413: 16MiB, 1MB or "
        "bytes (EMBEDSERVE_MAX_BODY_SIZE, default 16MiB)",
    )
    serve.add_argument(
        "--shutdown-timeout",
        type=_grace,
        default=_env("SHUTDOWN_TIMEOUT", "30s"),
        metavar="DURATION",
        help="on SIGTERM or Ctrl-C the server stops accepting connections and lets requests "
        "in flight finish for up to this long, then cancels them and exits 0: a Go duration "
        "or seconds (EMBEDSERVE_SHUTDOWN_TIMEOUT, default 30s)",
    )
    commands.add_parser("openapi", help="print the OpenAPI document the server publishes")
    cli_models.add_commands(commands)
    return parser


def openapi_document() -> str:
    """Built without loading any model, so it needs no network and no weights."""
    app = build_app(Settings(home=Path(tempfile.gettempdir()) / "embedserve-openapi"))
    return json.dumps(app.openapi_schema.to_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "openapi":
        sys.stdout.write(openapi_document())
        return 0
    if args.command in cli_models.COMMANDS:
        return cli_models.run(args)
    base = Settings.from_environment(args.home)
    precision, per_model = _precisions(args.precision)
    settings = Settings(
        home=base.home,
        token_ids=args.token_ids,
        truncate=args.truncate,
        chunk_overlap=args.chunk_overlap,
        keep_alive_s=args.keep_alive,
        max_loaded_models=args.max_loaded_models or None,
        max_memory_bytes=args.max_memory or None,
        offline=base.offline,
        hf_endpoint=base.hf_endpoint,
        log_format=args.log_format,
        engine=args.engine,
        precision=precision,
        model_precision=per_model,
        threads=args.threads,
        onnx_providers=tuple(p.strip() for p in args.onnx_providers.split(",") if p.strip()),
        openvino_device=args.openvino_device,
        coreml_compute_units=args.coreml_compute_units,
        batching=BatchSettings(token_budget=args.max_batch_tokens, queue_limit=args.queue_limit),
        max_concurrent_batches=args.max_concurrent_batches,
        preload=tuple(args.preload),
        aliases=_aliases(args.alias, parser),
        cache_bytes=args.cache_size,
        api_keys=_api_keys(args.api_key, args.api_key_file, parser),
        origins=tuple(o.strip() for o in args.origins.split(",") if o.strip()),
        max_body_bytes=args.max_body_size,
    )
    try:
        app = build_app(settings)
    except ValueError as exc:  # a setting refused at start (an alias, a preload): say which
        parser.error(str(exc))
    structlog.get_logger("embedserve").info(
        "server_starting",
        url=f"http://{args.host}:{args.port}",
        home=str(settings.home),
        api_keys=len(settings.api_keys),  # how many, never which
    )
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for whatever
    # handler was there before it: with Python's default one the process would die of the
    # signal (status 143) after a clean shutdown. This one lets main return 0.
    signal.signal(signal.SIGTERM, lambda _sig, _frame: None)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=args.shutdown_timeout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
