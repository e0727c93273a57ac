"""The family table (domain/families.py): one row per family, and what is derived from it."""

from __future__ import annotations

from domain.chunking import WINDOWLESS
from domain.families import FAMILIES, FILES_NEEDED, WEIGHTS
from domain.models import Family


def test_every_family_has_a_row() -> None:
    """A family added to the Family enum fails here until the table declares it."""
    assert set(FAMILIES) == set(Family)


def test_the_file_lists_are_the_rows_own() -> None:
    """What the hub store fetches for a family is what its row says, nothing declared twice."""
    for family, traits in FAMILIES.items():
        assert FILES_NEEDED[family] == traits.files
        assert WEIGHTS[family] == traits.weights


def test_the_word_vector_families_are_the_windowless_ones() -> None:
    """Chunking embeds a whole text as one row for exactly the families without positions."""
    assert {Family.WORD2VEC, Family.MODEL2VEC, Family.STATIC} == WINDOWLESS


def test_only_a_family_with_an_image_tower_takes_images() -> None:
    """Input kinds follow the row: CLIP's image forward pass, text alone for the rest."""
    takes_images = {f for f, traits in FAMILIES.items() if "image" in traits.input_kinds}
    assert takes_images == {Family.CLIP}
    assert all(traits.input_kinds[0] == "text" for traits in FAMILIES.values())
