"""The word-level tokenizer of Word2Vec / GloVe models: the splitting rule and unknown words."""

from __future__ import annotations

import pytest

from adapters.tokenizers.word_level import NO_LIMIT, WordLevelTokenizer, words


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, World!", ["hello", ",", "world", "!"]),
        ("I DON'T know", ["i", "don't", "know"]),
        ("it\u2019s", ["it's"]),
        ("<user> said #GloVe", ["<user>", "said", "#", "glove"]),
        ("tabs\tand\nnew\u00a0lines", ["tabs", "and", "new", "lines"]),
        ("😀😀 ok", ["😀", "😀", "ok"]),
        ("e-mail 3.5", ["e", "-", "mail", "3", ".", "5"]),
        ("", []),
        ("  \n ", []),
    ],
)
def test_text_is_lower_cased_and_split_into_words(text: str, expected: list[str]) -> None:
    assert words(text) == expected


def test_unknown_words_are_skipped_and_nothing_is_added_or_cut() -> None:
    tok = WordLevelTokenizer(["the", "cat", "!", "the"])
    [known, unknown] = tok.encode(["The zebra CAT!", "zebra okapi"])
    assert known.ids == (0, 1, 2)  # "the" listed twice keeps its first row
    assert not known.truncated
    assert unknown.ids == ()
    assert tok.wrap([1, 1]).ids == (1, 1)
    assert tok.vocab_size == 4
    assert tok.max_tokens == NO_LIMIT
    long = tok.encode(["cat " * 10_000])[0]
    assert len(long.ids) == 10_000
    assert not long.truncated
