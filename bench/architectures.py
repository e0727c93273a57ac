"""Texts per second per architecture: each at the published model's widths, reduced depth.

For each architecture a random-weight model is written in its real repo layout by the test
factories (tests/model_factory_*.py), with the widths of the published model it stands for
(hidden size, heads, FFN width, vocabulary) and fewer layers, so a run fits in minutes; texts/s
per layer is what the depth changes, and it changes ours and the reference's alike. Then:

- in process: sentence-transformers (torch fp32, every core) and each of our engines on the same
  length-sorted batches of 32 from bench/corpus.py, interleaved (bench/engine_throughput.py), with
  the cosine of each engine's vectors to the numpy engine's;
- over HTTP: the server (`--engine auto`, which picks the fastest engine that passes the parity
  gate), the model placed in its home under the real repo id, at c4 x b32 on /v1/embeddings;
  texts/s against sentence-transformers' in-process rate from the same run.

    .venv/bin/python bench/architectures.py [--texts 256] [--only nomic-bert,qwen3]

`bench/run.py` runs it as its `architectures` section.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_BENCH = Path(__file__).resolve().parent
_ROOT = _BENCH.parent
for _path in (str(_ROOT), str(_BENCH)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import engine_throughput  # noqa: E402 - after the path is set

__all__ = ["ARCHITECTURES", "Architecture", "measure", "rows_of"]

# budgets per engine, in seconds of forward passes: sorted batches only
_BUDGETS_S = (20.0, 0.0, 0.0)
_QUICK_BUDGETS_S = (3.0, 0.0, 0.0)
_HTTP_BUDGET_S = 15.0
_QUICK_HTTP_BUDGET_S = 4.0


@dataclass(frozen=True, slots=True)
class Architecture:
    key: str  # for --only
    label: str  # the published model it stands for, and the depth used
    repo_id: str
    write: Callable[[Path], object]  # writes the model's files into the folder


def _bert(folder: Path) -> object:  # a known family: the harness's own check
    from tests.model_factory_repos import write_repo_layout

    return write_repo_layout("BAAI/bge-small-en-v1.5", folder)


def _qwen3(folder: Path) -> object:
    from tests.model_factory_qwen3 import write_qwen3_model

    # float32 where the repo holds bfloat16: sentence-transformers computes a bfloat16 file in
    # bfloat16, and the comparison is with its float32 rate
    return write_qwen3_model(
        folder,
        dtype="float32",
        hidden=1024,
        layers=4,
        heads=16,
        kv_heads=8,
        head_dim=128,
        intermediate=3072,
    )


def _modernbert(folder: Path) -> object:
    """gte-modernbert-base's widths (768 wide, 12 heads, GeGLU 1152, a 128-token window on two
    layers in three), 6 of its 22 layers; its vocabulary is the test tokenizer's."""
    from tests.model_factory_modernbert import write_modernbert_model

    return write_modernbert_model(folder, hidden=768, heads=12, intermediate=1152, layers=6)


def _nomic_bert(folder: Path) -> object:
    from tests.model_factory_nomic import write_nomic_bert_model

    # nomic-embed-text-v1.5's widths (768, 12 heads, FFN 3072, vocabulary 30528), 2 of 12 layers
    return write_nomic_bert_model(folder, hidden=768, heads=12, intermediate=3072, layers=2)


def _gemma3(folder: Path) -> object:
    """embeddinggemma-300m's widths (768 wide, 3 query heads and 1 key/value head of 256, GeGLU
    1152, a 512-token window on five layers in six), 6 of its 24 layers."""
    from tests.model_factory_gemma3 import write_gemma3_model

    sliding = ("sliding_attention",) * 5
    return write_gemma3_model(
        folder,
        hidden=768,
        layers=6,
        heads=3,
        kv_heads=1,
        head_dim=256,
        intermediate=1152,
        sliding_window=512,
        layer_types=(*sliding, "full_attention"),
    )


ARCHITECTURES: tuple[Architecture, ...] = (
    Architecture("bert", "BERT (bge-small layout, test size)", "BAAI/bge-small-en-v1.5", _bert),
    Architecture(
        "qwen3",
        "Qwen3 (Qwen3-Embedding-0.6B widths, 4 of 28 layers)",
        "Qwen/Qwen3-Embedding-0.6B",
        _qwen3,
    ),
    Architecture(
        "modernbert",
        "ModernBERT (gte-modernbert-base widths, 6 of 22 layers)",
        "Alibaba-NLP/gte-modernbert-base",
        _modernbert,
    ),
    Architecture(
        "nomic-bert",
        "NomicBERT (nomic-embed-text-v1.5 widths, 2 of 12 layers)",
        "nomic-ai/nomic-embed-text-v1.5",
        _nomic_bert,
    ),
    Architecture(
        "gemma3",
        "Gemma 3 (embeddinggemma-300m widths, 6 of 24 layers)",
        "google/embeddinggemma-300m",
        _gemma3,
    ),
)


@dataclass(frozen=True, slots=True)
class ArchitectureRun:
    architecture: Architecture
    runs: Sequence[engine_throughput.EngineRun]
    http: Any | None  # http_load.CellResult
    http_engine: str
    failure: str = ""


def _place(architecture: Architecture, home: Path) -> Path:
    """The model in the server's home under its repo id, with the spec the server would save."""
    from adapters.stores.saved_specs import read_configs, write_spec
    from domain.models import ModelSpec
    from domain.repo_configs import describe_repo

    folder = home / "Embeddings" / architecture.repo_id
    folder.mkdir(parents=True)
    architecture.write(folder)
    repo = architecture.repo_id
    spec = describe_repo(repo, repo, "main", read_configs(folder))
    if not isinstance(spec, ModelSpec):
        msg = f"{repo}: {spec}"
        raise TypeError(msg)
    write_spec(folder, spec)
    return folder


def _over_http(home: Path, repo_id: str, texts: list[str], budget_s: float) -> tuple[Any, str]:
    import json

    import http_load
    from server_process import served

    with served(home, home / "server.log", ["--engine", "auto"]) as server:
        http_load.warm_up(server, texts, model=repo_id)
        cell = http_load.Cell("openai", "float", 4, 32, model=repo_id)
        result = http_load.run_cell(server, texts, cell, budget_s)
        loaded = [
            json.loads(line)
            for line in server.log.read_text(encoding="utf-8").splitlines()
            if '"model_loaded"' in line
        ]
    engine = f"{loaded[0].get('engine')} {loaded[0].get('precision')}" if loaded else "?"
    return result, engine


def measure(
    texts: list[str],
    work: Path,
    *,
    quick: bool = False,
    only: Sequence[str] = (),
    log: Callable[[str], None] = print,
) -> list[ArchitectureRun]:
    out = []
    for architecture in ARCHITECTURES:
        if only and architecture.key not in only:
            continue
        home = work / architecture.key
        try:
            folder = _place(architecture, home)
            log(f"architectures: {architecture.label}, in process")
            runs, _ = engine_throughput.measure(
                texts,
                home / "in-process",
                budgets_s=_QUICK_BUDGETS_S if quick else _BUDGETS_S,
                model=folder,
                log=log,
            )
            log(f"architectures: {architecture.label}, over HTTP")
            http, engine = _over_http(
                home, architecture.repo_id, texts, _QUICK_HTTP_BUDGET_S if quick else _HTTP_BUDGET_S
            )
        except (OSError, RuntimeError, TypeError, ValueError) as exc:
            out.append(ArchitectureRun(architecture, (), None, "", f"{type(exc).__name__}: {exc}"))
            continue
        out.append(ArchitectureRun(architecture, runs, http, engine))
    return out


def rows_of(results: Sequence[ArchitectureRun]) -> list[Any]:
    from report import Row

    rows: list[Any] = []
    for result in results:
        name = result.architecture.label
        if result.failure:
            rows.append(Row("architectures", f"{name}: FAILED ({result.failure[:160]})"))
            continue
        by_engine = {r.engine: r for r in result.runs if r.order == "sorted"}
        st = by_engine.get(engine_throughput.ST)
        base = st.texts_per_s if st else None
        best: float | None = None
        for run in by_engine.values():
            rate = run.texts_per_s
            ratio = rate / base if rate and base else None
            if run.engine != engine_throughput.ST and ratio is not None:
                best = max(best or 0.0, ratio)
            value = f"cos min {run.min_cosine:.6f} to numpy" if run.min_cosine is not None else ""
            if not run.available:
                value = f"unavailable: {run.reason[:120]}"
            label = f"{name}: {engine_throughput.LABELS.get(run.engine, run.engine)}, b32 sorted"
            rows.append(Row("architectures", label, rate, ratio, None, None, value))
        if result.http is not None:
            rate = result.http.texts_per_s
            ratio = rate / base if base else None
            met = ratio is not None and ratio >= 1.0
            rows.append(
                Row(
                    "architectures",
                    f"{name}: HTTP --engine auto [{result.http_engine}] c4 b32 /v1 float",
                    rate,
                    ratio,
                    result.http.percentile(0.5),
                    result.http.percentile(0.99),
                    f"{result.http.requests} requests, {result.http.errors} errors",
                    f">= 1.0x sentence-transformers: {'met' if met else 'MISSED'}",
                )
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="64 texts, short budgets")
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated keys: " + ", ".join(a.key for a in ARCHITECTURES),
    )
    args = parser.parse_args()
    from corpus import corpus
    from report import text_table

    texts = corpus(64 if args.quick else args.texts)
    only = [k.strip() for k in args.only.split(",") if k.strip()]
    with tempfile.TemporaryDirectory(prefix="embedserve-bench-arch-") as tmp:
        results = measure(texts, Path(tmp), quick=args.quick, only=only)
    print(text_table(rows_of(results)))


if __name__ == "__main__":
    main()
