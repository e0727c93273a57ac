"""torch.save checkpoints read as data: every tensor as torch saved it, and no pickle ever runs."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import subprocess
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pytest

from adapters.weights.torch_checkpoint import read_torch_checkpoint

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    import torch

Payload = Literal["GLOBAL os.system", "builtins.exec", "subprocess.Popen"]
PAYLOADS: list[Payload] = ["GLOBAL os.system", "builtins.exec", "subprocess.Popen"]


def _save(folder: Path, state: object, **options: Any) -> Path:
    import torch

    path = folder / "pytorch_model.bin"
    torch.save(state, path, **options)
    return path


def _assert_read_as_saved(path: Path, state: Mapping[str, torch.Tensor]) -> None:
    import torch

    ours = read_torch_checkpoint(path)
    assert list(ours) == list(state)
    for key, tensor in state.items():
        # numpy has no bfloat16: it comes back widened, which is exact
        theirs = (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).detach().numpy()
        assert ours[key].dtype == theirs.dtype, key
        assert ours[key].flags.c_contiguous, key
        np.testing.assert_array_equal(ours[key], theirs, err_msg=key)


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write_zip(path: Path, members: Mapping[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, raw in members.items():
            archive.writestr(name, raw)
    return path


@dataclass(frozen=True)
class _StorageRef:
    key: str
    numel: int


@dataclass(frozen=True)
class _HandTensor:
    """A tensor as torch pickles it, with offset, size and stride chosen by the test."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def __reduce__(self) -> tuple[Any, ...]:
        from torch._utils import _rebuild_tensor_v2

        args: tuple[Any, ...] = (
            self.storage,
            self.offset,
            self.size,
            self.stride,
            False,
            OrderedDict(),
        )
        return _rebuild_tensor_v2, args


class _TorchLikePickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> object:
        import torch

        if isinstance(obj, _StorageRef):
            return ("storage", torch.FloatStorage, obj.key, "cpu", obj.numel)
        return None


def _write_hand_checkpoint(
    path: Path, root: object, storages: Mapping[str, bytes], byteorder: bytes = b"little"
) -> Path:
    """The zip layout torch.save writes, around a pickle the test controls."""
    data = io.BytesIO()
    _TorchLikePickler(data, protocol=2).dump(root)
    members = {"archive/data.pkl": data.getvalue(), "archive/byteorder": byteorder}
    return _write_zip(path, members | {f"archive/data/{k}": v for k, v in storages.items()})


@pytest.mark.reference
@pytest.mark.parametrize(
    "dtype",
    ["float32", "float16", "bfloat16", "float64", "int64", "int32", "int8", "uint8", "bool"],
)
def test_each_dtype_is_read_as_torch_saved_it(tmp_path: Path, dtype: str) -> None:
    """Floats and ints keep their dtype and bytes; bfloat16 comes back as the same float32s."""
    import torch

    generator = torch.Generator().manual_seed(0)
    values = torch.randn(3, 5, generator=generator) * 100
    tensor = values.to(getattr(torch, dtype))
    _assert_read_as_saved(_save(tmp_path, {"w": tensor}), {"w": tensor})


@pytest.mark.reference
def test_views_are_read_as_the_tensor_not_its_storage(tmp_path: Path) -> None:
    """A transposed, strided, offset or broadcast view comes back as its own values."""
    import torch

    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    state = {
        "transposed": base.t(),
        "every_other_column": base[:, ::2],
        "inner_block": base[1:3, 2:5],
        "broadcast": torch.arange(3.0).expand(4, 3),  # stride 0
    }
    assert not any(t.is_contiguous() for t in state.values())
    _assert_read_as_saved(_save(tmp_path, state), state)


@pytest.mark.reference
def test_keys_sharing_one_storage_each_get_their_own_slice(tmp_path: Path) -> None:
    """Slices of one tensor, saved together, share one storage member at different offsets."""
    import torch

    base = torch.arange(12, dtype=torch.int64)
    state = {"head": base[:4], "tail": base[4:], "middle": base[5:9], "all": base}
    path = _save(tmp_path, state)
    assert len([n for n in _members(path) if "/data/" in n]) == 1
    _assert_read_as_saved(path, state)


@pytest.mark.reference
def test_zero_dimensional_and_empty_tensors_are_read(tmp_path: Path) -> None:
    """A scalar keeps shape (), and an empty tensor keeps its zero-length shape."""
    import torch

    state = {
        "scalar": torch.tensor(7, dtype=torch.int64),
        "empty": torch.empty(0, 4),
        "empty_columns": torch.empty(3, 0),  # stride (1, 1) over no storage at all
        "empty_view": torch.arange(6.0)[6:],  # offset at the very end of its storage
    }
    ours = read_torch_checkpoint(_save(tmp_path, state))
    assert ours["scalar"].shape == ()
    assert ours["empty"].shape == (0, 4)
    _assert_read_as_saved(tmp_path / "pytorch_model.bin", state)


@pytest.mark.reference
def test_parameters_saved_with_keep_vars_are_read_as_tensors(tmp_path: Path) -> None:
    """state_dict(keep_vars=True) pickles nn.Parameters; their data is what is read."""
    import torch

    state = torch.nn.Linear(3, 2).state_dict(keep_vars=True)
    _assert_read_as_saved(_save(tmp_path, state), state)


def _tiny_bert_with_tied_embeddings() -> torch.nn.Module:
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(
        vocab_size=64,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
    )
    return BertForMaskedLM(config)


def _tiny_clip() -> torch.nn.Module:
    from transformers import CLIPConfig, CLIPModel

    config = CLIPConfig(
        text_config={
            "vocab_size": 64,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "max_position_embeddings": 16,
        },
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 8,
        },
        projection_dim=8,
    )
    return CLIPModel(config)


@pytest.mark.reference
@pytest.mark.parametrize("make", [_tiny_bert_with_tied_embeddings, _tiny_clip])
def test_a_transformers_state_dict_is_read_tensor_for_tensor(tmp_path: Path, make: Any) -> None:
    """Every tensor of a real model's state dict (with torch's _metadata) comes back exactly."""
    import torch

    torch.manual_seed(0)
    state = make().state_dict()
    _assert_read_as_saved(_save(tmp_path, state), state)


@pytest.mark.reference
def test_a_bfloat16_model_is_read_as_float32(tmp_path: Path) -> None:
    """A model saved in bfloat16 reads back as float32, value for value."""
    import torch

    state = _tiny_bert_with_tied_embeddings().to(dtype=torch.bfloat16).state_dict()
    ours = read_torch_checkpoint(_save(tmp_path, state))
    assert {a.dtype for a in ours.values()} == {np.dtype(np.float32)}
    _assert_read_as_saved(tmp_path / "pytorch_model.bin", state)


def test_a_big_endian_checkpoint_is_read_in_native_order(tmp_path: Path) -> None:
    """byteorder `big` means the storage bytes are big-endian; the arrays come back native."""
    values = np.arange(6, dtype=np.float32) / 4
    root = {"w": _HandTensor(_StorageRef("0", 6), 0, (2, 3), (3, 1))}
    path = _write_hand_checkpoint(
        tmp_path / "big.bin", root, {"0": values.astype(">f4").tobytes()}, byteorder=b"big"
    )
    ours = read_torch_checkpoint(path)["w"]
    assert ours.dtype == np.dtype(np.float32)
    np.testing.assert_array_equal(ours, values.reshape(2, 3))


class _Exploit:
    """Whatever unpickles this creates `marker`: proof that the pickle ran."""

    def __init__(self, how: Payload, marker: Path) -> None:
        self.how = how
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        if self.how == "builtins.exec":
            return builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",)
        if self.how == "subprocess.Popen":
            return subprocess.Popen, (["touch", str(self.marker)],)
        return os.system, (f"touch {self.marker}",)


def _malicious_checkpoint(folder: Path, how: Payload, marker: Path) -> Path:
    import torch

    if how == "GLOBAL os.system":  # by hand: pickle itself would write posix.system
        command = repr(f"touch {marker}").encode()
        data = b"cos\nsystem\n(S" + command + b"\ntR."
        path = _save(folder, {"w": torch.ones(2)})
        members = _members(path)
        pkl = next(n for n in members if n.endswith("/data.pkl"))
        return _write_zip(path, members | {pkl: data})
    return _save(folder, {"w": torch.ones(2), "payload": _Exploit(how, marker)})


@pytest.mark.parametrize("how", PAYLOADS)
def test_a_malicious_pickle_is_refused_and_nothing_runs(tmp_path: Path, how: Payload) -> None:
    """A global outside the allow-list is refused before anything it names is called."""
    marker = tmp_path / "pwned"
    path = _malicious_checkpoint(tmp_path, how, marker)
    with pytest.raises(ValueError, match="not allowed"):
        read_torch_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("how", PAYLOADS)
def test_the_malicious_pickles_run_under_torch_load(tmp_path: Path, how: Payload) -> None:
    """The control: torch.load(weights_only=False) runs each payload, so the test above can fail."""
    import torch

    marker = tmp_path / "pwned"
    root = torch.load(_malicious_checkpoint(tmp_path, how, marker), weights_only=False)
    if how == "subprocess.Popen":
        root["payload"].wait()
    assert marker.exists()


def test_a_pickle_cannot_alter_the_reader_it_is_given(tmp_path: Path) -> None:
    """BUILD on an allowed global (setting its attributes and defaults) is refused, not applied."""
    from adapters.weights import torch_checkpoint

    state = b"(}X\x03\x00\x00\x00zzzK\x01s}X\x0c\x00\x00\x00__defaults__(K\x07tst"
    data = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n" + state + b"b."
    path = _write_zip(tmp_path / "build.bin", {"archive/data.pkl": data})
    with pytest.raises(ValueError, match="refused as a torch checkpoint"):
        read_torch_checkpoint(path)
    assert vars(torch_checkpoint._rebuild_tensor) == {}
    assert torch_checkpoint._rebuild_tensor.__defaults__ is None


def test_a_pickled_module_is_refused_as_not_a_state_dict(tmp_path: Path) -> None:
    """torch.save(model) pickles the nn.Module class: refused, with what to save instead."""
    import torch

    path = _save(tmp_path, torch.nn.Linear(3, 2))
    with pytest.raises(ValueError, match=r"torch\.nn\.modules\.linear\.Linear.*only a state dict"):
        read_torch_checkpoint(path)


def test_a_nested_state_dict_is_refused(tmp_path: Path) -> None:
    """Only a flat name -> tensor dict is read; {"state_dict": {...}} is not unwrapped."""
    import torch

    path = _save(tmp_path, {"state_dict": {"w": torch.ones(2)}})
    with pytest.raises(ValueError, match="'state_dict' is not a tensor: only a flat state dict"):
        read_torch_checkpoint(path)


def test_a_legacy_checkpoint_is_refused_as_not_the_zip_format(tmp_path: Path) -> None:
    """torch.save's pre-1.6 format is a bare pickle stream: refused, saying what is read."""
    import torch

    path = _save(tmp_path, {"w": torch.ones(2)}, _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError, match=r"legacy .* only the zip format"):
        read_torch_checkpoint(path)


def test_a_truncated_checkpoint_is_refused(tmp_path: Path) -> None:
    """A download cut short has no zip directory at its end."""
    import torch

    path = _save(tmp_path, {"w": torch.ones(256)})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match="refused as a torch checkpoint"):
        read_torch_checkpoint(path)


def test_a_missing_storage_member_is_refused(tmp_path: Path) -> None:
    """A tensor whose storage bytes are not in the archive is refused, naming the storage."""
    import torch

    path = _save(tmp_path, {"w": torch.ones(4)})
    members = {n: raw for n, raw in _members(path).items() if "/data/" not in n}
    with pytest.raises(ValueError, match="storage '0' is missing"):
        read_torch_checkpoint(_write_zip(path, members))


def test_a_storage_member_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    """A storage member shorter than its element count says is refused, not read short."""
    import torch

    path = _save(tmp_path, {"w": torch.ones(4)})
    members = {n: raw[:-4] if "/data/" in n else raw for n, raw in _members(path).items()}
    with pytest.raises(ValueError, match="holds 12 bytes, not the 16 needed"):
        read_torch_checkpoint(_write_zip(path, members))


@pytest.mark.parametrize(
    ("offset", "size", "stride"), [(0, (2, 4), (4, 1)), (3, (6,), (1,)), (0, (3, 2), (1, 4))]
)
def test_a_tensor_overrunning_its_storage_is_refused(
    tmp_path: Path, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
) -> None:
    """Size, stride and offset that reach past the storage's 6 elements are refused."""
    root = {"w": _HandTensor(_StorageRef("0", 6), offset, size, stride)}
    raw = np.zeros(6, dtype="<f4").tobytes()
    path = _write_hand_checkpoint(tmp_path / "over.bin", root, {"0": raw})
    with pytest.raises(ValueError, match="overruns its storage of 6 elements"):
        read_torch_checkpoint(path)


def _bin_twin(folder: Path, twin: Path) -> Path:
    """The same model with its weights as pytorch_model.bin only, as older hub repos ship."""
    import shutil

    import torch
    from safetensors.torch import load_file

    shutil.copytree(folder, twin)
    state = load_file(twin / "model.safetensors")
    (twin / "model.safetensors").unlink()
    torch.save(state, twin / "pytorch_model.bin")
    return twin


@pytest.mark.reference
@pytest.mark.parametrize("family", ["bert", "clip"])
def test_a_model_with_only_a_torch_checkpoint_embeds_as_its_safetensors_twin(
    tmp_path: Path, family: str
) -> None:
    """The engine reads pytorch_model.bin when no model.safetensors exists, to the same bits."""
    from adapters.engines.numpy_ref import NumpyEngine
    from application.batching import pad
    from application.catalogue import CATALOGUE
    from domain.errors import ModelUnavailable
    from tests.model_factory import write_bert_model
    from tests.model_factory_clip import write_clip_model

    name = {"bert": "gte-base", "clip": "clip-vit-base-patch32"}[family]
    spec = next(s for s in CATALOGUE if s.name == name)
    write = write_bert_model if family == "bert" else write_clip_model
    original = write(tmp_path / "original")
    twin = _bin_twin(original, tmp_path / "twin")
    ids, mask = pad([[5, 6, 7, 8], [9, 10]])
    vectors = []
    for folder in (original, twin):
        encoder = NumpyEngine().load(spec, folder)
        assert not isinstance(encoder, ModelUnavailable), encoder
        vectors.append(encoder.embed(ids, mask))
    np.testing.assert_array_equal(vectors[0], vectors[1])
