"""Reading word vectors: the word2vec text format, and gensim pickles read as data, never run."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Literal

import numpy as np
import pytest

from adapters.engines.numpy_ref import NumpyEngine
from adapters.gensim_pickle import _DataUnpickler, read_gensim_vocabulary
from adapters.tokenizers.by_family import load_tokenizer
from adapters.word_vectors import read_word_vectors, read_words
from application.catalogue import CATALOGUE
from domain.errors import ModelUnavailable
from domain.families import FILES_NEEDED
from domain.models import Family
from tests.model_factory_word2vec import (
    random_vectors,
    write_gensim_keyed_vectors,
    write_malicious_pickle,
    write_word2vec_text,
)

if TYPE_CHECKING:
    from pathlib import Path

GLOVE_25 = next(s for s in CATALOGUE if s.name == "glove-twitter-25")
WORDS = ["the", "<user>", "don't", "!", "naïve", "日本", "😀", "a_b", "x" * 40]


def _direct_parse(path: Path) -> tuple[list[str], np.ndarray]:
    """The format by hand: header, then `word v1 … vdim` per line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    count, dim = map(int, lines[0].split())
    words = [line.split(" ")[0] for line in lines[1:]]
    table = np.array([[float(v) for v in line.split(" ")[1:]] for line in lines[1:]], np.float32)
    assert table.shape == (count, dim)
    return words, table


def test_word2vec_text_is_read_as_a_direct_parse_reads_it(tmp_path: Path) -> None:
    vectors = random_vectors(len(WORDS), 25, seed=1)
    path = write_word2vec_text(tmp_path, WORDS, vectors, "glove-twitter-25.txt")
    words, table = _direct_parse(path)
    ours = read_word_vectors(tmp_path)
    assert read_words(tmp_path) == words == WORDS
    assert ours.dtype == np.float32
    assert ours.flags.c_contiguous
    np.testing.assert_array_equal(ours, table)
    np.testing.assert_array_equal(ours, vectors)


def test_word2vec_text_with_a_missing_value_is_refused(tmp_path: Path) -> None:
    write_word2vec_text(tmp_path, ["a", "b"], random_vectors(2, 3, seed=2), "m.txt")
    path = tmp_path / "m.txt"
    path.write_text(path.read_text().rsplit(" ", 1)[0] + "\n")
    assert isinstance(NumpyEngine().load(GLOVE_25, tmp_path), ModelUnavailable)


@pytest.mark.parametrize(("gensim", "protocol"), [(4, 4), (4, 5), (3, 2)])
def test_gensim_keyed_vectors_pickle_is_parsed_as_data(
    tmp_path: Path, gensim: Literal[3, 4], protocol: int
) -> None:
    vectors = random_vectors(len(WORDS), 25, seed=3)
    path = write_gensim_keyed_vectors(
        tmp_path, WORDS, vectors, "glove-twitter-25.model", gensim=gensim, protocol=protocol
    )
    assert read_gensim_vocabulary(path) == WORDS
    assert read_words(tmp_path) == WORDS
    np.testing.assert_array_equal(read_word_vectors(tmp_path), vectors)
    if gensim == 4:  # numpy arrays inside the pickle come back as plain arrays, bytes for bytes
        root = _DataUnpickler(io.BytesIO(path.read_bytes())).load()
        counts = vars(root)["expandos"]["count"].array
        np.testing.assert_array_equal(counts, np.arange(len(WORDS), 0, -1))


def test_gensim_vocabulary_that_does_not_match_the_table_is_refused(tmp_path: Path) -> None:
    write_gensim_keyed_vectors(tmp_path, WORDS, random_vectors(len(WORDS), 4, seed=4), "g.model")
    np.save(tmp_path / "g.model.vectors.npy", random_vectors(len(WORDS) + 1, 4, seed=4))
    assert isinstance(load_tokenizer(GLOVE_25, tmp_path), ModelUnavailable)


@pytest.mark.parametrize("how", ["os.system", "builtins.eval"])
def test_malicious_pickle_is_refused_and_nothing_runs(
    tmp_path: Path, how: Literal["os.system", "builtins.eval"]
) -> None:
    marker = tmp_path / "pwned"
    path = write_malicious_pickle(tmp_path / "model", how, marker, "glove-twitter-25.model")
    refused = load_tokenizer(GLOVE_25, path.parent)
    assert isinstance(refused, ModelUnavailable)
    assert "not allowed" in refused.message
    with pytest.raises(ValueError, match="not allowed"):
        read_gensim_vocabulary(path)
    assert not marker.exists()


def test_word2vec_downloads_only_the_files_it_reads() -> None:
    from fnmatch import fnmatch

    repo = [
        "glove-twitter-25.txt",  # jkrukowski/glove-twitter-25
        "glove-twitter-25.model",  # fse/glove-twitter-25
        "glove-twitter-25.model.vectors.npy",
        "README.md",
        ".gitattributes",
    ]
    wanted = [f for f in repo if any(fnmatch(f, p) for p in FILES_NEEDED[Family.WORD2VEC])]
    assert wanted == repo[:3]
