"""A built-in varied corpus for the fidelity suite: what real traffic throws at a server."""

from __future__ import annotations

__all__ = ["FIDELITY_TEXTS"]

_FIXED = [
    "",
    "a",
    "   ",
    "\n\t",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "Ein schneller brauner Fuchs springt über den faulen Hund.",
    "Le renard brun rapide saute par-dessus le chien paresseux.",
    "El rápido zorro marrón salta sobre el perro perezoso.",
    "Быстрая коричневая лиса прыгает через ленивую собаку.",
    "敏捷的棕色狐狸跳过了懒狗。",
    "素早い茶色の狐がのろまな犬を飛び越える。",
    "빠른 갈색 여우가 게으른 개를 뛰어넘는다.",
    "الثعلب البني السريع يقفز فوق الكلب الكسول",
    "השועל החום המהיר קופץ מעל הכלב העצלן",
    "तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर कूदती है।",
    "🙂🚀🔥 emoji only 👍🏽👩‍💻",
    "https://example.com/path?query=1&other=two#frag",
    "mailto:someone@example.org",
    "def add(a, b):\n    return a + b\n",
    "SELECT id, name FROM users WHERE age > 30 ORDER BY name;",
    '{"json": [1, 2, 3], "nested": {"key": "value"}}',
    "3.14159 2.71828 1.41421 6.02214076e23",
    "!!!??? ... --- ***",
    "naïve café résumé coöperate façade",
    "ALL CAPS SENTENCE FOR TESTING CASE",
    "zero\u200bwidth\u200bspaces",
    "tab\tseparated\tvalues",
    "<p>Hello <b>world</b> &amp; friends</p>",
    "# Title\n\n- item one\n- item two\n\n> quoted",
    "x = [i ** 2 for i in range(10)]  # squares",
    "Tokyo 東京 Москва القاهرة Αθήνα",
    "e\u0301 combining accent, and precomposed é",
    "+1 (555) 123-4567, 2024-01-01T12:00:00Z",
]
_TOPICS = ["weather", "football", "databases", "poetry", "cooking", "astronomy", "finance"]
_TEMPLATES = [
    "I would like to read more about {t}.",
    "What is the best introduction to {t} for beginners?",
    "{t} has changed a lot in the last ten years, according to experts.",
]
_LONG = [
    " ".join(["Embeddings turn text into vectors that capture its meaning."] * 30),
    " ".join(["词嵌入将文本转换为向量。"] * 80),
    " ".join(f"word{i}" for i in range(700)),
]


def _generated() -> list[str]:
    texts = [tpl.format(t=t) for t in _TOPICS for tpl in _TEMPLATES]
    texts += [f"{t} " * n for t in _TOPICS for n in (1, 7, 40)]
    texts += [f"Item {n}: {_TOPICS[n % len(_TOPICS)]} #{n * 37 % 101}" for n in range(30)]
    return texts


FIDELITY_TEXTS: list[str] = _FIXED + _generated() + _LONG
