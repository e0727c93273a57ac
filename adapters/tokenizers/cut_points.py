"""Where a text may be cut without changing its tokens, read from a tokenizer.json's pipeline.

A position i is a cut point when the text's ids are the ids of text[:i] followed by those of
text[i:], whatever surrounds it: T(s) = T(s[:i]) + T(s[i:]). Then the first n ids of s[:i] are the
first n ids of s whenever s[:i] has n of them, so a long text is tokenized only up to a cut point
past enough characters (and further, doubling, when normalisation collapsed what it held).

Every stage of the pipeline must keep a cut point one; this module knows which do and why, and
answers None (read texts whole) for a pipeline holding anything else:
- normalizers that map characters one at a time or by grapheme: BertNormalizer (clean_text,
  CJK spacing, accents, lower case), Lowercase, StripAccents, NF(K)D (decomposition, and the
  canonical reordering that never crosses a starter), NF(K)C (no ASCII character composes with
  what precedes it), Precompiled (SentencePiece's charsmap, applied per grapheme: the cut must
  start a grapheme, hence no Prepend character before it and no mark after it), and Replace of a
  whitespace run by one space (CLIP's `\\s+`, XLM-RoBERTa's ` {2,}`), which the rule below keeps
  whole on the right by asking for a non-space before the cut;
- a first pre-tokenizer that splits at a space whatever surrounds it: WhitespaceSplit, Whitespace,
  BertPreTokenizer, ByteLevel with its GPT-2 regex (whose `\\s+(?!\\S)` looks ahead: hence the
  non-space before the cut; add_prefix_space adds nothing to a part that starts with a space),
  Metaspace with split (its "first" prepend scheme tests for the start of the text, and a part
  that starts with a space already starts with its replacement), CLIP's Split; later ones
  (Punctuation, Digits, and those) only split the parts further;
- models that tokenize each pre-token alone: WordPiece (its [UNK] for a word past
  max_input_chars_per_word is decided by the word, which ends at the cut in both), BPE, Unigram,
  WordLevel;
- added tokens: none may hold a cut character past its first (it would be split), nor swallow
  the space after it (rstrip); one that swallows the space before it (lstrip) swallows only the
  run that starts at the cut, on the right in both.
The rule: cut before an ASCII space that follows a non-space. A BERT pipeline (BertPreTokenizer
alone, which isolates every ASCII punctuation character, and character-wise normalizers) may
also cut before ASCII punctuation: `"!" * 15_000_000` then has a cut point at every character.

Model2Vec and Static models read tokenizer.json the same way; the word-level tokenizer has its
own, simpler rule (adapters/tokenizers/word_level.py).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["CutPoints", "cut_points"]

# Grapheme_Cluster_Break=Prepend (Unicode 15): such a character joins the one after it, a space too
_PREPEND = (
    "\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\u0d4e\U000110bd\U000110cd\U000111c2\U000111c3"
    "\U0001193f\U00011941\U00011a3a\U00011a84-\U00011a89\U00011d46\U00011f02"
)
_SPACE = re.compile(rf"(?<=[^\s{_PREPEND}]) ")
_ASCII_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
_CHARACTER_WISE = frozenset(
    {"BertNormalizer", "Lowercase", "StripAccents", "NFC", "NFD", "NFKC", "NFKD"}
)
_WHITESPACE_RUNS = frozenset({r"\s+", " {2,}", " +"})
_SPLITS_AT_SPACE = frozenset({"WhitespaceSplit", "Whitespace", "BertPreTokenizer"})
_SPLITS_FURTHER = frozenset(
    {"WhitespaceSplit", "Whitespace", "BertPreTokenizer", "Punctuation", "Digits"}
)
_PER_WORD_MODELS = frozenset({"WordPiece", "BPE", "Unigram", "WordLevel"})
_CLIP_SPLIT = (
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"
)
# a mark or joiner after the space would join it into one grapheme (Precompiled maps graphemes)
_JOINS_BEFORE = frozenset({"Mn", "Mc", "Me"})
_JOINERS = frozenset("\u200c\u200d\uff9e\uff9f")
_MAX_SKIPPED = 4096  # cut candidates rejected for a following mark before the text is read whole


class CutPoints:
    """Finds cut points (see the module docstring) with one compiled rule."""

    def __init__(self, pattern: re.Pattern[str], *, graphemes: bool) -> None:
        self._pattern = pattern
        self._graphemes = graphemes  # Precompiled: a cut must also not be followed by a mark

    def _starts_grapheme(self, text: str, i: int) -> bool:
        if not self._graphemes:
            return True
        after = text[i + 1 : i + 2]
        return not after or (
            after not in _JOINERS
            and unicodedata.category(after) not in _JOINS_BEFORE
            and not "\U0001f3fb" <= after <= "\U0001f3ff"
            and not "\U000e0020" <= after <= "\U000e007f"
        )

    def after(self, text: str, start: int) -> int:
        """The first cut point at or past `start`; len(text) where there is none."""
        pos = start
        for _ in range(_MAX_SKIPPED):
            found = self._pattern.search(text, pos)
            if found is None:
                return len(text)
            i = found.start()
            if self._starts_grapheme(text, i):
                return i
            pos = i + 1
        return len(text)

    def before(self, text: str, end: int) -> int:
        """The last cut point at or before `end`; 0 where there is none."""
        width = 256
        while True:
            start = max(0, end - width)
            found = [
                m.start()
                for m in self._pattern.finditer(text, start, end + 1)
                if self._starts_grapheme(text, m.start())
            ]
            if found:
                return found[-1]
            if start == 0:
                return 0
            width *= 4

    def last(self, prefix: str) -> int:
        """The last cut point that `prefix` settles whatever follows it: the characters the rule
        reads around it all inside `prefix`; 0 where there is none."""
        return self.before(prefix, len(prefix) - (2 if self._graphemes else 1))


def _normalizers(config: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    if config is None:
        return []
    if config.get("type") == "Sequence":
        return list(config["normalizers"])
    return [config]


def _normalizer_keeps_cuts(config: Mapping[str, Any]) -> bool:
    kind = config.get("type")
    if kind in _CHARACTER_WISE or kind == "Precompiled":
        return True
    if kind == "Replace":
        pattern = config.get("pattern", {})
        return config.get("content") == " " and pattern.get("Regex") in _WHITESPACE_RUNS
    return False


def _splits_at_space(config: Mapping[str, Any], *, first: bool) -> bool:
    kind = config.get("type")
    if kind in (_SPLITS_AT_SPACE if first else _SPLITS_FURTHER):
        return True
    if kind == "ByteLevel":
        return bool(config.get("use_regex", True))
    if kind == "Metaspace":
        # a later Metaspace's "first" scheme would see a part start where the whole has none
        scheme_ok = first or config.get("prepend_scheme") != "first"
        return bool(config.get("split", True)) and scheme_ok
    if kind == "Split":
        pattern = config.get("pattern", {})
        return (
            pattern.get("Regex") == _CLIP_SPLIT
            and config.get("behavior") == "Removed"
            and bool(config.get("invert"))
        )
    return False


def _pre_tokenizers(config: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    if config is None:
        return []
    if config.get("type") == "Sequence":
        return list(config["pretokenizers"])
    return [config]


def _held_past_first(added: Sequence[Mapping[str, Any]]) -> set[str]:
    return {c for token in added for c in str(token.get("content", ""))[1:]}


def _keeps_cuts(pipeline: Mapping[str, Any]) -> bool:
    """Whether every stage of the pipeline keeps a cut before a space one (module docstring)."""
    normalizers = _normalizers(pipeline.get("normalizer"))
    stages = _pre_tokenizers(pipeline.get("pre_tokenizer"))
    added = pipeline.get("added_tokens") or []
    return (
        pipeline.get("model", {}).get("type") in _PER_WORD_MODELS
        and all(_normalizer_keeps_cuts(n) for n in normalizers)
        and bool(stages)
        and all(_splits_at_space(s, first=n == 0) for n, s in enumerate(stages))
        and not any(token.get("rstrip") for token in added)
    )


def cut_points(pipeline: Mapping[str, Any]) -> CutPoints | None:
    """The cut points of a tokenizer.json pipeline (its parsed JSON), or None where this module
    cannot show that any position is one."""
    if not _keeps_cuts(pipeline):
        return None
    normalizers = _normalizers(pipeline.get("normalizer"))
    stages = _pre_tokenizers(pipeline.get("pre_tokenizer"))
    held = _held_past_first(pipeline.get("added_tokens") or [])
    bert = (
        len(stages) == 1
        and stages[0].get("type") == "BertPreTokenizer"
        and all(n.get("type") in _CHARACTER_WISE for n in normalizers)
    )
    if bert:
        # BertPreTokenizer isolates each ASCII punctuation character and drops spaces
        cuts = "".join(c for c in " " + _ASCII_PUNCTUATION if c not in held)
        return CutPoints(re.compile(f"[{re.escape(cuts)}]"), graphemes=False)
    if " " in held:
        return None
    graphemes = any(n.get("type") == "Precompiled" for n in normalizers)
    return CutPoints(_SPACE, graphemes=graphemes)
