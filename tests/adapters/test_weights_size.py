"""What a model's weights take as float32, read from safetensors headers alone: on disk, and
from the Hub (the stand-in) by range requests, before anything is downloaded. And the mapped
reading itself: float32 tensors stay views into the file, bfloat16 ones widen exactly."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pytest

from adapters.stores.hf_hub import HubStore
from adapters.weights.mapped_tensors import held_bytes, read_mapped
from domain.models import Family, ModelSpec, PoolingMode
from tests.hub_standin import HubStandIn, hub_reachable
from tests.model_factory_qwen3 import (
    header_only_safetensors,
    published_repo_files,
    published_tensors,
)

if TYPE_CHECKING:
    from pathlib import Path

GB = 10**9


@pytest.fixture(autouse=True)
def no_hf_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    hub_reachable(monkeypatch)


def _spec(repo_id: str) -> ModelSpec:
    return ModelSpec(repo_id, repo_id, Family.QWEN3, 4096, 32768, PoolingMode.LAST_TOKEN)


def _float32_bytes(size: str) -> int:
    return 4 * sum(math.prod(shape) for shape in published_tensors(size).values())


def test_a_sharded_repo_is_sized_from_its_headers_without_fetching_a_weight(
    tmp_path: Path,
) -> None:
    """The 8B's four shards claim 7.6 billion bfloat16 weights: 30 GB as float32, told by HEAD
    and range requests for the headers; no shard is ever fetched whole."""
    repo = "Qwen/Qwen3-Embedding-8B"
    files = published_repo_files("8B", shards=4)
    with HubStandIn({repo: files}) as hub:
        store = HubStore(tmp_path, hub.url)
        held = store.held_bytes(_spec(repo))
        seen = list(hub.requests)
    assert held == _float32_bytes("8B")
    assert 30 * GB < held < 31 * GB
    shard_gets = [s for s in seen if s.method == "GET" and s.file and "-of-" in s.file]
    assert shard_gets
    assert all(s.range is not None and s.range.startswith("bytes=") for s in shard_gets)
    assert not (tmp_path / repo).exists()


def test_a_repo_without_safetensors_tells_no_size(tmp_path: Path) -> None:
    """A pickle-only repo: None, so the size is judged once downloaded, as before."""
    repo = "org/pickled"
    with HubStandIn({repo: {"config.json": b"{}", "pytorch_model.bin": b"pickle"}}) as hub:
        assert HubStore(tmp_path, hub.url).held_bytes(_spec(repo)) is None


def test_a_folder_on_disk_is_sized_from_its_own_header(tmp_path: Path) -> None:
    """No request at all for a model already here: its header, bfloat16 counted as float32."""
    folder = tmp_path / "Qwen" / "Qwen3-Embedding-0.6B"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(header_only_safetensors(published_tensors("0.6B")))
    assert held_bytes(folder) == _float32_bytes("0.6B")
    offline = HubStore(tmp_path, "http://127.0.0.1:9", offline=True)
    assert offline.held_bytes(_spec("Qwen/Qwen3-Embedding-0.6B")) == _float32_bytes("0.6B")


@pytest.mark.reference
def test_mapped_tensors_are_float32_views_and_widened_bfloat16(tmp_path: Path) -> None:
    """float32 tensors are read in place from the mapped file; bfloat16 ones equal torch's
    widening to float32 exactly."""
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(5)
    f32 = torch.randn(7, 5, generator=generator)
    bf16 = torch.randn(3, 4, generator=generator).to(torch.bfloat16)
    save_file({"a": f32, "b": bf16}, str(tmp_path / "model.safetensors"))
    tensors = read_mapped(tmp_path)
    assert isinstance(tensors["a"].base, np.memmap) or isinstance(tensors["a"], np.memmap)
    np.testing.assert_array_equal(tensors["a"], f32.numpy())
    assert tensors["b"].dtype == np.float32
    np.testing.assert_array_equal(tensors["b"], bf16.to(torch.float32).numpy())
