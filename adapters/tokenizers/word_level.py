"""Word-level tokenizing for Word2Vec / GloVe: a text becomes the ids of its known words.

The rule (`words`): lower-case the text (GloVe-Twitter's vocabulary is uncased), read a typographic
apostrophe as "'", then take, left to right,
- GloVe-Twitter's markup tokens written out, such as "<user>", "<url>", "<hashtag>", whole;
- runs of letters, digits and "_", with inner apostrophes kept ("don't", "i'm"), as the
  vocabulary holds contractions as one word;
- every other non-space character alone: punctuation and emoji are words of their own there.
Whitespace only separates. This is our reading of how GloVe-Twitter's corpus was tokenized
(Stanford's Twitter preprocessing splits punctuation off words and keeps the markup tokens),
not a copy of another implementation: the library behind the server we model
(jkrukowski/swift-embeddings) could not be consulted for its own rule.

A word the vocabulary lacks is skipped; there are no special tokens, so `wrap` adds nothing.
max_tokens: a mean of word vectors has no context window, so nothing is ever cut; it reports
2**31 - 1 (the largest int32, readable by any client), and what bounds a request is the
service's own total-token ceiling. A token count is the number of known words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from adapters.weights.word_vectors import read_words
from domain.errors import ModelUnavailable
from domain.models import ModelSpec
from domain.ports import Encoded, Tokenizer

__all__ = ["NO_LIMIT", "WordLevelTokenizer", "load_word_level_tokenizer", "words"]

NO_LIMIT = 2**31 - 1

_SPACE = re.compile(r"\s")
_WORD = re.compile(r"<\w+>|\w+(?:'\w+)*|[^\w\s]")


def words(text: str) -> list[str]:
    """The words of `text` as the vocabulary spells them (see the module docstring)."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


class WordLevelTokenizer:
    def __init__(self, vocabulary: Sequence[str]) -> None:
        if not vocabulary:
            msg = "the vocabulary is empty"
            raise ValueError(msg)
        self._size = len(vocabulary)
        # a word listed twice keeps its first row
        self._index = {w: i for i, w in reversed(list(enumerate(vocabulary)))}

    @property
    def max_tokens(self) -> int:
        return NO_LIMIT

    @property
    def vocab_size(self) -> int:
        return self._size

    def ids(self, text: str, limit: int | None = None) -> list[int]:
        """The known words' ids, only the first `limit` + 1 of them read for a limit: the text
        is read in pieces that end at whitespace, which no word spans and after which lower
        case reads no further (Python's final sigma looks past case-ignorable characters, and no
        whitespace is one), so the pieces' words are the text's."""
        index = self._index
        if limit is None:
            return [index[w] for w in words(text) if w in index]
        found: list[int] = []
        start = 0
        size = 2 * (limit + 1)
        while start < len(text) and len(found) <= limit:
            space = _SPACE.search(text, start + size)
            end = len(text) if space is None else space.start()
            found += [index[w] for w in words(text[start:end]) if w in index]
            start, size = end, min(2 * size, 8 * (limit + 1))
        return found[: limit + 1]

    @property
    def prompts(self) -> Mapping[str, str]:
        return {}  # word vectors come with no sentence-transformers config

    def excluded_prompt_tokens(self, prompt: str) -> int:  # noqa: ARG002 - the port's signature
        return 0

    def encode(self, texts: Sequence[str], read: int | None = None) -> list[Encoded]:
        encoded = [self.wrap(self.ids(t, read)) for t in texts]
        if read is None:
            return encoded
        return [e if e.full_length <= read else replace(e, exact=False) for e in encoded]

    def wrap(self, ids: Sequence[int]) -> Encoded:
        return Encoded(ids=tuple(ids), full_length=len(ids))

    def text_ids(self, texts: Sequence[str], limit: int | None = None) -> list[tuple[int, ...]]:
        return [tuple(self.ids(t, limit)) for t in texts]

    def settled_ids(self, prefix: str, limit: int) -> tuple[int, ...] | None:
        """Words before the prefix's last whitespace are settled."""
        ids = self.ids(prefix[: max(_last_space(prefix), 0)], limit)
        return tuple(ids) if len(ids) > limit else None


def _last_space(text: str) -> int:
    """Where the last whitespace character of `text` is; -1 where it has none."""
    width = 64
    while True:
        start = max(0, len(text) - width)
        spaces = [m.start() for m in _SPACE.finditer(text, start)]
        if spaces:
            return spaces[-1]
        if start == 0:
            return -1
        width *= 4


def load_word_level_tokenizer(spec: ModelSpec, folder: Path) -> Tokenizer | ModelUnavailable:
    try:
        return WordLevelTokenizer(read_words(folder))
    except (OSError, ValueError, KeyError, UnicodeError) as exc:
        return ModelUnavailable(spec.qualified_name, f"word vocabulary: {exc}")
