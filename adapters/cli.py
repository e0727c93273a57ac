"""The `embedserve` console script."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import structlog
import uvicorn

from adapters.bootstrap import ENGINES, Settings, build_app, default_engine, default_home
from adapters.http.go_duration import parse_go_duration
from application.batching import BatchSettings
from application.engine_choice import Precision

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
    serve.add_argument(
        "--no-truncate",
        action="store_true",
        default=_env("NO_TRUNCATE", "").lower() in {"1", "true", "yes"},
        help="refuse /v1/embeddings inputs longer than the model's context with a 400, as "
        "OpenAI does, instead of truncating them (EMBEDSERVE_NO_TRUNCATE)",
    )
    serve.add_argument(
        "--keep-alive",
        type=_duration,
        default=_duration(_env("KEEP_ALIVE", "5m")),
        help="how long an idle model stays loaded: a Go duration or seconds; negative keeps "
        "it forever (EMBEDSERVE_KEEP_ALIVE, default 5m)",
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
    commands.add_parser("openapi", help="print the OpenAPI document the server publishes")
    return parser


def openapi_document() -> str:
    """Built without loading any model, so it needs no network and no weights."""
    app = build_app(Settings(home=Path(tempfile.gettempdir()) / "embedserve-openapi"))
    return json.dumps(app.openapi_schema.to_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "openapi":
        sys.stdout.write(openapi_document())
        return 0
    base = Settings.from_environment(args.home)
    precision, per_model = _precisions(args.precision)
    settings = Settings(
        home=base.home,
        token_ids=args.token_ids,
        truncate=not args.no_truncate,
        keep_alive_s=args.keep_alive,
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
    )
    app = build_app(settings)
    structlog.get_logger("embedserve").info(
        "server_starting", url=f"http://{args.host}:{args.port}", home=str(settings.home)
    )
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
