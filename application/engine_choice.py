"""Which engine runs a model: the fastest whose vectors match the reference engine's.

Every load of a fast engine passes a parity gate first: a fixed probe of varied texts embedded
by the engine and by the reference (the numpy engine) on the same padded batches. An engine
whose vectors drift past the gate's tolerance is not used, whatever its speed; the model then
runs on the next engine that passes, or on the reference itself. In "auto" mode the engines
that pass are also timed on the probe and the fastest is kept; the choice is remembered per
model, precision and host, so later loads gate only the remembered engine.

The reference's answer to the probe may be remembered too (ProbeAnswers, keyed by the model's
files and the reference's code): a later load with a remembered engine then neither loads the
model on the reference nor runs it, which is most of a warm start's time and memory. The gate
itself still runs at every load, against that answer.

What comes from disk can be readable and still wrong (a cached graph or a remembered answer
edited, or from a bug since fixed). So a gate that fails is tried again on fresh ones: the
reference runs again if its answer was remembered, and an engine that caches what it builds
(`Rebuilds`) builds it again from the model's files. Only a fresh failure rules the engine out,
with a warning: its choice is remembered, and a remembered slow engine costs for good.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import structlog

from application.batching import pad
from domain.errors import ModelUnavailable
from domain.models import Family, ModelSpec
from domain.ops import Array, IdArray
from domain.ports import Encoder, InferenceEngine, Tokenizer

__all__ = [
    "AUTO",
    "PROBE_TEXTS",
    "Candidate",
    "ChoiceMemory",
    "Chosen",
    "EngineSelector",
    "ParityCheck",
    "Precision",
    "ProbeAnswers",
    "Rebuilds",
    "Tolerance",
    "parity_of",
]

log = structlog.get_logger(__name__)

Precision = Literal["fp32", "bf16"]
AUTO = "auto"

# Short and long, several scripts, emoji, code, markup, whitespace: what drifts shows here.
PROBE_TEXTS: tuple[str, ...] = (
    "hello",
    "The quick brown fox jumps over the lazy dog.",
    "Embeddings map text to vectors; similar meanings land close together.",
    "naïve café déjà vu — coöperate",
    "数据科学与机器学习",
    "Привет, как дела? Всё хорошо.",
    "مرحبا بالعالم",
    "🚀🔥 launch day! 🎉",
    "def f(x):\n    return x ** 2  # square",
    "https://example.com/path?query=1&other=two#frag",
    "<p>Some <b>HTML</b> markup &amp; entities</p>",
    "   leading and trailing spaces   ",
    "ALL CAPS SHOUTING TEXT",
    "a",
    "1234567890 3.14159 -42 1e10",
    "Mixed: English, Deutsch (Straße), Español (¿qué?), 日本語のテキスト.",
    "tab\tseparated\tvalues\nand a new line",
    # last, so its batch holds it and one short text: a row padded far past its length, at a
    # quarter of the cost of padding eight rows to it (the gate runs at every load)
    (
        "A longer passage runs on for a while so that the probe holds at least one sequence "
        "that is far longer than the others in its batch, which is where padding, masking and "
        "position handling differ between engines if they differ at all. " * 3
    ),
)
_BATCH = 8  # the probe runs in a few padded batches, so padding is exercised too
_TIMED_RUNS = 2  # a short probe: timing it costs far less than the load itself


@dataclass(frozen=True, slots=True)
class Tolerance:
    max_abs_diff: float | None  # per component, scaled by max(1, max |reference|)
    min_cosine: float


# fp32 engines compute the same float32 ops as the reference, in another order: a few ulps
FP32 = Tolerance(max_abs_diff=1e-5, min_cosine=1 - 1e-5)
# bf16 multiplies with 8 significant bits: only the direction is held to account
BF16 = Tolerance(max_abs_diff=None, min_cosine=0.9999)
TOLERANCES: dict[Precision, Tolerance] = {"fp32": FP32, "bf16": BF16}


@dataclass(frozen=True, slots=True)
class ParityCheck:
    engine: str
    precision: Precision
    max_abs_diff: float
    min_cosine: float
    passed: bool
    texts_per_s: float | None = None  # measured on the probe, in auto mode


@dataclass(frozen=True, slots=True)
class Candidate:
    """A fast engine, made on first use (importing a runtime costs start-up time)."""

    name: str
    precision: Precision
    families: frozenset[Family]
    make: Callable[[], InferenceEngine]


@dataclass(slots=True)
class Chosen:
    encoder: Encoder
    engine: str
    precision: Precision
    parity: ParityCheck | None  # None: the reference engine itself runs the model
    considered: tuple[ParityCheck, ...] = ()


class ChoiceMemory(Protocol):
    """Engine choices remembered across restarts, per model and precision on this host."""

    def recall(self, key: str) -> str | None: ...

    def remember(self, key: str, engine: str) -> None: ...


class ProbeAnswers(Protocol):
    """The reference engine's vectors for a probe, kept across restarts.

    Implementations key them by everything the answer depends on: the model's files, the probe's
    ids and the reference engine's code; a key that changes is a miss.
    """

    def recall(self, folder: Path, probe: Sequence[tuple[IdArray, IdArray]]) -> Array | None: ...

    def remember(
        self, folder: Path, probe: Sequence[tuple[IdArray, IdArray]], answer: Array
    ) -> None: ...


@runtime_checkable
class Rebuilds(Protocol):
    """An engine that keeps what it builds from a model's files (a recorded graph) across
    loads, and can build it again from the files alone."""

    def rebuild(self, spec: ModelSpec, folder: Path) -> Encoder | ModelUnavailable:
        """As `load`, trusting nothing kept by an earlier process: built again and kept."""
        ...


def parity_of(ours: Array, reference: Array) -> tuple[float, float]:
    """(max abs diff scaled by max(1, max |reference|), min cosine), rows compared pairwise."""
    scale = max(1.0, float(np.abs(reference).max(initial=0.0)))
    diff = float(np.abs(ours - reference).max(initial=0.0)) / scale
    norms = np.linalg.norm(ours, axis=1) * np.linalg.norm(reference, axis=1)
    dots = (ours * reference).sum(axis=1)
    # a zero vector on both sides (a text with no known token) agrees perfectly
    cosines = np.where(norms > 0, dots / np.maximum(norms, 1e-30), 1.0)
    return diff, float(cosines.min(initial=1.0))


def _probe(tokenizer: Tokenizer) -> list[tuple[IdArray, IdArray]]:
    encoded = tokenizer.encode(list(PROBE_TEXTS))
    rows = [e.ids for e in encoded if e.ids] or [(0,)]
    return [pad(rows[n : n + _BATCH]) for n in range(0, len(rows), _BATCH)]


def _run(encoder: Encoder, probe: list[tuple[IdArray, IdArray]]) -> Array:
    return np.concatenate([encoder.embed(ids, mask) for ids, mask in probe])


def _texts_per_s(encoder: Encoder, probe: list[tuple[IdArray, IdArray]]) -> float:
    """Timed after the gate's run, which was the warm-up (first calls allocate and plan)."""
    started = time.perf_counter()
    for _ in range(_TIMED_RUNS):
        _run(encoder, probe)
    elapsed = max(time.perf_counter() - started, 1e-9)
    return _TIMED_RUNS * sum(len(ids) for ids, _ in probe) / elapsed


class _Trial:
    """One model's load: the probe, the reference's answer, and every gate it ran.

    The reference is loaded, and run, only when something needs it: no remembered answer, an
    engine to time against it, or a fallback.
    """

    def __init__(
        self,
        spec: ModelSpec,
        folder: Path,
        reference: InferenceEngine,
        probe: list[tuple[IdArray, IdArray]],
        answers: ProbeAnswers | None,
    ) -> None:
        self.spec = spec
        self.folder = folder
        self.probe = probe
        self.checks: list[ParityCheck] = []
        self._engine = reference
        self._answers = answers
        self._reference: Encoder | ModelUnavailable | None = None
        self._expected: Array | None = None
        self.recalled = False  # the expected answer came from disk, not from the reference now

    def reference(self) -> Encoder | ModelUnavailable:
        if self._reference is None:
            self._reference = self._engine.load(self.spec, self.folder)
        return self._reference

    def expected(self) -> Array | ModelUnavailable:
        if self._expected is None and self._answers is not None:
            self._expected = self._answers.recall(self.folder, self.probe)
            self.recalled = self._expected is not None
        return self._expected if self._expected is not None else self.fresh_expected()

    def fresh_expected(self) -> Array | ModelUnavailable:
        """The reference's answer computed now, and kept (replacing a remembered one)."""
        reference = self.reference()
        if isinstance(reference, ModelUnavailable):
            return reference
        # the reference's run is the yardstick, and warms it up for its own timing
        self._expected, self.recalled = _run(reference, self.probe), False
        if self._answers is not None:
            self._answers.remember(self.folder, self.probe, self._expected)
        return self._expected


@dataclass(frozen=True, slots=True)
class _Contender:
    name: str
    precision: Precision
    encoder: Encoder
    check: ParityCheck

    def chosen(self, considered: tuple[ParityCheck, ...]) -> Chosen:
        return Chosen(self.encoder, self.name, self.precision, self.check, considered)


class EngineSelector:
    """Loads a model on the engine `forced` names, or the fastest that passes ("auto").

    Without candidates it is simply the reference engine.
    """

    def __init__(  # noqa: PLR0913 - the reference, the candidates, and policies by keyword
        self,
        reference: InferenceEngine,
        candidates: Sequence[Candidate] = (),
        *,
        forced: str = AUTO,
        memory: ChoiceMemory | None = None,
        answers: ProbeAnswers | None = None,
        precision_of: Callable[[ModelSpec], Precision] = lambda _spec: "fp32",
        speed_of: Callable[[Encoder, list[tuple[IdArray, IdArray]]], float] | None = None,
        give_back: Callable[[], None] = lambda: None,
    ) -> None:
        self.reference = reference
        self._candidates = tuple(candidates)
        self._forced = forced
        self._memory = memory
        self._answers = answers
        self._precision_of = precision_of
        self._made: dict[str, InferenceEngine] = {}
        self._speed_of = speed_of or _texts_per_s
        # returns freed heap to the system: a choice frees more than the model it keeps (the
        # reference's weights, the engines not chosen, the graphs recorded), and the heap would
        # otherwise hold on to it
        self._give_back = give_back

    @property
    def families(self) -> frozenset[Family]:
        found = set(self.reference.families)
        for candidate in self._candidates:
            found |= candidate.families
        return frozenset(found)

    def copies_at_load(self, spec: ModelSpec) -> int:
        """Copies of the model's weights a load holds at its peak: the reference's beside the
        fast engine it gates, where one may run the family; the reference's alone otherwise.
        (A graph engine's build may hold more while it records; not counted here.)"""
        gated = any(spec.family in c.families for c in self._eligible())
        return 2 if gated else 1

    def _eligible(self) -> list[Candidate]:
        return [c for c in self._candidates if self._forced in {AUTO, c.name}]

    def choose(
        self, spec: ModelSpec, folder: Path, tokenizer: Tokenizer
    ) -> Chosen | ModelUnavailable:
        chosen = self._choose(spec, folder, tokenizer)
        self._give_back()  # the trial, and all it loaded and did not choose, is gone by now
        return chosen

    def _choose(
        self, spec: ModelSpec, folder: Path, tokenizer: Tokenizer
    ) -> Chosen | ModelUnavailable:
        candidates = [
            c
            for c in self._candidates
            if spec.family in c.families and self._forced in {AUTO, c.name}
        ]
        if not candidates:
            return self._plain(self.reference.load(spec, folder))
        trial = _Trial(spec, folder, self.reference, _probe(tokenizer), self._answers)
        precision = self._precision_of(spec)
        key = f"{spec.qualified_name}|{precision}"
        remembered = self._memory.recall(key) if self._memory and self._forced == AUTO else None
        if remembered == self.reference.name:
            return self._plain(trial.reference())
        ordered = _in_order(candidates, precision)
        one = remembered if remembered is not None else self._forced
        if one != AUTO:
            found = self._first_passing([c for c in ordered if c.name == one], trial)
            if found is not None:
                return found
            if self._forced != AUTO:
                return self._fallback(trial)
        return self._timed(ordered, trial, key)

    def _timed(
        self, ordered: list[Candidate], trial: _Trial, key: str
    ) -> Chosen | ModelUnavailable:
        best = self._fastest(ordered, trial)
        if isinstance(best, ModelUnavailable):
            return best
        if self._memory is not None:
            self._memory.remember(key, best.name)
        if best.name == self.reference.name:
            return Chosen(best.encoder, best.name, "fp32", None, tuple(trial.checks))
        return best.chosen(tuple(trial.checks))

    def _fallback(self, trial: _Trial) -> Chosen | ModelUnavailable:
        reference = trial.reference()
        if isinstance(reference, ModelUnavailable):
            return reference
        return Chosen(reference, self.reference.name, "fp32", None, tuple(trial.checks))

    def _plain(self, reference: Encoder | ModelUnavailable) -> Chosen | ModelUnavailable:
        if isinstance(reference, ModelUnavailable):
            return reference
        return Chosen(reference, self.reference.name, "fp32", None)

    def _first_passing(
        self, candidates: list[Candidate], trial: _Trial
    ) -> Chosen | ModelUnavailable | None:
        """A remembered or forced engine: gated, not timed. None: none passed."""
        for candidate in candidates:
            contender = self._try(candidate, trial, timed=False)
            if isinstance(contender, ModelUnavailable):
                return contender  # the reference itself cannot load the model
            if contender is not None and contender.check.passed:
                return contender.chosen(tuple(trial.checks))
        return None

    def _fastest(self, candidates: list[Candidate], trial: _Trial) -> _Contender | ModelUnavailable:
        """Every engine not yet tried is gated, and timed if it passes; the reference too."""
        tried = {(c.engine, c.precision) for c in trial.checks}
        contenders = []
        for candidate in candidates:
            if (candidate.name, candidate.precision) not in tried:
                contender = self._try(candidate, trial, timed=True)
                if isinstance(contender, ModelUnavailable):
                    return contender
                if contender is not None and contender.check.passed:
                    contenders.append(contender)
        # the reference competes too: for a tiny model it may well be the fastest
        reference = trial.reference()
        if isinstance(reference, ModelUnavailable):
            return reference
        speed = self._speed_of(reference, trial.probe)
        own = ParityCheck(self.reference.name, "fp32", 0.0, 1.0, passed=True, texts_per_s=speed)
        contenders.append(_Contender(self.reference.name, "fp32", reference, own))
        return max(contenders, key=lambda c: c.check.texts_per_s or 0.0)

    def _try(
        self, candidate: Candidate, trial: _Trial, *, timed: bool
    ) -> _Contender | ModelUnavailable | None:
        """The candidate's contender; None if it cannot run here; the reference's own failure."""
        expected = trial.expected()
        if isinstance(expected, ModelUnavailable):
            return expected
        engine = self._make(candidate, trial.spec)
        if isinstance(engine, ModelUnavailable):
            _log_unavailable(candidate, trial, engine)
            return None
        loaded = engine.load(trial.spec, trial.folder)
        if isinstance(loaded, ModelUnavailable):
            _log_unavailable(candidate, trial, loaded)
            return None
        check = self._gate(candidate, loaded, trial, expected, timed=timed)
        if not check.passed:
            again = self._gate_afresh(candidate, engine, loaded, trial, check, timed=timed)
            if isinstance(again, ModelUnavailable):
                return again
            loaded, check = again
        trial.checks.append(check)
        figures = {
            "model": trial.spec.qualified_name,
            "engine": check.engine,
            "precision": check.precision,
            "max_abs_diff": check.max_abs_diff,
            "min_cosine": check.min_cosine,
        }
        log.info("engine_parity", **figures, passed=check.passed, texts_per_s=check.texts_per_s)
        if not check.passed:
            log.warning(
                "engine_failed_parity",
                **figures,
                reason="its vectors drift from the reference engine's: not used for this model",
            )
        return _Contender(candidate.name, candidate.precision, loaded, check)

    def _gate_afresh(  # noqa: PLR0913 - the failed gate's parts, and whether to time
        self,
        candidate: Candidate,
        engine: InferenceEngine,
        encoder: Encoder,
        trial: _Trial,
        failed: ParityCheck,
        *,
        timed: bool,
    ) -> tuple[Encoder, ParityCheck] | ModelUnavailable:
        """A failed gate tried again on fresh ones of what came from disk: the reference's
        answer, then the engine's cached build. The last gate run is the verdict."""
        check = failed
        if trial.recalled:
            log.info(
                "probe_answer_recomputed", model=trial.spec.qualified_name, engine=check.engine
            )
            expected = trial.fresh_expected()
            if isinstance(expected, ModelUnavailable):
                return expected
            check = self._gate(candidate, encoder, trial, expected, timed=timed)
        if not check.passed and isinstance(engine, Rebuilds):
            log.info("engine_rebuilt", model=trial.spec.qualified_name, engine=check.engine)
            rebuilt = engine.rebuild(trial.spec, trial.folder)
            expected = trial.expected()
            if isinstance(rebuilt, ModelUnavailable) or isinstance(expected, ModelUnavailable):
                return encoder, check  # nothing fresh to gate: the failed gate stands
            encoder, check = rebuilt, self._gate(candidate, rebuilt, trial, expected, timed=timed)
        return encoder, check

    def _make(self, candidate: Candidate, spec: ModelSpec) -> InferenceEngine | ModelUnavailable:
        made = f"{candidate.name}|{candidate.precision}"
        engine = self._made.get(made)
        if engine is None:
            try:
                engine = candidate.make()
            except (ImportError, OSError, RuntimeError) as exc:  # a runtime missing or broken
                return ModelUnavailable(spec.qualified_name, f"{candidate.name}: {exc}")
            self._made[made] = engine
        return engine

    def _gate(
        self, candidate: Candidate, encoder: Encoder, trial: _Trial, expected: Array, *, timed: bool
    ) -> ParityCheck:
        diff, cosine = parity_of(_run(encoder, trial.probe), expected)
        tolerance = TOLERANCES[candidate.precision]
        passed = cosine >= tolerance.min_cosine and (
            tolerance.max_abs_diff is None or diff <= tolerance.max_abs_diff
        )
        speed = self._speed_of(encoder, trial.probe) if passed and timed else None
        return ParityCheck(candidate.name, candidate.precision, diff, cosine, passed, speed)


def _log_unavailable(candidate: Candidate, trial: _Trial, why: ModelUnavailable) -> None:
    log.info(
        "engine_unavailable",
        model=trial.spec.qualified_name,
        engine=candidate.name,
        precision=candidate.precision,
        reason=why.reason,
    )


def _in_order(candidates: list[Candidate], precision: Precision) -> list[Candidate]:
    """The wanted precision's candidates, then fp32 ones as the fallback."""
    wanted = [c for c in candidates if c.precision == precision]
    fallback = [c for c in candidates if c.precision != precision and c.precision == "fp32"]
    return wanted + fallback
