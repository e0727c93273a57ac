"""What the response costs to write: JSON encodings of one answer of 32 x 384 float32 vectors.

The server's own path first (adapters.http.openai.from_domain, then msgspec, as Litestar
encodes it), then the alternatives: base64 (the /v1 `encoding_format`), one `tolist()` for the
whole matrix, the standard library's json, and orjson's native numpy output where orjson is
importable (it is not a dependency; the row says so when absent). Best of several timings each,
in microseconds per response, with the body's size.

    .venv/bin/python bench/serving_stack.py
"""

from __future__ import annotations

import base64
import json
import sys
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

__all__ = ["Encoding", "json_costs"]

_ROWS, _DIM = 32, 384
_NUMBER = 20
_REPEAT = 7


@dataclass(frozen=True, slots=True)
class Encoding:
    name: str
    microseconds: float | None  # per response; None: not measurable here
    size: int
    note: str = ""


def _vectors() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((_ROWS, _DIM)).astype(np.float32)
    unit: np.ndarray = x / np.linalg.norm(x, axis=1, keepdims=True)  # unit rows, as the model's
    return unit


def _server_paths(vectors: np.ndarray) -> dict[str, Callable[[], bytes]]:
    from adapters.http.ollama import EmbedResponse
    from adapters.http.openai import from_domain
    from domain.requests import EmbeddingResult

    result = EmbeddingResult("all-MiniLM-L6-v2:latest", vectors, (20,) * _ROWS, 0, 0, 1)
    encoder = msgspec.json.Encoder()

    def openai_float() -> bytes:
        return encoder.encode(from_domain(result, "all-MiniLM-L6-v2", "float"))

    def openai_base64() -> bytes:
        return encoder.encode(from_domain(result, "all-MiniLM-L6-v2", "base64"))

    def ollama() -> bytes:
        return encoder.encode(EmbedResponse("all-minilm", vectors.tolist(), 0, 0, 640))

    return {
        "/v1 float: row.tolist() per vector + msgspec (the server's path)": openai_float,
        "/v1 base64: b64(row.astype('<f4').tobytes()) + msgspec (the server's path)": (
            openai_base64
        ),
        "/api/embed: matrix.tolist() + msgspec (the server's path)": ollama,
    }


def _alternatives(vectors: np.ndarray) -> dict[str, Callable[[], bytes]]:
    encoder = msgspec.json.Encoder()
    rows = vectors.tolist()
    found: dict[str, Callable[[], bytes]] = {
        "matrix.tolist() alone (no encoding)": lambda: bytes(len(vectors.tolist()) * 0),
        "msgspec encode of ready lists alone (no tolist)": lambda: encoder.encode(rows),
        "stdlib json.dumps(matrix.tolist())": lambda: json.dumps(vectors.tolist()).encode(),
        "base64 of the whole matrix, one string": lambda: base64.b64encode(
            vectors.astype("<f4").tobytes()
        ),
    }
    try:
        import orjson  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return found
    option = orjson.OPT_SERIALIZE_NUMPY
    found["orjson OPT_SERIALIZE_NUMPY on the float32 matrix"] = lambda: orjson.dumps(
        {"embeddings": vectors}, option=option
    )
    return found


def json_costs() -> list[Encoding]:
    vectors = _vectors()
    out = []
    for name, encode in (_server_paths(vectors) | _alternatives(vectors)).items():
        size = len(encode())
        best = min(timeit.repeat(encode, number=_NUMBER, repeat=_REPEAT)) / _NUMBER
        out.append(Encoding(name, best * 1e6, size))
    try:
        import orjson  # type: ignore[import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        out.append(Encoding("orjson OPT_SERIALIZE_NUMPY", None, 0, "orjson not installed"))
    return out


def main() -> None:
    for e in json_costs():
        cost = "n/a" if e.microseconds is None else f"{e.microseconds:8.0f} us"
        print(f"{cost}  {e.size:7d} B  {e.name} {e.note}")


if __name__ == "__main__":
    main()
