"""The adapters' family table (adapters/families.py): every family read, graphs where they pay."""

from __future__ import annotations

from adapters.engines.numpy_ref import NumpyEngine
from adapters.families import FAMILY_READERS, GRAPH_FAMILIES
from domain.chunking import WINDOWLESS
from domain.families import FAMILIES
from domain.models import Family


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
