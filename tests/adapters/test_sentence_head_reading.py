"""Reading the sentence head from a repo's sentence-transformers files (model_folder.py).

What is read is held against sentence-transformers by tests/parity/test_sentence_head_parity.py;
these check what is refused, and that the width comes from the configs alone.
"""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING, Any

import pytest

from adapters.weights.model_folder import bert_width, read_bert
from domain.models import PoolingMode
from domain.sentence_head import Activation, Dense, Normalize
from tests.model_factory import DenseModule, write_bert_model

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture(scope="module")
def dense_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bert_model(
        tmp_path_factory.mktemp("dense") / "m",
        dense=[DenseModule(24), DenseModule(16, "Identity", bias=False, weights="bin")],
        normalize=True,
        seed=60,
    )


def _edit(path: Path, **values: Any) -> None:
    config = json.loads(path.read_text(encoding="utf-8"))
    config.update(values)
    path.write_text(json.dumps(config), encoding="utf-8")


def test_dense_and_normalize_are_read_in_modules_json_order(dense_model: Path) -> None:
    """Tanh Dense, Identity Dense with a zero bias, then Normalize; width from the last Dense."""
    head = read_bert(dense_model, PoolingMode.MEAN).head
    first, second, last = head.after
    assert isinstance(first, Dense)
    assert first.activation is Activation.TANH
    assert isinstance(second, Dense)
    assert second.activation is Activation.IDENTITY
    assert not second.linear.bias.any()
    assert isinstance(last, Normalize)
    assert head.width(32) == 16


def test_the_width_comes_from_the_configs_alone(dense_model: Path, tmp_path: Path) -> None:
    """A cached graph's width: the last Dense's out_features, no weight read."""
    copy = shutil.copytree(dense_model, tmp_path / "m")
    (copy / "model.safetensors").unlink()
    (copy / "2_Dense" / "model.safetensors").unlink()
    assert bert_width(copy, PoolingMode.MEAN) == 16


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"activation_function": "torch.nn.modules.activation.GELU"}, "GELU"),
        ({"activation_function": "my_module.Tanh"}, "my_module.Tanh"),
        ({"use_residual": True}, "use_residual"),
        ({"in_features": 31}, "31"),
    ],
)
def test_a_dense_module_we_do_not_run_is_refused(
    dense_model: Path, tmp_path: Path, values: dict[str, Any], says: str
) -> None:
    """Another activation (a repo's own class above all: never imported), a residual, or a
    width that does not chain: a ValueError, which the engines report as ModelUnavailable."""
    copy = shutil.copytree(dense_model, tmp_path / "m")
    _edit(copy / "2_Dense" / "config.json", **values)
    with pytest.raises(ValueError, match=says):
        read_bert(copy, PoolingMode.MEAN)


def test_a_module_outside_the_model_folder_is_refused(dense_model: Path, tmp_path: Path) -> None:
    """modules.json cannot point a Dense at files elsewhere on disk."""
    copy = shutil.copytree(dense_model, tmp_path / "m")
    modules = json.loads((copy / "modules.json").read_text(encoding="utf-8"))
    modules[2]["path"] = "../elsewhere"
    (copy / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    with pytest.raises(ValueError, match="outside"):
        read_bert(copy, PoolingMode.MEAN)
