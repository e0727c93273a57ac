"""Tokenizers read a text only as far as the ids asked for need, and give the very ids that
tokenizing the whole text gives (adapters/tokenizers/cut_points.py): for every tokenizer kind
the tests have, over hostile texts, with limits small enough that every text is read in pieces.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer as HFTokenizerFile

from adapters.tokenizers.hf_tokenizer import HFTokenizer, TokenRules, load_tokenizer
from adapters.tokenizers.word_level import WordLevelTokenizer
from domain.models import Family, ModelSpec, PoolingMode
from domain.ports import Tokenizer
from tests.model_factory import minilm_folder

# what normalisers collapse or join, what pre-tokenizers split on, and what added tokens match
_PIECES = [
    " ",
    "  ",
    "\t",
    "\n",
    "\u00a0",
    "\u3000",
    "\u2028",
    " \u0301",
    "!",
    "!!!",
    "...",
    "'s",
    "'",
    "a",
    "word",
    "Hello",
    "ΟΔΟΣ",
    "Σ",
    "e\u0301",
    "\u0301\u0301",
    "\u1100\u1161",
    "Å",
    "ﬁ",
    "①",
    "中文",
    "日本",
    "😀",
    "👩\u200d👩",
    "\u200d",
    "\u0600",
    "مرحبا",
    "שלום",
    "123",
    "4",
    "<mask>",
    "[MASK]",
    "[CLS]",
    "<s>",
    "<|endoftext|>",
    "\x00",
    "\ufffd",
    "x" * 120,
    "ab" * 30,
]
TEXTS = st.lists(st.sampled_from(_PIECES), max_size=80).map("".join)


def _write(folder: Path, name: str, value: object) -> None:
    (folder / name).write_text(json.dumps(value), encoding="utf-8")


def _spec() -> ModelSpec:
    return ModelSpec("tokenizer", "test/tokenizer", Family.BERT, 4, None, PoolingMode.MEAN)


def _folder(
    root: Path, tokenizer: HFTokenizerFile | None, tokenizer_class: str, max_tokens: int
) -> Path:
    folder = root / tokenizer_class
    folder.mkdir()
    if tokenizer is not None:
        tokenizer.save(str(folder / "tokenizer.json"))
    _write(folder, "tokenizer_config.json", {"tokenizer_class": tokenizer_class})
    _write(folder, "config.json", {"max_position_embeddings": max_tokens})
    return folder


def _loaded(folder: Path) -> Tokenizer:
    tokenizer = load_tokenizer(_spec(), folder)
    assert not isinstance(tokenizer, Exception), tokenizer
    return tokenizer  # type: ignore[return-value]


@cache
def _roberta(flavour: str) -> HFTokenizerFile:
    from tests.model_factory_roberta import _tokenizer

    return HFTokenizerFile.from_str(_tokenizer(flavour).to_str())  # type: ignore[arg-type]


def _minilm_file() -> HFTokenizerFile:
    return HFTokenizerFile.from_file(str(minilm_folder() / "tokenizer.json"))


def _clip_folder(root: Path, max_tokens: int) -> Path:
    from tests.model_factory_clip import _vocabulary

    vocab, merges = _vocabulary()
    folder = _folder(root, None, "CLIPTokenizer", max_tokens)
    _write(folder, "vocab.json", vocab)
    lines = ["#version: 0.2", *(f"{a} {b}" for a, b in merges)]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def _model2vec(max_tokens: int) -> Tokenizer:
    file = _minilm_file()
    median = int(statistics.median(len(t) for t in file.get_vocab()))
    rules = TokenRules(
        special_tokens=False,
        drop=frozenset({file.token_to_id("[UNK]")}),
        char_limit=max_tokens * median,
    )
    return HFTokenizer(file, max_tokens, lowercase=False, rules=rules)


def _kinds(root: Path) -> Iterator[tuple[str, Callable[[], Tokenizer]]]:
    yield "wordpiece", lambda: _loaded(_folder(root, _minilm_file(), "BertTokenizer", 10))
    yield "wordpiece cased", lambda: HFTokenizer(_minilm_file(), 9, lowercase=True)
    yield "byte-level bpe", lambda: _loaded(_folder(root, _roberta("roberta"), "Roberta", 10))
    yield "unigram as the file says", lambda: HFTokenizer(_roberta("xlm"), 9, lowercase=False)
    yield (
        "unigram as transformers rebuilds it",
        lambda: _loaded(_folder(root, _roberta("xlm"), "XLMRobertaTokenizer", 10)),
    )
    yield "clip", lambda: _loaded(_clip_folder(root, 10))
    yield "model2vec", lambda: _model2vec(7)
    yield (
        "static, cut from the left",
        lambda: HFTokenizer(
            _roberta("xlm"),
            7,
            lowercase=False,
            rules=TokenRules(special_tokens=False, keep_end=True),
        ),
    )
    yield (
        "word level",
        lambda: WordLevelTokenizer(["a", "word", "hello", "!", "\u03c3", "'s", "123"]),
    )


_KINDS = [name for name, _ in _kinds(Path())]


@pytest.fixture(scope="module", params=_KINDS)
def tokenizer(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    made = dict(_kinds(tmp_path_factory.mktemp("tokenizers")))
    return made[request.param]()


def test_each_tokenizer_kind_of_the_tests_has_cut_points() -> None:
    """Bounded reading must not silently fall back to whole texts for the kinds we ship."""
    root = Path(__import__("tempfile").mkdtemp())
    for name, make in _kinds(root):
        tok = make()
        if isinstance(tok, HFTokenizer):
            assert tok._cuts is not None, name  # what the pipeline was read as


_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_SETTINGS
@given(text=TEXTS)
def test_the_cut_ids_are_those_of_the_whole_text_cut(tokenizer: Tokenizer, text: str) -> None:
    """What the model is shown is the same whether the text was read whole or only in part."""
    room = tokenizer.max_tokens - len(tokenizer.wrap(()).ids)
    [whole] = tokenizer.encode([text])
    [part] = tokenizer.encode([text], min(room, 10_000))
    assert part.ids == whole.ids
    assert part.truncated == whole.truncated
    if part.exact:
        assert part.full_length == whole.full_length
    else:  # what was read: a lower bound (model2vec drops ids after the cut, so not always more)
        assert whole.full_length >= part.full_length


@_SETTINGS
@given(text=TEXTS, limit=st.integers(0, 40))
def test_the_first_ids_read_are_the_whole_texts_first(
    tokenizer: Tokenizer, text: str, limit: int
) -> None:
    """text_ids with a limit gives the whole text's first limit + 1 ids, or all of them."""
    [whole] = tokenizer.text_ids([text])
    [part] = tokenizer.text_ids([text], limit)
    assert part == whole[: limit + 1]


@_SETTINGS
@given(text=TEXTS, limit=st.integers(0, 20), at=st.floats(0, 1))
def test_a_prefix_settles_only_the_ids_the_whole_text_has(
    tokenizer: Tokenizer, text: str, limit: int, at: float
) -> None:
    """Whatever follows a prefix, the ids it says are settled are the whole text's."""
    prefix = text[: int(len(text) * at)]
    settled = tokenizer.settled_ids(prefix, limit)
    if settled is not None:
        assert settled == tokenizer.text_ids([text])[0][: limit + 1]


class _Recording:
    """A tokenizers.Tokenizer that records the characters of every text it tokenizes."""

    def __init__(self, inner: HFTokenizerFile) -> None:
        self._inner = inner
        self.chars: list[int] = []

    def encode_batch_fast(self, texts: list[str], **kwargs: Any) -> Any:
        self.chars += [len(t) for t in texts]
        return self._inner.encode_batch_fast(texts, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.mark.parametrize(
    ("make", "text"),
    [
        (_minilm_file, "!" * 1_000_000),  # the request: a cut point at every character
        (_minilm_file, "word " * 200_000),
        (lambda: _roberta("roberta"), "word " * 200_000),
        (lambda: _roberta("xlm"), "word " * 200_000),
    ],
)
def test_a_huge_text_is_tokenized_only_as_far_as_the_cut(
    make: Callable[[], HFTokenizerFile], text: str
) -> None:
    """256 tokens of a million characters: a few thousand characters are tokenized."""
    recording = _Recording(make())
    tokenizer = HFTokenizer(recording, 256, lowercase=False)  # type: ignore[arg-type]
    recording.chars.clear()
    [encoded] = tokenizer.encode([text], 254)
    assert len(encoded.ids) == 256
    assert sum(recording.chars) <= 16 * 255


def test_a_text_within_the_largest_piece_is_tokenized_in_one_call() -> None:
    """Reading 1,500 characters whole costs less than a few pieces of them, each a call and a
    round of cut points (a Model2Vec request's texts, already cut by characters, are all such):
    the pieces are for texts past 8 x the ids asked for."""
    recording = _Recording(_minilm_file())
    tokenizer = HFTokenizer(recording, 256, lowercase=False)  # type: ignore[arg-type]
    recording.chars.clear()
    text = "word " * 300
    [encoded] = tokenizer.encode([text], 254)
    assert len(encoded.ids) == 256
    assert recording.chars == [len(text)]
