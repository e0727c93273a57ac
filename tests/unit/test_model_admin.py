"""ModelAdmin: pull and remove by name, over fakes of the downloading and carrying stores."""

from __future__ import annotations

from pathlib import Path

from application.catalogue import CATALOGUE, Catalogue
from application.model_admin import ModelAdmin, NotRemovable, Pulled, Removed
from domain.errors import ModelNotFound
from domain.models import ModelSpec
from domain.ports import FileProgress
from tests.fakes import FakeDownloads, FakeStore

M2V = "minishlab/M2V_base_output"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


class FakeLoaded:
    def __init__(self, *loaded: ModelSpec) -> None:
        self.loaded = set(loaded)

    def unload(self, spec: ModelSpec, *, reason: str = "requested") -> bool:
        del reason
        if spec not in self.loaded:
            return False
        self.loaded.discard(spec)
        return True


def admin_over(tmp_path: Path, loaded: FakeLoaded | None = None) -> ModelAdmin:
    carried = FakeStore({MINILM: tmp_path / "package"})
    return ModelAdmin(Catalogue(CATALOGUE), FakeDownloads(tmp_path / "hub"), [carried], loaded)


def spec_of(admin: ModelAdmin, name: str) -> ModelSpec:
    spec = admin.resolve(name)
    assert isinstance(spec, ModelSpec)
    return spec


def test_unknown_name_is_model_not_found(tmp_path: Path) -> None:
    """A name outside the catalogue resolves to ModelNotFound, saying so."""
    result = admin_over(tmp_path).resolve("no-such-model")

    assert isinstance(result, ModelNotFound)
    assert "catalogue" in result.reason


def test_pull_downloads_and_passes_progress_on(tmp_path: Path) -> None:
    """A model no package carries is downloaded; the caller hears the progress."""
    admin = admin_over(tmp_path)
    heard: list[FileProgress] = []

    pulled = admin.pull(spec_of(admin, "potion-base-2M"), heard.append)

    assert isinstance(pulled, Pulled)
    assert not pulled.carried
    assert [p.file for p in heard] == ["model.safetensors"]


def test_pull_of_a_carried_model_downloads_nothing(tmp_path: Path) -> None:
    """A model an installed package carries is present already."""
    admin = admin_over(tmp_path)

    pulled = admin.pull(spec_of(admin, "all-minilm"))

    assert isinstance(pulled, Pulled)
    assert pulled.carried
    assert not (tmp_path / "hub").exists()


def test_remove_refuses_a_carried_model(tmp_path: Path) -> None:
    """The package's model is not ours to delete: NotRemovable, naming the folder."""
    admin = admin_over(tmp_path)

    result = admin.remove(spec_of(admin, "all-minilm"), "all-minilm")

    assert isinstance(result, NotRemovable)
    assert str(tmp_path / "package") in result.message


def test_remove_of_a_model_not_downloaded_is_not_found(tmp_path: Path) -> None:
    """A catalogue model never pulled cannot be removed."""
    admin = admin_over(tmp_path)

    assert isinstance(admin.remove(spec_of(admin, "gte-base"), "gte-base"), ModelNotFound)


async def test_delete_unloads_every_reading_of_the_folder(tmp_path: Path) -> None:
    """M2V_base_output is read as Model2Vec and as Static from one folder: deleting it unloads
    both, then removes the folder."""
    model2vec, static = (s for s in CATALOGUE if s.repo_id == M2V)
    loaded = FakeLoaded(model2vec, static)
    admin = admin_over(tmp_path, loaded)
    admin.pull(model2vec)

    result = await admin.delete(model2vec, "M2V_base_output")

    assert result == Removed(model2vec, unloaded=True)
    assert loaded.loaded == set()
    assert admin.present(model2vec) is None


async def test_delete_refused_leaves_the_model_loaded(tmp_path: Path) -> None:
    """A refusal unloads nothing."""
    minilm = next(s for s in CATALOGUE if s.repo_id == MINILM)
    loaded = FakeLoaded(minilm)
    admin = admin_over(tmp_path, loaded)

    result = await admin.delete(minilm, "all-minilm")

    assert isinstance(result, NotRemovable)
    assert loaded.loaded == {minilm}
