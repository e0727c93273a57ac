"""A pickle cannot reach past the allow-list into this process, not even as data."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from adapters.weights import gensim_pickle
from adapters.weights.gensim_pickle import read_gensim_vocabulary

if TYPE_CHECKING:
    from pathlib import Path

_KV = b"gensim.models.keyedvectors\nKeyedVectors\n"


def _build_on(global_line: bytes, state: bytes) -> bytes:
    """GLOBAL <allowed name>, then BUILD with a (dict, slot-state) pair, then a KeyedVectors."""
    return (
        b"\x80\x02c" + global_line + b"(}" + state + b"b0"  # BUILD on the global, popped
        b"c" + _KV + b")\x81}X\x0c\x00\x00\x00index_to_key]X\x01\x00\x00\x00aasb."
    )


@pytest.mark.parametrize(
    ("global_line", "state", "target", "attribute"),
    [
        (
            b"numpy._core.multiarray\nscalar\n",
            b"}X\x0c\x00\x00\x00__defaults__(K\x01tst",
            gensim_pickle._scalar,
            "__defaults__",
        ),
        (
            _KV,
            b"}X\x0c\x00\x00\x00__setstate__K\x01st",
            gensim_pickle._Record,
            "__setstate__",
        ),
    ],
    ids=["function-defaults", "class-attribute"],
)
def test_a_build_on_an_allowed_name_changes_nothing_of_ours(
    tmp_path: Path, global_line: bytes, state: bytes, target: object, attribute: str
) -> None:
    before = getattr(target, attribute, None)
    path = tmp_path / "kv.model"
    path.write_bytes(_build_on(global_line, state))
    read_gensim_vocabulary(path)
    assert getattr(target, attribute, None) is before
