"""Choosing the engine: the parity gate keeps drifting engines out; auto keeps the fastest."""

from __future__ import annotations

import weakref
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import structlog
from structlog.testing import LogCapture

import application.engine_choice
from application.engine_choice import (
    AUTO,
    Candidate,
    EngineSelector,
    ParityCheck,
    Precision,
    parity_of,
)
from domain.errors import ModelUnavailable
from domain.models import Family, ModelSpec, PoolingMode
from domain.ops import Array, IdArray
from domain.ports import Encoder, InferenceEngine
from tests.fakes import FakeEncoder, FakeEngine, FakeTokenizer

SPEC = ModelSpec("m", "org/m", Family.BERT, 4, 8, PoolingMode.MEAN)
FOLDER = Path("/nowhere")


class _Skewed:
    """The fake encoder's rows, each multiplied by (1 + drift) on its first component: a
    drift of 1e-3 moves the direction by about 1e-7 of cosine, which bf16's gate allows."""

    dimensions = 4
    images = None

    def __init__(self, drift: float, speed: float) -> None:
        self.drift = drift
        self.speed = speed
        self._inner = FakeEncoder()

    def embed(self, ids: IdArray, mask: IdArray) -> Array:
        out = self._inner.embed(ids, mask)
        out[:, 0] *= np.float32(1 + self.drift)
        return out


class _Engine:
    def __init__(self, name: str, encoder: _Skewed) -> None:
        self.name = name
        self.families = frozenset({Family.BERT})
        self.encoder = encoder
        self.loads = 0

    def load(self, spec: ModelSpec, folder: Path) -> Encoder | ModelUnavailable:
        self.loads += 1
        return self.encoder


class _Memory:
    def __init__(self, remembered: dict[str, str] | None = None) -> None:
        self.choices = dict(remembered or {})

    def recall(self, key: str) -> str | None:
        return self.choices.get(key)

    def remember(self, key: str, engine: str) -> None:
        self.choices[key] = engine


def _speed(encoder: Encoder, _probe: object) -> float:
    """Declared, not timed: the choice is tested, not the clock."""
    return float(getattr(encoder, "speed", 100.0))  # the reference runs at 100


def _candidate(engine: _Engine, precision: Precision = "fp32") -> Candidate:
    return Candidate(engine.name, precision, engine.families, lambda: engine)


class _Answers:
    """Probe answers by folder, as a real store would key them (there: by the files too)."""

    def __init__(self) -> None:
        self.kept: dict[Path, Array] = {}

    def recall(self, folder: Path, probe: Sequence[tuple[IdArray, IdArray]]) -> Array | None:
        return self.kept.get(folder)

    def remember(
        self, folder: Path, probe: Sequence[tuple[IdArray, IdArray]], answer: Array
    ) -> None:
        self.kept[folder] = answer.copy()


def _selector(
    *engines: _Engine | Candidate,
    forced: str = AUTO,
    memory: _Memory | None = None,
    precision: Precision = "fp32",
    reference: FakeEngine | None = None,
    answers: _Answers | None = None,
) -> EngineSelector:
    candidates = [e if isinstance(e, Candidate) else _candidate(e) for e in engines]
    return EngineSelector(
        reference or FakeEngine(),
        candidates,
        forced=forced,
        memory=memory,
        answers=answers,
        precision_of=lambda _spec: precision,
        speed_of=_speed,
    )


def _choose(selector: EngineSelector) -> tuple[str, ParityCheck | None, tuple[ParityCheck, ...]]:
    chosen = selector.choose(SPEC, FOLDER, FakeTokenizer(max_tokens=64))
    assert not isinstance(chosen, ModelUnavailable), chosen
    return chosen.engine, chosen.parity, chosen.considered


def test_without_candidates_the_reference_runs_ungated() -> None:
    assert _choose(_selector()) == ("fake", None, ())


def test_auto_keeps_the_fastest_engine_that_passes() -> None:
    slow, fast = _Engine("slow", _Skewed(0, 150)), _Engine("fast", _Skewed(0, 300))
    engine, parity, considered = _choose(_selector(slow, fast))
    assert engine == "fast"
    assert parity is not None
    assert parity.passed
    assert parity.max_abs_diff == 0.0
    assert [c.engine for c in considered] == ["slow", "fast"]


def test_a_drifting_engine_is_not_used_however_fast() -> None:
    """1e-3 relative drift on one component fails fp32's 1e-5 gate."""
    drifting, honest = _Engine("drifting", _Skewed(1e-3, 900)), _Engine("honest", _Skewed(0, 200))
    engine, _, considered = _choose(_selector(drifting, honest))
    assert engine == "honest"
    failed = next(c for c in considered if c.engine == "drifting")
    assert not failed.passed
    assert failed.max_abs_diff > 1e-5


def test_the_reference_wins_when_no_engine_is_faster() -> None:
    assert _choose(_selector(_Engine("slow", _Skewed(0, 50))))[0] == "fake"


def test_when_every_engine_drifts_the_reference_runs() -> None:
    engine, parity, considered = _choose(_selector(_Engine("bad", _Skewed(0.5, 900))))
    assert (engine, parity) == ("fake", None)
    assert [c.passed for c in considered] == [False]


def test_bf16_is_held_to_direction_not_digits() -> None:
    """The same small drift fails fp32's gate and passes bf16's (min cosine 0.9999)."""
    bf16 = _Engine("openvino", _Skewed(1e-3, 900))
    engine, parity, _ = _choose(_selector(_candidate(bf16, "bf16"), precision="bf16"))
    assert engine == "openvino"
    assert parity is not None
    assert parity.precision == "bf16"
    assert parity.min_cosine >= 0.9999


def test_a_forced_engine_is_used_without_timing_others() -> None:
    fast, forced = _Engine("fast", _Skewed(0, 900)), _Engine("forced", _Skewed(0, 10))
    engine, parity, _ = _choose(_selector(fast, forced, forced="forced"))
    assert engine == "forced"
    assert parity is not None
    assert parity.texts_per_s is None  # not timed
    assert fast.loads == 0


def test_a_forced_engine_that_fails_the_gate_falls_back_to_the_reference() -> None:
    engine, _, considered = _choose(_selector(_Engine("x", _Skewed(0.5, 9)), forced="x"))
    assert engine == "fake"
    assert [c.engine for c in considered] == ["x"]


def test_forcing_the_reference_makes_no_other_engine() -> None:
    other = _Engine("other", _Skewed(0, 900))
    assert _choose(_selector(other, forced="fake"))[0] == "fake"
    assert other.loads == 0


def test_the_choice_is_remembered_and_then_only_gated() -> None:
    memory = _Memory()
    a, b = _Engine("a", _Skewed(0, 200)), _Engine("b", _Skewed(0, 300))
    assert _choose(_selector(a, b, memory=memory))[0] == "b"
    assert memory.choices == {"m:latest|fp32": "b"}
    a2, b2 = _Engine("a", _Skewed(0, 900)), _Engine("b", _Skewed(0, 300))
    assert _choose(_selector(a2, b2, memory=memory))[0] == "b"
    assert (a2.loads, b2.loads) == (0, 1)


def test_a_remembered_engine_that_now_drifts_is_replaced() -> None:
    memory = _Memory({"m:latest|fp32": "b"})
    a, b = _Engine("a", _Skewed(0, 200)), _Engine("b", _Skewed(0.5, 300))
    assert _choose(_selector(a, b, memory=memory))[0] == "a"
    assert memory.choices["m:latest|fp32"] == "a"


def test_an_engine_that_cannot_be_made_is_skipped() -> None:
    def missing() -> InferenceEngine:
        msg = "No module named 'openvino'"
        raise ImportError(msg)

    broken = Candidate("openvino", "fp32", frozenset({Family.BERT}), missing)
    ok = _Engine("ok", _Skewed(0, 300))
    assert _choose(_selector(broken, ok))[0] == "ok"


def test_families_no_candidate_runs_stay_on_the_reference() -> None:
    static = ModelSpec("s", "org/s", Family.STATIC, 4, None, PoolingMode.MEAN)
    engine = _Engine("fast", _Skewed(0, 900))
    chosen = _selector(engine).choose(static, FOLDER, FakeTokenizer())
    assert not isinstance(chosen, ModelUnavailable)
    assert chosen.engine == "fake"
    assert engine.loads == 0


@pytest.mark.parametrize(
    ("ours", "reference", "diff", "cosine"),
    [
        ([[1.0, 0.0]], [[1.0, 0.0]], 0.0, 1.0),
        ([[0.0, 0.0]], [[0.0, 0.0]], 0.0, 1.0),  # zero vectors on both sides agree
        ([[0.0, 1.0]], [[1.0, 0.0]], 1.0, 0.0),
        ([[20.0, 0.0]], [[10.0, 0.0]], 1.0, 1.0),  # diff scaled by the largest component
    ],
)
def test_parity_measures(
    ours: list[list[float]], reference: list[list[float]], diff: float, cosine: float
) -> None:
    got = parity_of(np.array(ours, np.float32), np.array(reference, np.float32))
    assert got == pytest.approx((diff, cosine))


def test_a_remembered_engine_is_gated_but_not_timed() -> None:
    memory = _Memory({"m:latest|fp32": "b"})
    _, parity, considered = _choose(_selector(_Engine("b", _Skewed(0, 300)), memory=memory))
    assert parity is not None
    assert parity.passed
    assert parity.texts_per_s is None
    assert [c.engine for c in considered] == ["b"]


def test_when_the_reference_wins_that_is_remembered_too() -> None:
    memory = _Memory()
    slow = _Engine("slow", _Skewed(0, 50))
    assert _choose(_selector(slow, memory=memory))[0] == "fake"
    assert memory.choices == {"m:latest|fp32": "fake"}
    again = _Engine("slow", _Skewed(0, 50))
    assert _choose(_selector(again, memory=memory))[0] == "fake"
    assert again.loads == 0


def test_with_its_answer_remembered_a_warm_load_never_loads_the_reference() -> None:
    memory, answers = _Memory(), _Answers()
    assert _choose(_selector(_Engine("b", _Skewed(0, 300)), memory=memory, answers=answers))[0]
    assert FOLDER in answers.kept  # the first load ran the reference, and kept its answer
    warm = FakeEngine()
    engine, parity, _ = _choose(
        _selector(_Engine("b", _Skewed(0, 300)), memory=memory, answers=answers, reference=warm)
    )
    assert (engine, warm.loads) == ("b", [])
    assert parity is not None
    assert parity.passed


def test_the_remembered_answer_still_gates_a_drifting_engine() -> None:
    """The gate runs against the remembered answer: drift fails it, and the reference is loaded
    then, to time the others and to fall back on."""
    memory, answers = _Memory({"m:latest|fp32": "b"}), _Answers()
    _choose(_selector(_Engine("b", _Skewed(0, 300)), memory=memory, answers=answers))
    warm = FakeEngine()
    engine, _, considered = _choose(
        _selector(_Engine("b", _Skewed(0.5, 300)), memory=memory, answers=answers, reference=warm)
    )
    assert engine == "fake"
    assert [(c.engine, c.passed) for c in considered] == [("b", False)]
    assert warm.loads == [SPEC]


def test_a_reference_that_cannot_load_the_model_makes_it_unavailable(tmp_path: Path) -> None:
    (tmp_path / "broken").touch()
    chosen = _selector(_Engine("b", _Skewed(0, 300))).choose(SPEC, tmp_path, FakeTokenizer())
    assert isinstance(chosen, ModelUnavailable)


class _Rebuilding(_Engine):
    """Loads what it cached (`cached`); `rebuild` builds from the files (`fresh`) and keeps it."""

    def __init__(self, name: str, cached: _Skewed, fresh: _Skewed) -> None:
        super().__init__(name, cached)
        self.fresh = fresh
        self.rebuilds = 0

    def rebuild(self, spec: ModelSpec, folder: Path) -> Encoder | ModelUnavailable:
        self.rebuilds += 1
        self.encoder = self.fresh
        return self.fresh


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> list[MutableMapping[str, Any]]:
    """The selector's log lines (its logger may be cached by an app built earlier)."""
    capture = LogCapture()
    monkeypatch.setattr(
        application.engine_choice, "log", structlog.wrap_logger(None, processors=[capture])
    )
    return capture.entries


def test_a_cached_build_that_fails_the_gate_is_rebuilt_and_kept(
    logs: list[MutableMapping[str, Any]],
) -> None:
    """A fast engine failing its gate on what it cached builds again from the files, passes,
    and is the one chosen and remembered: not the reference, for good."""
    memory = _Memory()
    fast = _Rebuilding("fast", cached=_Skewed(0.5, 300), fresh=_Skewed(0, 300))
    engine, parity, considered = _choose(_selector(fast, memory=memory))
    assert engine == "fast"
    assert parity is not None
    assert parity.passed
    assert fast.rebuilds == 1
    assert [(c.engine, c.passed) for c in considered] == [("fast", True)]
    assert memory.choices == {"m:latest|fp32": "fast"}
    assert not [e for e in logs if e["log_level"] == "warning"]


def test_an_engine_that_passes_is_never_rebuilt() -> None:
    fast = _Rebuilding("fast", cached=_Skewed(0, 300), fresh=_Skewed(0, 300))
    assert _choose(_selector(fast))[0] == "fast"
    assert fast.rebuilds == 0


def test_a_build_that_fails_fresh_is_ruled_out_with_a_warning(
    logs: list[MutableMapping[str, Any]],
) -> None:
    """Only a fresh build failing the gate rules the engine out, and that is a warning."""
    memory = _Memory()
    bad = _Rebuilding("bad", cached=_Skewed(0.5, 300), fresh=_Skewed(0.5, 300))
    engine, _, considered = _choose(_selector(bad, memory=memory))
    assert engine == "fake"
    assert bad.rebuilds == 1
    assert [(c.engine, c.passed) for c in considered] == [("bad", False)]
    warned = [e for e in logs if e["log_level"] == "warning"]
    assert [(e["event"], e["engine"]) for e in warned] == [("engine_failed_parity", "bad")]


def test_a_forced_engine_failing_on_its_cached_build_is_rebuilt_and_used() -> None:
    forced = _Rebuilding("forced", cached=_Skewed(0.5, 10), fresh=_Skewed(0, 10))
    assert _choose(_selector(forced, forced="forced"))[0] == "forced"
    assert forced.rebuilds == 1


def test_a_wrong_remembered_answer_is_computed_again_and_the_engine_kept() -> None:
    """A remembered reference answer that is readable but wrong fails an honest engine's gate:
    the reference runs again, its answer replaces the wrong one, and the engine is kept."""
    memory, answers = _Memory({"m:latest|fp32": "b"}), _Answers()
    _choose(_selector(_Engine("b", _Skewed(0, 300)), memory=memory, answers=answers))
    right = answers.kept[FOLDER].copy()
    answers.kept[FOLDER] = right * np.float32(2) + np.float32(1)
    warm = FakeEngine()
    engine, parity, _ = _choose(
        _selector(_Engine("b", _Skewed(0, 300)), memory=memory, answers=answers, reference=warm)
    )
    assert engine == "b"
    assert parity is not None
    assert parity.passed
    assert warm.loads == [SPEC]
    assert answers.kept[FOLDER].tobytes() == right.tobytes()
    assert memory.choices == {"m:latest|fp32": "b"}


class _Fresh:
    """An engine that makes a new encoder at every load and keeps none: what a real one does."""

    def __init__(self, name: str, speed: float, made: list[weakref.ref[_Skewed]]) -> None:
        self.name = name
        self.families = frozenset({Family.BERT})
        self._speed = speed
        self._made = made

    def load(self, spec: ModelSpec, folder: Path) -> Encoder | ModelUnavailable:
        encoder = _Skewed(0.0, self._speed)
        self._made.append(weakref.ref(encoder))
        return encoder


def test_the_heap_is_given_back_once_only_the_chosen_encoder_is_left() -> None:
    """When the selector gives the freed heap back, the reference's encoder (loaded for the
    gate) and the slower engine's are unreachable: a trim then returns their memory."""
    made: list[weakref.ref[_Skewed]] = []
    alive: list[list[bool]] = []
    reference = _Fresh("fake", 100.0, made)
    engines = [_Fresh("slow", 50.0, made), _Fresh("fast", 500.0, made)]
    selector = EngineSelector(
        reference,  # type: ignore[arg-type]
        [Candidate(e.name, "fp32", e.families, lambda e=e: e) for e in engines],  # type: ignore[misc]
        speed_of=_speed,
        give_back=lambda: alive.append([ref() is not None for ref in made]),
    )
    chosen = selector.choose(SPEC, FOLDER, FakeTokenizer(max_tokens=64))
    assert not isinstance(chosen, ModelUnavailable)
    assert chosen.engine == "fast"
    assert made[2]() is chosen.encoder
    assert alive == [[False, False, True]]  # the reference's, the slow one's, the chosen
