from __future__ import annotations

from pathlib import Path

import pytest

from application.catalogue import CATALOGUE, AliasRefused, Catalogue
from application.ollama_library import LIBRARY_SPECS
from domain.models import Family, PoolingMode


@pytest.fixture
def catalogue() -> Catalogue:
    return Catalogue(CATALOGUE)


# added since, by issue 14: the sentence-transformers DistilBERT and MPNet repos
_DISTILBERT_AND_MPNET = {
    "msmarco-distilbert-base-v4",
    "multi-qa-distilbert-cos-v1",
    "all-mpnet-base-v2",
}
# by issue 15: the ModernBERT embedders
_MODERNBERT = {"gte-modernbert-base", "modernbert-embed-base"}


# added by issue 16: the cross-encoders' short names
_RERANKERS = {
    "ms-marco-MiniLM-L6-v2",
    "ms-marco-MiniLM-L12-v2",
    "bge-reranker-base",
    "bge-reranker-large",
    "bge-reranker-v2-m3",
    "gte-reranker-modernbert-base",
}


def test_catalogue_holds_the_23_entries_of_the_modelled_server() -> None:
    """Every name of the server we model is there, M2V_base_output once per family; the
    repos Ollama's library names stand for follow them."""
    seed = CATALOGUE[: -len(LIBRARY_SPECS)]
    modelled = [s for s in seed if s.name not in _DISTILBERT_AND_MPNET | _MODERNBERT | _RERANKERS]
    assert len(modelled) == 23
    assert CATALOGUE[len(seed) :] == LIBRARY_SPECS
    counts = {f: sum(1 for s in modelled if s.family is f) for f in Family}
    assert counts == {
        Family.DISTILBERT: 0,
        Family.MPNET: 0,
        Family.GEMMA3: 0,  # embeddinggemma-300m is an Ollama library repo
        Family.QWEN3: 0,
        Family.MODERNBERT: 0,
        Family.NOMIC_BERT: 0,
        Family.BERT: 4,
        Family.ROBERTA: 1,
        Family.XLM_ROBERTA: 3,
        Family.CLIP: 3,
        Family.WORD2VEC: 4,
        Family.MODEL2VEC: 6,
        Family.STATIC: 2,
        Family.BERT_CROSS_ENCODER: 0,
        Family.XLM_ROBERTA_CROSS_ENCODER: 0,
        Family.MODERNBERT_CROSS_ENCODER: 0,
    }
    assert len({s.qualified_name for s in CATALOGUE}) == len(CATALOGUE)


def test_catalogue_holds_the_distilbert_and_mpnet_repos() -> None:
    """Each once, under its family."""
    added = {s.name: s.family for s in CATALOGUE if s.name in _DISTILBERT_AND_MPNET}
    assert added == {
        "msmarco-distilbert-base-v4": Family.DISTILBERT,
        "multi-qa-distilbert-cos-v1": Family.DISTILBERT,
        "all-mpnet-base-v2": Family.MPNET,
    }


def test_ollamas_qwen3_embedding_names_are_the_qwen3_embedding_repos() -> None:
    """qwen3-embedding:0.6b, :4b and :8b resolve to the three sizes; latest is the 8B."""
    catalogue = Catalogue(CATALOGUE)
    resolved = {
        tag: getattr(catalogue.resolve(f"qwen3-embedding:{tag}"), "repo_id", None)
        for tag in ("0.6b", "4b", "8b", "latest")
    }
    assert resolved == {
        "0.6b": "Qwen/Qwen3-Embedding-0.6B",
        "4b": "Qwen/Qwen3-Embedding-4B",
        "8b": "Qwen/Qwen3-Embedding-8B",
        "latest": "Qwen/Qwen3-Embedding-8B",
    }
    assert catalogue.resolve("qwen3-embedding") == catalogue.resolve("qwen3-embedding:latest")
    assert {s.family for s in CATALOGUE if s.repo_id.startswith("Qwen/")} == {Family.QWEN3}


def test_catalogue_holds_the_modernbert_repos() -> None:
    """Each once, under ModernBERT, with the pooling its repo names."""
    added = {(s.name, s.repo_id, s.pooling) for s in CATALOGUE if s.family is Family.MODERNBERT}
    assert added == {
        ("gte-modernbert-base", "Alibaba-NLP/gte-modernbert-base", PoolingMode.CLS),
        ("modernbert-embed-base", "nomic-ai/modernbert-embed-base", PoolingMode.MEAN),
    }


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
    assert [(a.qualified_name, a.configured) for a in catalogue.aliases(minilm)] == [
        ("all-minilm:latest", False),
        ("all-minilm:22m", False),
    ]
    assert catalogue.aliases(gte) == ()


def _configured(*pairs: tuple[str, str]) -> Catalogue:
    extended = Catalogue(CATALOGUE).with_aliases(pairs)
    assert isinstance(extended, Catalogue), extended
    return extended


@pytest.mark.parametrize(
    "requested",
    ["text-embedding-3-small", "text-embedding-3-small:latest", "Text-Embedding-3-Small"],
)
def test_a_configured_alias_resolves_to_its_target(requested: str) -> None:
    """An OpenAI model name given as an alias names the catalogue model, with or without :latest."""
    catalogue = _configured(("text-embedding-3-small", "all-MiniLM-L6-v2"))
    spec = catalogue.resolve(requested)
    alias = catalogue.alias(requested)
    assert spec is not None
    assert spec.qualified_name == "all-MiniLM-L6-v2:latest"
    assert alias is not None
    assert (alias.name, alias.spec, alias.configured) == ("text-embedding-3-small", spec, True)


def test_a_configured_alias_is_listed_beside_its_target_after_ollamas_names() -> None:
    """aliases(spec) holds the library name and the configured ones, each once."""
    catalogue = _configured(
        ("text-embedding-3-small", "all-minilm"),
        ("text-embedding-ada-002", "sentence-transformers/all-MiniLM-L6-v2"),
        ("text-embedding-3-small", "all-MiniLM-L6-v2:latest"),  # the same alias again
    )
    minilm = catalogue.resolve("all-MiniLM-L6-v2")
    assert minilm is not None
    assert [a.qualified_name for a in catalogue.aliases(minilm)] == [
        "all-minilm:latest",
        "all-minilm:22m",
        "text-embedding-3-small:latest",
        "text-embedding-ada-002:latest",
    ]


def test_an_alias_to_a_tagged_entry_answers_as_latest() -> None:
    """The alias's own tag is :latest, whatever the tag of the entry it names."""
    catalogue = _configured(("m2v-static", "M2V_base_output:static"))
    spec = catalogue.resolve("m2v-static")
    assert spec is not None
    assert spec.family is Family.STATIC
    assert catalogue.resolve("m2v-static:static") is None


def test_configuring_aliases_leaves_the_original_catalogue_alone(catalogue: Catalogue) -> None:
    """with_aliases answers a new catalogue; the one it extends resolves what it did."""
    _ = catalogue.with_aliases([("text-embedding-3-small", "all-MiniLM-L6-v2")])
    assert catalogue.resolve("text-embedding-3-small") is None
    assert catalogue.alias("all-minilm") is not None


@pytest.mark.parametrize(
    ("alias", "target", "reason"),
    [
        ("text-embedding-3-small", "no-such-model", "no model 'no-such-model' in the catalogue"),
        ("gte-base", "all-MiniLM-L6-v2", "'gte-base' already names gte-base:latest"),
        ("ALL-MINILM", "gte-base", "'ALL-MINILM' already names all-MiniLM-L6-v2:latest"),
        ("thenlper/gte-base", "all-MiniLM-L6-v2", "already names gte-base:latest"),
        ("small:v2", "all-MiniLM-L6-v2", "with no ':tag'"),
        ("two words", "all-MiniLM-L6-v2", "letters, digits"),
        ("", "all-MiniLM-L6-v2", "letters, digits"),
    ],
)
def test_an_alias_the_catalogue_cannot_take_is_refused(
    alias: str, target: str, reason: str
) -> None:
    """A missing target, a name that would hide a catalogue name, a tag or a space: refused."""
    refused = Catalogue(CATALOGUE).with_aliases([(alias, target)])
    assert isinstance(refused, AliasRefused)
    assert refused.message.startswith(f"alias {alias}={target} refused: ")
    assert reason in refused.message


def test_one_alias_for_two_models_is_refused() -> None:
    """The same alias twice is fine only when it names the same model both times."""
    refused = Catalogue(CATALOGUE).with_aliases(
        [("text-embedding-3-small", "all-MiniLM-L6-v2"), ("text-embedding-3-small", "gte-base")]
    )
    assert isinstance(refused, AliasRefused)
    assert "already an alias of all-MiniLM-L6-v2:latest" in refused.message


def _readme_catalogue_rows() -> list[list[str]]:
    text = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    section = text.split("## Catalogue", 1)[1].split("\n## ", 1)[0]
    table = section.split("\n| ", 1)[1].split("\n\n", 1)[0]  # the first table
    rows = [line for line in f"| {table}".splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows[1:]]


def test_the_readme_table_is_the_catalogue() -> None:
    """README's table of the catalogue says what the code says, row for row."""
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
