"""Names to models: catalogue first, Ollama's awaited names refused, repo ids described once,
and --allow-models deciding what may be used at all."""

from __future__ import annotations

from application.catalogue import CATALOGUE, Catalogue
from application.model_lookup import ModelLookup
from application.ollama_library import AwaitedModel
from domain.errors import ArchitectureNotSupported, ModelNotFound
from domain.models import Family, ModelSpec, PoolingMode
from tests.fakes import FakeRepoModels

BGE = ModelSpec(
    "BAAI/bge-small-en-v1.5", "BAAI/bge-small-en-v1.5", Family.BERT, 384, 512, PoolingMode.CLS
)
# custom code (auto_map) naming an architecture we have not written
JINA = ArchitectureNotSupported(
    "jinaai/jina-embeddings-v2-base-en", "JinaBertForMaskedLM", ("BertModel",)
)
ON_DISK = ModelSpec("acme/mini", "acme/mini", Family.BERT, 32, 128, PoolingMode.MEAN)


def _lookup(*allowed: str) -> tuple[ModelLookup, FakeRepoModels]:
    repos = FakeRepoModels({BGE.repo_id: BGE, JINA.name: JINA}, on_disk=[ON_DISK])
    return ModelLookup(Catalogue(CATALOGUE), repos, allowed), repos


def test_a_repo_id_is_described_once_then_known() -> None:
    """The first request reads the repo's configs; later ones, `:latest` too, need no I/O."""
    lookup, repos = _lookup()
    assert lookup.known(BGE.repo_id) is None
    assert lookup.find_blocking(BGE.repo_id) == BGE
    assert lookup.find_blocking("baai/bge-small-en-v1.5:latest") == BGE
    assert lookup.known(f"{BGE.repo_id}:latest") == BGE
    assert repos.asked == [f"{BGE.repo_id}@main"]


def test_a_revision_is_asked_of_the_store_and_kept_out_of_the_name() -> None:
    lookup, repos = _lookup()
    assert lookup.find_blocking(f"{BGE.repo_id}@v1.5") == BGE
    assert repos.asked == [f"{BGE.repo_id}@v1.5"]


def test_catalogue_names_and_repo_ids_of_catalogue_entries_never_reach_the_store() -> None:
    """bge-m3 and BAAI/bge-m3 are one catalogue entry; a tagged entry's repo id resolves too."""
    lookup, repos = _lookup()
    bge_m3 = lookup.find_blocking("bge-m3")
    assert isinstance(bge_m3, ModelSpec)
    assert lookup.find_blocking("BAAI/bge-m3") == bge_m3
    arctic = lookup.find_blocking("Snowflake/snowflake-arctic-embed-xs")
    assert arctic == lookup.find_blocking("snowflake-arctic-embed:22m")
    assert repos.asked == []


def test_an_unsupported_architecture_and_a_missing_repo_are_told_apart() -> None:
    lookup, _ = _lookup()
    assert lookup.find_blocking(JINA.name) == JINA
    missing = lookup.find_blocking("nobody/nothing")
    assert isinstance(missing, ModelNotFound)
    assert missing.name == "nobody/nothing"
    assert lookup.find_blocking("no-such-model") == ModelNotFound("no-such-model")


def test_ollama_names_awaiting_their_architecture_are_refused_without_the_store() -> None:
    """A library name awaiting its architecture is listed, and answers with the architecture it
    needs (none does today: jina-embeddings-v2's custom JinaBERT stands in for one)."""
    awaited = AwaitedModel("jina-embeddings-v2", "latest", JINA.name, JINA.architecture)
    repos = FakeRepoModels({})
    lookup = ModelLookup(Catalogue(CATALOGUE), repos, (), awaited=[awaited])
    for name in ("jina-embeddings-v2", "jina-embeddings-v2:latest"):
        refused = lookup.find_blocking(name)
        assert isinstance(refused, ArchitectureNotSupported), name
        assert refused.architecture == "JinaBertForMaskedLM"
    assert "jina-embeddings-v2:latest" in {m.qualified_name for m in lookup.awaited()}
    assert repos.asked == []


def test_nomic_embed_text_runs_under_each_of_its_tags() -> None:
    """nomic-embed-text (every tag) is nomic-embed-text-v1.5's NomicBERT, and
    snowflake-arctic-embed:137m is arctic-embed-m-long's, with no store asked."""
    lookup, repos = _lookup()
    for name in ("nomic-embed-text", "nomic-embed-text:v1.5", "nomic-embed-text:137m-v1.5-fp16"):
        found = lookup.find_blocking(name)
        assert isinstance(found, ModelSpec), name
        assert (found.repo_id, found.family) == (
            "nomic-ai/nomic-embed-text-v1.5",
            Family.NOMIC_BERT,
        )
    arctic = lookup.find_blocking("snowflake-arctic-embed:137m")
    assert isinstance(arctic, ModelSpec)
    assert arctic.repo_id == "Snowflake/snowflake-arctic-embed-m-long"
    assert "nomic-embed-text:latest" not in {m.qualified_name for m in lookup.awaited()}
    assert repos.asked == []


def test_allow_models_refuses_what_no_pattern_matches_as_unknown() -> None:
    """Patterns match the name asked for, the catalogue name, or the repo id; case aside."""
    lookup, repos = _lookup("baai/*", "all-minilm")
    assert isinstance(lookup.find_blocking("bge-m3"), ModelSpec)  # its repo is BAAI/bge-m3
    assert lookup.find_blocking(BGE.repo_id) == BGE
    assert isinstance(lookup.find_blocking("all-minilm:22m"), ModelSpec)
    for refused in ("gte-base", "all-MiniLM-L12-v2", JINA.name, "nomic-embed-text", "acme/mini"):
        assert lookup.find_blocking(refused) == ModelNotFound(refused), refused
    assert lookup.known("gte-base") is None
    assert repos.asked == [f"{BGE.repo_id}@main"]  # a refused repo is never asked about


def test_listings_hold_allowed_catalogue_models_and_repo_models_on_disk() -> None:
    everything, _ = _lookup()
    assert ON_DISK in everything.listed()
    assert len(everything.listed()) == len(CATALOGUE) + 1
    only_baai, _ = _lookup("BAAI/*")
    assert {s.repo_id.split("/")[0] for s in only_baai.listed()} == {"BAAI"}
    assert only_baai.awaited() == ()


def test_removing_looks_on_disk_only() -> None:
    """A repo id not on disk is not found for removal, and the Hub is not asked."""
    lookup, repos = _lookup()
    assert lookup.find_local("acme/mini") == ON_DISK
    assert lookup.find_local(BGE.repo_id) == ModelNotFound(BGE.repo_id)
    assert repos.asked == []
