"""Reading word vectors: the word2vec text format, and gensim pickles read as data, never run."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Literal

import numpy as np
import pytest

from adapters.engines.numpy_ref import NumpyEngine
from adapters.tokenizers.by_family import load_tokenizer
from adapters.weights.gensim_pickle import _DataUnpickler, read_gensim_vocabulary
from adapters.weights.word_vectors import read_word_vectors, read_words
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
    from collections.abc import Callable
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


def _write_lines(folder: Path, lines: list[bytes], *, dim: int, end: bytes = b"\n") -> Path:
    """A word2vec text file byte for byte: the header, then `lines`, each ended by `end`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "glove-twitter-3.txt"
    path.write_bytes(f"{len(lines)} {dim}".encode() + end + b"".join(ln + end for ln in lines))
    return path


ODD_WORDS = [b'"', b'"quoted"', b"it's", b"#hash", b"#", b"a,b", b",", b"\\", b"NA", b"null"]
ODD_WORDS += [b"nan", b"", b"caf\xe9", b"\xff\xfe", "日本".encode(), b"tab\there", b"nul\x00"]


def test_words_may_hold_quotes_hashes_commas_and_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    """Every byte but a space or a line break is the word's, decoded as UTF-8 with U+FFFD."""
    _write_lines(tmp_path, [w + b" 1.5 -2 0.25" for w in ODD_WORDS], dim=3)
    words = read_words(tmp_path)
    assert words == [w.decode("utf-8", errors="replace") for w in ODD_WORDS]
    assert words[ODD_WORDS.index(b"caf\xe9")] == "caf\N{REPLACEMENT CHARACTER}"
    expected = np.tile(np.array([1.5, -2, 0.25], np.float32), (len(ODD_WORDS), 1))
    np.testing.assert_array_equal(read_word_vectors(tmp_path), expected)


def test_lines_ending_in_a_space_read_as_without_it(tmp_path: Path) -> None:
    """GloVe files whose lines end `… vdim \n` give the same words and table as without."""
    lines = [b"a 1 2 3", b"b 4 5 6"]
    _write_lines(tmp_path / "plain", lines, dim=3)
    _write_lines(tmp_path / "spaced", [ln + b" " for ln in lines], dim=3)
    assert read_words(tmp_path / "spaced") == read_words(tmp_path / "plain") == ["a", "b"]
    spaced = read_word_vectors(tmp_path / "spaced")
    np.testing.assert_array_equal(spaced, read_word_vectors(tmp_path / "plain"))
    np.testing.assert_array_equal(spaced, [[1, 2, 3], [4, 5, 6]])


@pytest.mark.parametrize("end", [b"\r\n", b"\n"])
@pytest.mark.parametrize("blank", [b"", b"\n", b"\n\n", b" \n", b"\t \n\n", b"   "])
def test_blank_lines_after_the_last_word_are_not_words(
    tmp_path: Path, end: bytes, blank: bytes
) -> None:
    """Empty or whitespace-only lines at the end are dropped, with LF or CRLF line ends."""
    path = _write_lines(tmp_path, [b"a 1 2", b"b 3 4"], dim=2, end=end)
    path.write_bytes(path.read_bytes() + blank)
    assert read_words(tmp_path) == ["a", "b"]
    np.testing.assert_array_equal(read_word_vectors(tmp_path), [[1, 2], [3, 4]])


VALUES = ["0.12345", "-0.5", "1e-3", "-2.5E+2", "+1.5", ".5", "5.", "-0", "0", "3.4028234e38"]
VALUES += ["1.4e-45", "inf", "-inf", "0.30000001192092896", "-0.054712", "1" * 30]
# each between two float32 by a hair: numpy and Python round to float64 first, then to float32
VALUES += ["1.0000001788139343253045132620", "1.0000001788139343261710279670"]


def test_values_are_the_float32_of_pythons_float_bit_for_bit(tmp_path: Path) -> None:
    """A value is np.float32(float(s)), the bits numpy's own text parser gives, for any spelling."""
    _write_lines(tmp_path, [b"w " + " ".join(VALUES).encode()], dim=len(VALUES))
    [row] = read_word_vectors(tmp_path)
    expected = np.array([np.float32(float(s)) for s in VALUES], np.float32)
    assert row.view(np.uint32).tolist() == expected.view(np.uint32).tolist()
    assert np.fromstring(" ".join(VALUES), np.float32, sep=" ").tobytes() == row.tobytes()


@pytest.mark.parametrize("read", [read_words, read_word_vectors])
def test_a_line_with_too_few_values_is_refused_by_its_word(
    tmp_path: Path, read: Callable[[Path], object]
) -> None:
    """A short line is a ValueError that names the file, the line's word and the counts."""
    _write_lines(tmp_path, [b"a 1 2 3", b"b 4 5", b"c 7 8 9"], dim=3)
    expected = "glove-twitter-3.txt: the line of 'b' holds 2 fields after the word where 3 were"
    with pytest.raises(ValueError, match=expected):
        read(tmp_path)


@pytest.mark.parametrize("read", [read_words, read_word_vectors])
def test_a_line_with_too_many_values_is_refused_by_its_word(
    tmp_path: Path, read: Callable[[Path], object]
) -> None:
    """A long line is refused the same way, even when its word is not UTF-8."""
    _write_lines(tmp_path, [b"a 1 2 3", b"b\xff 4 5 6 7"], dim=3)
    with pytest.raises(ValueError, match="line of 'b\N{REPLACEMENT CHARACTER}' holds 4 fields"):
        read(tmp_path)


def test_a_line_without_the_trailing_space_of_the_others_is_refused(tmp_path: Path) -> None:
    """Lines end in a space or not as the first one does; the message says so."""
    _write_lines(tmp_path, [b"a 1 2 ", b"b 3 4"], dim=2)
    with pytest.raises(ValueError, match=r"the line of 'b'.*trailing space the first line ends"):
        read_word_vectors(tmp_path)


@pytest.mark.parametrize("value", [b"x", b"NA", b"1,5", b'"1"'])
def test_a_value_that_is_not_a_number_is_refused(tmp_path: Path, value: bytes) -> None:
    """Strings pyarrow would read as null or text are refused, naming the file."""
    _write_lines(tmp_path, [b"a 1 2", b"b 3 " + value], dim=2)
    with pytest.raises(ValueError, match=r"glove-twitter-3\.txt: .*invalid value"):
        read_word_vectors(tmp_path)


@pytest.mark.parametrize("read", [read_words, read_word_vectors])
@pytest.mark.parametrize("announced", [1, 3])
def test_a_count_that_is_not_the_number_of_lines_is_refused(
    tmp_path: Path, read: Callable[[Path], object], announced: int
) -> None:
    """The header's word count must be the number of lines, more or fewer."""
    path = _write_lines(tmp_path, [b"a 1 2", b"b 3 4"], dim=2)
    path.write_bytes(path.read_bytes().replace(b"2 2", f"{announced} 2".encode(), 1))
    with pytest.raises(ValueError, match=f"announces {announced} words and holds 2 lines"):
        read(tmp_path)


def test_an_empty_vocabulary_is_an_empty_table(tmp_path: Path) -> None:
    """`0 dim` and no lines is zero words and a [0, dim] table."""
    _write_lines(tmp_path, [], dim=4)
    assert read_words(tmp_path) == []
    assert read_word_vectors(tmp_path).shape == (0, 4)


def test_a_header_of_zero_values_per_word_is_refused(tmp_path: Path) -> None:
    """`count 0` announces no table at all: refused, not read as [count, 0]."""
    _write_lines(tmp_path, [b"a", b"b"], dim=0)
    with pytest.raises(ValueError, match="announces 0 values per word"):
        read_word_vectors(tmp_path)


def test_a_count_larger_than_the_file_could_hold_is_refused_before_allocating(
    tmp_path: Path,
) -> None:
    """A header announcing 10^12 words is a ValueError, not a table the size of the header."""
    path = _write_lines(tmp_path, [b"a 1 2"], dim=2)
    path.write_bytes(path.read_bytes().replace(b"1 2\n", b"1000000000000 2\n", 1))
    with pytest.raises(ValueError, match="announces 1000000000000 words of 2 values, more than"):
        read_word_vectors(tmp_path)


def _copies(folder: Path) -> list[str]:
    kept = folder / ".embedserve"
    return sorted(p.suffix for p in kept.iterdir()) if kept.is_dir() else []


def test_word2vec_text_is_parsed_once_then_its_table_is_mapped(tmp_path: Path) -> None:
    """The first load parses and keeps table and words; the next maps the same table."""
    vectors = random_vectors(len(WORDS), 25, seed=3)
    path = write_word2vec_text(tmp_path, WORDS, vectors, "glove-twitter-25.txt")
    words, direct = _direct_parse(path)
    first = read_word_vectors(tmp_path)
    assert not isinstance(first, np.memmap)
    assert read_words(tmp_path) == words
    assert _copies(tmp_path) == [".npy", ".txt"]
    again = read_word_vectors(tmp_path)
    assert isinstance(again, np.memmap)
    assert again.tobytes() == first.tobytes() == direct.tobytes()
    assert read_words(tmp_path) == words


def test_a_changed_text_file_is_parsed_again(tmp_path: Path) -> None:
    """The copies are named by the file's size and time: new contents are never served stale."""
    write_word2vec_text(tmp_path, WORDS, random_vectors(len(WORDS), 25, seed=4), "g.txt")
    read_word_vectors(tmp_path)
    read_words(tmp_path)
    path = write_word2vec_text(tmp_path, WORDS[:3], random_vectors(3, 25, seed=5), "g.txt")
    words, direct = _direct_parse(path)
    assert read_word_vectors(tmp_path).tobytes() == direct.tobytes()
    assert read_words(tmp_path) == words
    assert _copies(tmp_path) == [".npy", ".txt"]  # the earlier version's copies are gone


@pytest.mark.parametrize("damage", ["truncated", "other shape", "not npy"])
def test_a_damaged_copy_is_ignored_and_written_anew(tmp_path: Path, damage: str) -> None:
    """A kept table that does not read back as the text's [count, dim] float32 is never used."""
    path = write_word2vec_text(tmp_path, WORDS, random_vectors(len(WORDS), 25, seed=6), "g.txt")
    _, direct = _direct_parse(path)
    read_word_vectors(tmp_path)
    (copy,) = (tmp_path / ".embedserve").glob("*.npy")
    if damage == "truncated":
        copy.write_bytes(copy.read_bytes()[:200])
    elif damage == "other shape":
        np.save(copy, np.zeros((len(WORDS), 24), np.float32))
    else:
        copy.write_bytes(b"not a table")
    assert read_word_vectors(tmp_path).tobytes() == direct.tobytes()
    mapped = read_word_vectors(tmp_path)
    assert isinstance(mapped, np.memmap)
    assert mapped.tobytes() == direct.tobytes()


def test_a_damaged_word_list_is_ignored(tmp_path: Path) -> None:
    """A kept word list of the wrong length is parsed again from the text."""
    path = write_word2vec_text(tmp_path, WORDS, random_vectors(len(WORDS), 25, seed=7), "g.txt")
    words, _ = _direct_parse(path)
    read_words(tmp_path)
    (copy,) = (tmp_path / ".embedserve").glob("*.txt")
    copy.write_text("the\nonly", encoding="utf-8")
    assert read_words(tmp_path) == words


def test_a_folder_that_cannot_keep_copies_is_parsed_every_time(tmp_path: Path) -> None:
    """Where the copies cannot be written (here `.embedserve` is a file), loading still works."""
    path = write_word2vec_text(tmp_path, WORDS, random_vectors(len(WORDS), 25, seed=8), "g.txt")
    words, direct = _direct_parse(path)
    (tmp_path / ".embedserve").write_bytes(b"")
    for _ in range(2):
        assert read_word_vectors(tmp_path).tobytes() == direct.tobytes()
        assert read_words(tmp_path) == words
