from __future__ import annotations

from pathlib import Path

import pytest

from application.catalogue import CATALOGUE, Catalogue
from domain.models import Family


@pytest.fixture
def catalogue() -> Catalogue:
    return Catalogue(CATALOGUE)


def test_catalogue_holds_the_23_entries_of_the_modelled_server() -> None:
    """Every name of the server we model is there, M2V_base_output once per family."""
    assert len(CATALOGUE) == 23
    counts = {f: sum(1 for s in CATALOGUE if s.family is f) for f in Family}
    assert counts == {
        Family.BERT: 4,
        Family.ROBERTA: 1,
        Family.XLM_ROBERTA: 3,
        Family.CLIP: 3,
        Family.WORD2VEC: 4,
        Family.MODEL2VEC: 6,
        Family.STATIC: 2,
    }
    assert len({s.qualified_name for s in CATALOGUE}) == 23


@pytest.mark.parametrize(
    "requested",
    [
        "all-MiniLM-L6-v2",
        "all-MiniLM-L6-v2:latest",
        "all-minilm",
        "all-minilm:latest",
        "ALL-MINILM-L6-V2",
        "sentence-transformers/all-MiniLM-L6-v2",
        "sentence-transformers/all-MiniLM-L6-v2:latest",
        " all-minilm ",
    ],
)
def test_names_tags_aliases_and_repo_ids_resolve_to_minilm(
    catalogue: Catalogue, requested: str
) -> None:
    """Ollama-style tags, the Ollama library alias and the hub repo id all name one model."""
    spec = catalogue.resolve(requested)
    assert spec is not None
    assert spec.name == "all-MiniLM-L6-v2"


def test_a_tag_tells_the_two_readings_of_m2v_base_output_apart(catalogue: Catalogue) -> None:
    """Untagged is the Model2Vec reading; `:static` the sentence-transformers StaticEmbedding."""
    plain = catalogue.resolve("M2V_base_output")
    static = catalogue.resolve("M2V_base_output:static")
    assert plain is not None
    assert static is not None
    assert (plain.family, static.family) == (Family.MODEL2VEC, Family.STATIC)


@pytest.mark.parametrize("requested", ["", "nope", "all-minilm:v9", ":latest", "gte-base:"])
def test_unknown_names_resolve_to_nothing(catalogue: Catalogue, requested: str) -> None:
    """Anything the catalogue does not hold resolves to None, never to a guess."""
    assert catalogue.resolve(requested) is None


def test_aliases_of_a_spec_are_its_ollama_library_names(catalogue: Catalogue) -> None:
    """all-MiniLM-L6-v2 is `all-minilm` in Ollama's library; other entries have no alias."""
    minilm = catalogue.resolve("all-MiniLM-L6-v2")
    gte = catalogue.resolve("gte-base")
    assert minilm is not None
    assert gte is not None
    assert catalogue.aliases(minilm) == ("all-minilm",)
    assert catalogue.aliases(gte) == ()


def _readme_catalogue_rows() -> list[list[str]]:
    text = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = text.split("## Catalogue", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]


def test_the_readme_table_is_the_catalogue() -> None:
    """README's table of the 23 models says what the code says, row for row."""
    expected = [
        [
            spec.name if spec.tag == "latest" else spec.qualified_name,
            spec.family.value,
            str(spec.dimensions),
            str(spec.max_tokens) if spec.max_tokens else "no limit",
            spec.pooling.value,
            ", ".join(spec.input_kinds),
            spec.repo_id,
        ]
        for spec in CATALOGUE
    ]
    assert _readme_catalogue_rows() == expected
