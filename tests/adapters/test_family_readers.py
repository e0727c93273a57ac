"""The adapters' family table (adapters/families.py): every family read, graphs where they pay."""

from __future__ import annotations

from pathlib import Path

from adapters.engines.numpy_ref import NumpyEngine
from adapters.families import FAMILY_READERS, GRAPH_FAMILIES
from application.catalogue import CATALOGUE
from domain.chunking import WINDOWLESS
from domain.families import FAMILIES
from domain.models import Family
from domain.ports import PadsForFree
from tests.model_factory import minilm_folder
from tests.model_factory_static import write_model2vec_model


def test_every_family_has_a_reader_and_a_tokenizer() -> None:
    """A family in the domain table fails here until the adapters' table can read it."""
    assert set(FAMILY_READERS) == set(FAMILIES) == set(Family)


def test_the_reference_runs_every_family() -> None:
    """The numpy engine is the yardstick: no family is left without it."""
    assert NumpyEngine().families == set(Family)


def test_word_vectors_stay_off_the_graph_engines() -> None:
    """A gather and a mean gain nothing from a graph: every family with positions records one,
    the windowless ones stay on numpy."""
    assert set(Family) - WINDOWLESS == GRAPH_FAMILIES


def test_on_numpy_the_windowless_families_pad_for_free(tmp_path: Path) -> None:
    """Their pass is one embedding_bag over the real ids, so the batcher plans them into few
    passes rather than little padding; a family with positions pays for every padded token."""
    static_spec = next(s for s in CATALOGUE if s.name == "potion-base-8M")
    bert_spec = next(s for s in CATALOGUE if s.name == "all-MiniLM-L6-v2")
    static = NumpyEngine().load(static_spec, write_model2vec_model(tmp_path / "m2v"))
    bert = NumpyEngine().load(bert_spec, minilm_folder())
    assert isinstance(static, PadsForFree)
    assert static.pads_for_free
    assert isinstance(bert, PadsForFree)
    assert not bert.pads_for_free
