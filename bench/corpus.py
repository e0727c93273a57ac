"""The benchmark's texts: varied, realistic, and the same on every run with the same Python.

Built from text that is on any machine with this Python: docstrings, comments and code lines of
the standard library's own source, the CJK prose its test suite keeps (test/cjkencodings), URLs
made from its module and function names, and the hostile/varied texts the parity tests share
(tests/corpus.py). Lengths run from 1 to 300 words, most short, some long (past the 256-token
limit of all-MiniLM-L6-v2), as in real traffic. A fixed seed and sorted file lists make the
list deterministic; `fingerprint` names it, so two runs can be checked to have used the same.

    .venv/bin/python bench/corpus.py          # counts, length spread and the fingerprint
"""

from __future__ import annotations

import ast
import hashlib
import random
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SEED", "corpus", "fingerprint", "words"]

SEED = 20_240_611
_ROOT = Path(__file__).resolve().parent.parent
_MAX_WORDS = 300
_FILE_STRIDE = 3  # every third source file is variety enough, and reads in a second or two
# what share of the corpus each kind of text makes up
_KINDS: tuple[tuple[str, float], ...] = (
    ("prose", 0.40),  # docstrings: English technical prose
    ("query", 0.12),  # a docstring's first sentence: short, question-sized
    ("code", 0.16),  # consecutive source lines
    ("comment", 0.08),  # consecutive comment lines
    ("multilingual", 0.10),  # CJK prose and the parity tests' scripts
    ("url", 0.06),  # documentation URLs, paths, identifiers
    ("edge", 0.08),  # the parity tests' hostile and varied texts
)


@dataclass(slots=True)
class _Sources:
    docstrings: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    code: list[list[str]] = field(default_factory=list)  # one list of lines per file
    cjk: list[str] = field(default_factory=list)
    names: list[tuple[str, str]] = field(default_factory=list)  # (module, function)
    edge: list[str] = field(default_factory=list)


def words(text: str) -> int:
    """Words as people count them; a CJK character counts as half a word."""
    wide = sum(1 for ch in text if "\u3000" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af")
    return len(text.split()) + wide // 2


def _stdlib_files() -> list[Path]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "test", "tests", "idlelib", "lib2to3", "turtledemo", "__pycache__"}
    found = [
        p
        for p in stdlib.rglob("*.py")
        if not skip.intersection(p.relative_to(stdlib).parts) and p.stat().st_size < 400_000
    ]
    found.sort(key=lambda p: p.relative_to(stdlib).as_posix())
    return found[::_FILE_STRIDE]


def _read_python(path: Path, into: _Sources) -> None:
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return
    module = path.stem
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node)
            if doc and len(doc.split()) >= 3:
                into.docstrings.append(" ".join(doc.split()))
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            into.names.append((module, node.name))
    lines = [line for line in source.splitlines() if line.strip()]
    if lines:
        into.code.append(lines)
    block: list[str] = []
    for line in lines:  # whole-line comments, consecutive ones joined into one text
        stripped = line.strip()
        if stripped.startswith("#") and len(stripped) > 3:
            block.append(stripped.lstrip("#! "))
        elif block:
            into.comments.append(" ".join(block))
            block = []


def _read_cjk(into: _Sources) -> None:
    folder = Path(sysconfig.get_paths()["stdlib"]) / "test" / "cjkencodings"
    for path in sorted(folder.glob("*-utf8.txt")):
        text = path.read_text(encoding="utf-8", errors="replace")
        into.cjk.extend(p.strip() for p in text.split("\n\n") if p.strip())


def _read_edge(into: _Sources) -> None:
    sys.path.insert(0, str(_ROOT))
    try:
        from tests.corpus import VARIED_TEXTS
    except ImportError:  # a checkout without the tests: the other kinds carry the corpus
        return
    finally:
        sys.path.remove(str(_ROOT))
    into.edge.extend(t for t in VARIED_TEXTS if 1 <= words(t) <= _MAX_WORDS)


def _sources() -> _Sources:
    found = _Sources()
    for path in _stdlib_files():
        _read_python(path, found)
    _read_cjk(found)
    _read_edge(found)
    found.cjk = list(dict.fromkeys(found.cjk))
    found.docstrings = list(dict.fromkeys(found.docstrings))
    found.comments = list(dict.fromkeys(found.comments))
    return found


def _length(rng: random.Random) -> int:
    """Log-normal words (median ~27, a long tail), cut to 1..300."""
    return max(1, min(_MAX_WORDS, round(rng.lognormvariate(3.3, 1.1))))


def _cut(text: str, n: int) -> str:
    return " ".join(text.split()[:n])


def _joined(pool: list[str], rng: random.Random, n: int, sep: str = " ") -> str:
    """Consecutive items of `pool` from a random start, until about n words."""
    start = rng.randrange(len(pool))
    parts: list[str] = []
    total = 0
    for k in range(len(pool)):
        piece = pool[(start + k) % len(pool)]
        parts.append(piece)
        total += words(piece)
        if total >= n:
            break
    return _cut(sep.join(parts), n) if sep == " " else sep.join(parts)


def _code(src: _Sources, rng: random.Random, n: int) -> str:
    lines = rng.choice(src.code)
    start = rng.randrange(len(lines))
    taken: list[str] = []
    total = 0
    for line in lines[start:]:
        room = n - total
        if room <= 0:
            break
        cut = line if len(line.split()) <= room else _cut(line, room)
        taken.append(cut)
        total += len(cut.split())
    return "\n".join(taken) or lines[start]


def _multilingual(src: _Sources, rng: random.Random, n: int) -> str:
    if rng.random() < 0.5 or not src.edge:
        paragraph = rng.choice(src.cjk)
        return paragraph[: max(2, 2 * n)]  # two CJK characters to a word
    scripts = [t for t in src.edge if any(ord(ch) > 0x2FF for ch in t)]
    return _joined(scripts, rng, min(n, 40))


def _url(src: _Sources, rng: random.Random) -> str:
    module, name = rng.choice(src.names)
    forms = (
        f"https://docs.python.org/3/library/{module}.html#{module}.{name}",
        f"https://github.com/python/cpython/blob/3.11/Lib/{module}.py",
        f"{module}.{name}()",
        f"/usr/lib/python3/{module}/{name}.py",
        f"How do I use {module}.{name}?",
    )
    return rng.choice(forms)


def _one(kind: str, src: _Sources, rng: random.Random) -> str:  # noqa: PLR0911 - one per kind
    n = _length(rng)
    match kind:
        case "prose":
            return _joined(src.docstrings, rng, n)
        case "query":
            first = rng.choice(src.docstrings).split(". ")[0]
            return _cut(first, min(n, 16))
        case "code":
            return _code(src, rng, n)
        case "comment":
            return _joined(src.comments, rng, n)
        case "multilingual":
            return _multilingual(src, rng, n)
        case "url":
            return _url(src, rng)
        case _:
            return rng.choice(src.edge) if src.edge else rng.choice(src.docstrings)


def corpus(n: int = 1536, seed: int = SEED) -> list[str]:
    """`n` texts of every kind above, interleaved at random (not grouped by kind or length)."""
    src = _sources()
    rng = random.Random(seed)
    kinds = [k for k, _ in _KINDS]
    weights = [w for _, w in _KINDS]
    return [_one(rng.choices(kinds, weights)[0], src, rng) for _ in range(n)]


def fingerprint(texts: list[str]) -> str:
    return hashlib.sha256("\x1e".join(texts).encode("utf-8")).hexdigest()[:12]


def main() -> None:
    texts = corpus()
    lengths = sorted(words(t) for t in texts)
    print(f"{len(texts)} texts, fingerprint {fingerprint(texts)}")
    print(
        f"words: min {lengths[0]}, median {lengths[len(lengths) // 2]}, "
        f"mean {sum(lengths) / len(lengths):.1f}, max {lengths[-1]}"
    )
    print(f"over 200 words: {sum(1 for n in lengths if n > 200)}")


if __name__ == "__main__":
    main()
