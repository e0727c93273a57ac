# ruff: noqa: RUF001 - look-alike characters (fullwidth, Greek, mathematical letters) are the point
"""The shared list of hostile and varied texts every parity test embeds (STYLE.md section 7).

Hand-picked edge cases first, then deterministic combinations of them, so the list is the same
on every run and every machine. Lengths are in WordPiece tokens of the BERT uncased vocabulary:
some texts pass 128 (the generated models' limit), 256 (all-MiniLM-L6-v2's) and 512 (BERT's).
"""

from __future__ import annotations

import itertools

__all__ = ["EDGE_TEXTS", "LONG_TEXTS", "VARIED_TEXTS"]

EDGE_TEXTS: list[str] = [
    # empty, tiny, whitespace only
    "",
    "a",
    "Z",
    ".",
    "7",
    " ",
    "   ",
    "\n\t",
    "\r\n\r\n",
    "\u00a0\u2003\u3000",  # no-break, em and ideographic spaces
    # scripts: emoji, CJK, right-to-left, others
    "😀",
    "👩🏽‍💻 writes code 🚀🔥",
    "🇫🇷🇯🇵 flags and 👍🏿 skin tones",
    "你好，世界！",
    "東京は日本の首都です。",
    "한국어 문장입니다",
    "مرحبا بالعالم",
    "שלום עולם",
    "English mixed with العربية and עברית in one line",
    "Привет, как дела?",
    "Γειά σου Κόσμε",
    "ΟΔΟΣ ΣΟΦΟΣ ΚΑΙ ΛΟΓΟΣ",  # final sigma: lower-casing rules differ between libraries
    "नमस्ते दुनिया",
    "สวัสดีชาวโลก",
    "ქართული ენა",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕞𝕒𝕥𝕙 𝟙𝟚𝟛",
    "ﬁnancial ﬂow ﬀ",  # ligatures
    # accents, diacritics, composed vs decomposed
    "Café crème brûlée à la française",
    "Cafe\u0301 cre\u0300me",  # combining accents
    "naïve coöperation résumé Zürich Ærøskøbing",
    "Ångström İstanbul ß ẞ ǅ",
    "Z̴̡a̷l̶g̸o̵ ̴t̷e̶x̸t̵",
    # case
    "ALL CAPS SENTENCE HERE",
    "mIxEd CaSe TeXt",
    "camelCaseIdentifier and PascalCaseName",
    # zero-width and control characters
    "zero\u200bwidth\u200cjoiner\u200dhere",
    "\ufeffbyte order mark",
    "soft\u00adhyphen",
    "bell\x07 and null\x00 chars",
    "left\u202eright override",
    "line\u2028separator\u2029paragraph",
    # urls, emails, code, markup
    "https://example.com/path?query=1&other=two#fragment",
    "Contact me at someone.name+tag@example.co.uk!",
    "def f(x):\n    return x ** 2  # square",
    "SELECT * FROM users WHERE id = 42;",
    '{"key": [1, 2, 3], "nested": {"a": null}}',
    "<div class='x'>Hello &amp; welcome</div>",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "$ rm -rf /tmp/* && echo done",
    "C:\\Users\\name\\Documents\\file.txt",
    # numbers
    "3.14159 2.71828 1.41421",
    "1,234,567.89 and 1.234.567,89",
    "-42 +17 1e-10 0xFF 0b1010",
    "2024-01-15T10:30:00Z",
    "+1 (555) 123-4567",
    "$100 €200 £300 ¥400 ₹500",
    # punctuation
    "!!!!!!!!!!!!!!!!!!!!",
    "?!?!?!... --- ***",
    "'''\"\"\"```",
    "(((nested (parentheses) here)))",
    "a-b_c.d/e\\f|g",
    # repeated and ordinary prose
    "the the the the the the the the the the",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "Supercalifragilisticexpialidocious antidisestablishmentarianism",
    "The quick brown fox jumps over the lazy dog.",
    "How do I reset my password?",
    "Embeddings map text to vectors so that similar meanings lie close together.",
]

_SENTENCE = "The committee reviewed the proposal carefully and agreed to revisit it next quarter. "

LONG_TEXTS: list[str] = [
    _SENTENCE * 9,  # ~150 tokens: past 128
    _SENTENCE * 20,  # ~320 tokens: past 256
    "word " * 600,  # 600 tokens: past 512
    "🙂 " * 300,  # unknown-ish symbols, many tokens
    "token " * 255,  # 257 with [CLS]/[SEP]: one past 256
    "token " * 254,  # exactly 256 with [CLS]/[SEP]
    "token " * 126,  # exactly 128 with [CLS]/[SEP]
    "token " * 127,  # one past 128
    "数据" * 400,  # CJK: one token per character, 800 tokens
    "x" * 2000,  # one enormous word
    "\n".join(f"line {n}: value={n * n}" for n in range(120)),
]

_SHORT = ["", "hello", "🚀", "naïve", "数据", "x = 1", "مرحبا", "ALL CAPS", "   "]
_STYLES = ["{} {}", "{}\n{}", "{}{}", "{}, {}!", "  {}\t{}  "]


def _combinations() -> list[str]:
    """Pairs of short pieces joined in different ways: a fixed, order-stable product."""
    pairs = itertools.product(_SHORT, _SHORT[::-1])
    texts = []
    for n, (left, right) in enumerate(pairs):
        if n % 2:  # every other pair keeps the list to a reasonable size
            continue
        texts.append(_STYLES[n % len(_STYLES)].format(left, right))
    return texts


def _graded_lengths() -> list[str]:
    """Prose of many lengths, so length-bucketed batches differ in shape."""
    words = _SENTENCE.split()
    return [
        " ".join(itertools.islice(itertools.cycle(words), n))
        for n in (2, 3, 5, 8, 13, 21, 34, 55, 89)
    ]


# order-stable, without repeats
VARIED_TEXTS: list[str] = list(
    dict.fromkeys(EDGE_TEXTS + LONG_TEXTS + _combinations() + _graded_lengths())
)
