"""Pairs per second for reranking: a cross-encoder at ms-marco-MiniLM-L6-v2's real widths.

A random-weight cross-encoder in cross-encoder/ms-marco-MiniLM-L6-v2's layout and widths (BERT,
6 layers, hidden 384, 12 heads, FFN 1536, its WordPiece vocabulary; tests/
model_factory_cross_encoder.py) is placed in a server home under that repo id. Each request is
one query (a short text of bench/corpus.py) with 100 documents of the corpus. Then, in one run:

- in process: sentence-transformers' `CrossEncoder.predict` (torch fp32, every core, its default
  batch of 32) and each of our engines scoring the same requests, interleaved request by request
  (tokenizing included, as predict does), each within its own time budget; ours batch the pairs
  as the server does (length-sorted passes under the token budget, application/batching.py).
  Each engine's scores are compared with predict's (max abs diff);
- over HTTP: the server (`--engine auto`) at c1 and c4 on POST /v1/rerank.
Rates are pairs/s, and ratios to CrossEncoder.predict's in-process rate from the same run.

    .venv/bin/python bench/rerank.py [--texts 512] [--quick]

`bench/run.py` runs it as its `rerank` section.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_BENCH = Path(__file__).resolve().parent
_ROOT = _BENCH.parent
for _path in (str(_ROOT), str(_BENCH)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

__all__ = ["DOCUMENTS", "REPO_ID", "RerankRun", "measure", "requests_of", "rows_of"]

REPO_ID = "cross-encoder/ms-marco-MiniLM-L6-v2"
DOCUMENTS = 100  # per request
ST = "sentence-transformers"
ENGINES: tuple[str, ...] = (ST, "numpy", "onnxruntime", "openvino", "openvino-bf16")
LABELS = {
    ST: "CrossEncoder.predict (torch fp32)",
    "numpy": "embedserve numpy (reference)",
    "onnxruntime": "embedserve ONNX Runtime fp32",
    "openvino": "embedserve OpenVINO fp32",
    "openvino-bf16": "embedserve OpenVINO bf16",
}
_BUDGET_S, _QUICK_BUDGET_S = 20.0, 3.0  # per engine, in process
_HTTP_BUDGET_S, _QUICK_HTTP_BUDGET_S = 15.0, 4.0  # per concurrency
_CONCURRENCY = (1, 4)
_QUERY_WORDS = 12  # a query is a corpus text of at most this many words
_STRIDE = 37  # between the first documents of successive requests
_SETTLE_S = 0.05  # between turns: a runtime's spinning threads go to sleep

Request = tuple[str, list[str]]
Score = Callable[[Request], np.ndarray]  # [DOCUMENTS] scores, as predict's default activation


@dataclass(frozen=True, slots=True)
class RerankRun:
    engine: str  # one of ENGINES, or "http c1" / "http c4"
    pairs: int
    seconds: float
    available: bool = True
    reason: str = ""
    max_abs_diff: float | None = None  # to CrossEncoder.predict, over the requests both scored
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0

    @property
    def pairs_per_s(self) -> float | None:
        return self.pairs / self.seconds if self.available and self.seconds > 0 else None


def requests_of(texts: Sequence[str], count: int) -> list[Request]:
    """`count` requests: a short corpus text as the query, 100 corpus texts as documents."""
    queries = [t for t in texts if t.strip() and len(t.split()) <= _QUERY_WORDS]
    return [
        (
            queries[r % len(queries)],
            [texts[(r * _STRIDE + k) % len(texts)] for k in range(DOCUMENTS)],
        )
        for r in range(count)
    ]


def _place(home: Path) -> tuple[Any, Path]:
    """The model in the server's home under its repo id, with the spec the server would save."""
    from adapters.stores.saved_specs import read_configs, write_spec
    from domain.models import ModelSpec
    from domain.repo_configs import describe_repo
    from tests.model_factory_cross_encoder import write_cross_encoder

    folder = home / "Embeddings" / REPO_ID
    # ms-marco-MiniLM-L6-v2's config.json: 6 layers, hidden 384, 12 heads, FFN 1536
    write_cross_encoder(
        folder, "ms-marco", seed=16, hidden=384, layers=6, heads=12, intermediate=1536
    )
    spec = describe_repo(REPO_ID, REPO_ID, "main", read_configs(folder))
    if not isinstance(spec, ModelSpec):
        msg = f"{REPO_ID}: {spec}"
        raise TypeError(msg)
    write_spec(folder, spec)
    return spec, folder


def _reference(folder: Path) -> Score:
    import torch

    from tests.model_factory_cross_encoder import reference_cross_encoder

    torch.set_num_threads(os.cpu_count() or 1)
    model = reference_cross_encoder(folder)

    def score(request: Request) -> np.ndarray:
        query, documents = request
        return np.asarray(model.predict([(query, d) for d in documents]), np.float32)

    return score


def _engine(name: str, graphs: Path) -> object:
    if name == "numpy":
        from adapters.engines.numpy_ref import NumpyEngine

        return NumpyEngine()
    if name == "onnxruntime":
        from adapters.engines.onnx_runtime import OnnxRuntimeEngine

        return OnnxRuntimeEngine(graphs)
    from adapters.engines.openvino_engine import OpenVinoEngine

    return OpenVinoEngine(graphs, precision="bf16" if name.endswith("bf16") else "fp32")


def _ours(name: str, spec: Any, folder: Path, graphs: Path) -> Score | str:
    """Our engine `name`, scoring as the server does: pairs tokenized, length-sorted passes."""
    from adapters.tokenizers.hf_tokenizer import load_tokenizer
    from application.batching import BatchSettings, pad, plan_batches
    from domain.errors import ModelUnavailable

    tokenizer: Any = load_tokenizer(spec, folder)
    try:
        encoder: Any = _engine(name, graphs).load(spec, folder)  # type: ignore[attr-defined]
    except (ImportError, OSError, RuntimeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    if isinstance(encoder, ModelUnavailable) or isinstance(tokenizer, ModelUnavailable):
        return str(encoder if isinstance(encoder, ModelUnavailable) else tokenizer)
    settings = BatchSettings()

    def score(request: Request) -> np.ndarray:
        pairs = tokenizer.encode_pairs(*request)
        out = np.empty(len(pairs), dtype=np.float32)
        lengths = [len(p.ids) for p in pairs]
        for batch in plan_batches(lengths, settings.token_budget, settings.max_batch):
            ids, mask = pad([pairs[i].ids for i in batch], (), [pairs[i].second for i in batch])
            out[batch] = np.asarray(encoder.embed(ids, mask))[:, 1]  # [B,2]: logit, score
        return out

    return score


def _in_process(  # noqa: PLR0913 - the section's knobs, as keywords
    requests: Sequence[Request], spec: Any, folder: Path, *, work: Path, budget_s: float, log: Any
) -> list[RerankRun]:
    """Request after request, each engine scores it in turn until its budget is spent."""
    scorers: dict[str, Score] = {}
    runs: list[RerankRun] = []
    for name in ENGINES:
        log(f"rerank: loading {LABELS[name]}")
        made = _reference(folder) if name == ST else _ours(name, spec, folder, work / "graphs")
        if isinstance(made, str):
            runs.append(RerankRun(name, 0, 0.0, available=False, reason=made))
            continue
        made(requests[0])  # warm-up: first calls allocate, compile and plan
        scorers[name] = made
    spent = dict.fromkeys(scorers, 0.0)
    pairs = dict.fromkeys(scorers, 0)
    diffs = dict.fromkeys(scorers, 0.0)
    for request in requests:
        live = [n for n in scorers if spent[n] < budget_s]
        if not live:
            break
        reference = scorers[ST](request) if ST in scorers and ST not in live else None
        for name in live:
            time.sleep(_SETTLE_S)
            started = time.perf_counter()
            scores = scorers[name](request)
            spent[name] += time.perf_counter() - started
            pairs[name] += len(request[1])
            if name == ST:
                reference = scores
            if reference is not None:
                diffs[name] = max(diffs[name], float(np.abs(scores - reference).max()))
    runs += [RerankRun(n, pairs[n], spent[n], max_abs_diff=diffs[n]) for n in scorers]
    return sorted(runs, key=lambda r: ENGINES.index(r.engine))


def _over_http(
    home: Path, requests: Sequence[Request], budget_s: float, log: Any
) -> tuple[list[RerankRun], str]:
    import json

    import httpx
    from server_process import served

    bodies = [
        json.dumps({"model": REPO_ID, "query": q, "documents": d}).encode() for q, d in requests
    ]
    headers = {"content-type": "application/json"}
    runs = []
    with served(home, home / "server.log", ["--engine", "auto"]) as server:
        with httpx.Client(base_url=server.url, timeout=600) as client:
            for body in bodies[:2]:  # the first loads the model (and gates the fast engines)
                client.post("/v1/rerank", content=body, headers=headers).raise_for_status()

        for concurrency in _CONCURRENCY:
            log(f"rerank: over HTTP, c{concurrency}")
            deadline = time.perf_counter() + budget_s
            latencies: list[float] = []
            errors = 0

            def drive(
                worker: int, deadline: float = deadline, step: int = concurrency
            ) -> tuple[list[float], int]:
                mine, failed, n = [], 0, worker
                with httpx.Client(base_url=server.url, timeout=600) as client:
                    while time.perf_counter() < deadline:
                        started = time.perf_counter()
                        answer = client.post(
                            "/v1/rerank", content=bodies[n % len(bodies)], headers=headers
                        )
                        mine.append((time.perf_counter() - started) * 1000)
                        failed += answer.status_code != 200
                        n += step
                return mine, failed

            started = time.perf_counter()
            with ThreadPoolExecutor(concurrency) as pool:
                for mine, failed in pool.map(drive, range(concurrency)):
                    latencies += mine
                    errors += failed
            seconds = time.perf_counter() - started
            ordered = sorted(latencies)
            runs.append(
                RerankRun(
                    f"http c{concurrency}",
                    (len(latencies) - errors) * DOCUMENTS,
                    seconds,
                    p50_ms=ordered[len(ordered) // 2] if ordered else None,
                    p99_ms=ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
                    if ordered
                    else None,
                    errors=errors,
                )
            )
        loaded = [
            json.loads(line)
            for line in server.log.read_text(encoding="utf-8").splitlines()
            if '"model_loaded"' in line
        ]
    engine = f"{loaded[0].get('engine')} {loaded[0].get('precision')}" if loaded else "?"
    return runs, engine


@dataclass(frozen=True, slots=True)
class RerankResult:
    in_process: Sequence[RerankRun]
    http: Sequence[RerankRun]
    http_engine: str


def measure(
    texts: Sequence[str], work: Path, *, quick: bool = False, log: Any = print
) -> RerankResult:
    requests = requests_of(texts, 64)
    spec, folder = _place(work / "home")
    budget = _QUICK_BUDGET_S if quick else _BUDGET_S
    runs = _in_process(requests, spec, folder, work=work, budget_s=budget, log=log)
    http_budget = _QUICK_HTTP_BUDGET_S if quick else _HTTP_BUDGET_S
    http, engine = _over_http(work / "home", requests, http_budget, log)
    return RerankResult(runs, http, engine)


def rows_of(result: RerankResult) -> list[Any]:
    from report import Row

    name = "ms-marco-MiniLM-L6-v2 widths, query x 100 documents"
    st = next((r for r in result.in_process if r.engine == ST), None)
    base = st.pairs_per_s if st else None
    rows: list[Any] = []
    for run in result.in_process:
        rate = run.pairs_per_s
        ratio = rate / base if rate and base else None
        value = f"max abs diff {run.max_abs_diff:.2g} to predict" if run.max_abs_diff else ""
        if not run.available:
            value = f"unavailable: {run.reason[:120]}"
        label = f"{name}: {LABELS[run.engine]}, pairs/s"
        rows.append(Row("rerank", label, rate, ratio, None, None, value))
    for run in result.http:
        rate = run.pairs_per_s
        ratio = rate / base if rate and base else None
        met = ratio is not None and ratio >= 1.0
        rows.append(
            Row(
                "rerank",
                f"{name}: HTTP --engine auto [{result.http_engine}] {run.engine[5:]} /v1/rerank, "
                "pairs/s",
                rate,
                ratio,
                run.p50_ms,
                run.p99_ms,
                f"{run.pairs // DOCUMENTS} requests, {run.errors} errors",
                f">= 1.0x CrossEncoder.predict: {'met' if met else 'MISSED'}",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=512)
    parser.add_argument("--quick", action="store_true", help="128 texts, short budgets")
    args = parser.parse_args()
    from corpus import corpus
    from report import text_table

    texts = corpus(128 if args.quick else args.texts)
    with tempfile.TemporaryDirectory(prefix="embedserve-bench-rerank-") as tmp:
        result = measure(texts, Path(tmp), quick=args.quick)
    print(text_table(rows_of(result)))


if __name__ == "__main__":
    main()
