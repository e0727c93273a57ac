"""Static families: embedserve's numpy engine against the model2vec library, same model and texts.

The model is a Model2Vec folder written by model2vec itself (tests/model_factory_static.py) at
a realistic size: all-MiniLM-L6-v2's WordPiece vocabulary (30,522 tokens) x 256 dimensions,
normalised, max_length 512, as potion-base-8M is shaped. Both sides embed the whole corpus in
one call (the server's path on ours: tokenize reading each text as far as a default request
does, plan the fewest passes as the batcher does for an encoder that pads for free, pad,
embed) and in calls of 32 texts in corpus order (a request's worth). Each side's time is the
median of seven rounds that alternate the two sides, so that a load spike on a shared machine
hits both.

    .venv/bin/python bench/static_families.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

__all__ = ["StaticRun", "measure", "rows_of"]

_DIM = 256
_ROUNDS = 7
_CALL = 32


@dataclass(frozen=True, slots=True)
class StaticRun:
    library: str  # "embedserve" or "model2vec"
    calls: str  # "one call" or "calls of 32"
    texts: int
    seconds: float
    min_cosine: float | None = None  # ours against model2vec's, row by row

    @property
    def texts_per_s(self) -> float:
        return self.texts / self.seconds


def _median_interleaved(
    runs: dict[str, Callable[[], np.ndarray]],
) -> dict[str, tuple[float, np.ndarray]]:
    """Each side's median time over rounds that alternate the sides, and its last output."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    outputs = {name: np.zeros(0) for name in runs}
    for _ in range(_ROUNDS):
        for name, run in runs.items():
            started = time.perf_counter()
            outputs[name] = run()
            times[name].append(time.perf_counter() - started)
    return {name: (statistics.median(times[name]), outputs[name]) for name in runs}


def _ours(folder: Path) -> Callable[[Sequence[str]], np.ndarray]:
    from adapters.engines.numpy_ref import NumpyEngine
    from adapters.tokenizers.by_family import load_tokenizer
    from application.batching import BatchSettings, pad, plan_full_passes
    from application.catalogue import CATALOGUE
    from domain.errors import ModelUnavailable

    spec = next(s for s in CATALOGUE if s.name == "potion-base-8M")
    tokenizer = load_tokenizer(spec, folder)
    encoder = NumpyEngine().load(spec, folder)
    if isinstance(tokenizer, ModelUnavailable) or isinstance(encoder, ModelUnavailable):
        msg = f"the Model2Vec folder does not load: {tokenizer} {encoder}"
        raise RuntimeError(msg)  # noqa: TRY004 - a failed load, not a caller's wrong type
    settings = BatchSettings()
    room = tokenizer.max_tokens - len(tokenizer.wrap(()).ids)  # what a default request reads

    def embed(texts: Sequence[str]) -> np.ndarray:
        rows = [e.ids for e in tokenizer.encode(list(texts), room)]
        out = np.zeros((len(rows), encoder.dimensions), dtype=np.float32)
        plan = plan_full_passes([len(r) for r in rows], settings.token_budget, settings.max_batch)
        for batch in plan:
            out[batch] = encoder.embed(*pad([rows[i] for i in batch]))
        return out

    return embed


def _model2vec(folder: Path) -> Callable[[Sequence[str]], np.ndarray]:
    from model2vec import StaticModel

    model = StaticModel.from_pretrained(str(folder))

    def embed(texts: Sequence[str]) -> np.ndarray:
        return np.asarray(model.encode(list(texts), show_progress_bar=False))

    return embed


def _in_calls(embed: Callable[[Sequence[str]], np.ndarray], texts: list[str]) -> np.ndarray:
    return np.concatenate([embed(texts[n : n + _CALL]) for n in range(0, len(texts), _CALL)])


def measure(texts: list[str], work: Path) -> list[StaticRun]:
    from tests.model_factory_static import write_model2vec_model

    folder = write_model2vec_model(work / "model2vec", dim=_DIM, normalize=True, seed=3)
    sides = {"embedserve": _ours(folder), "model2vec": _model2vec(folder)}
    runs: list[StaticRun] = []
    vectors: dict[tuple[str, str], np.ndarray] = {}
    for calls in ("one call", f"calls of {_CALL}"):
        jobs: dict[str, Callable[[], np.ndarray]] = {
            library: partial(embed, texts)
            if calls == "one call"
            else partial(_in_calls, embed, texts)
            for library, embed in sides.items()
        }
        timed = _median_interleaved(jobs)
        for library, (seconds, out) in timed.items():
            vectors[(library, calls)] = out
            runs.append(StaticRun(library, calls, len(texts), seconds))
    out_runs = []
    for run in runs:
        low = None
        if run.library == "embedserve":
            ours, theirs = vectors[(run.library, run.calls)], vectors[("model2vec", run.calls)]
            norms = np.linalg.norm(ours, axis=1) * np.linalg.norm(theirs, axis=1)
            cos = np.where(norms > 0, (ours * theirs).sum(axis=1) / np.maximum(norms, 1e-30), 1)
            low = float(cos.min())
        out_runs.append(StaticRun(run.library, run.calls, run.texts, run.seconds, low))
    return out_runs


def rows_of(runs: Sequence[StaticRun]) -> list[object]:
    from report import Row

    rows: list[object] = []
    base = {r.calls: r.texts_per_s for r in runs if r.library == "model2vec"}
    for run in runs:
        ratio = run.texts_per_s / base[run.calls]
        label = f"{run.library} Model2Vec 30k x {_DIM}, {run.calls}"
        value = "" if run.min_cosine is None else f"cos min {run.min_cosine:.6f} to model2vec"
        target = ""
        if run.library == "embedserve":
            target = f">= model2vec: {'met' if ratio >= 1 else 'MISSED'}"
        rows.append(Row("static", label, run.texts_per_s, ratio, value=value, target=target))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from corpus import corpus
    from report import text_table

    texts = corpus(256 if args.quick else 1024)
    with tempfile.TemporaryDirectory(prefix="embedserve-bench-") as tmp:
        print(text_table(rows_of(measure(texts, Path(tmp)))))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
