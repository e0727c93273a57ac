"""Tiny embeddings servers on 127.0.0.1, each correct but for at most one deliberate defect.

They speak both dialects well enough for the property and robustness suites: POST
/v1/embeddings and /api/embed (float and base64, `dimensions`, token ids from a 100 000-word
vocabulary, the two dialects' empty-input rules), GET /v1/models and GET /. Vectors come from a
hash of the text (8 components), so no model is needed and batches cannot leak.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = ["DEFECTS", "DIMENSIONS", "Defect", "serve"]

Defect = Literal["none", "unnormalised", "500-on-empty", "reordered", "ignores-dimensions"]
DEFECTS: tuple[Defect, ...] = ("unnormalised", "500-on-empty", "reordered", "ignores-dimensions")
DIMENSIONS = 8
_VOCABULARY = 100_000
_MODEL = "fake"

Vectors = npt.NDArray[np.float32]


class _BadRequestError(Exception):
    """A client error: answered 400 in the dialect's envelope."""


def _vector(text: str) -> Vectors:
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    return np.frombuffer(digest, dtype=np.uint8)[:DIMENSIONS].astype(np.float32) - 127.5


def _unit(rows: Vectors) -> Vectors:
    normalised: Vectors = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return normalised


def _token_text(ids: object) -> str:
    """Token ids, read back as text: ids outside the vocabulary are a client error."""
    if not isinstance(ids, list) or not ids:
        raise _BadRequestError("invalid input")
    if not all(type(i) is int and 0 <= i < _VOCABULARY for i in ids):
        raise _BadRequestError("token id outside the vocabulary")
    return " ".join(f"t{i}" for i in ids)


def _openai_texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise _BadRequestError("invalid input")
    if all(isinstance(v, str) for v in value):
        return list(value)
    if all(type(v) is int for v in value):
        return [_token_text(value)]
    if all(isinstance(v, list) for v in value):
        return [_token_text(v) for v in value]
    raise _BadRequestError("invalid input")


def _ollama_texts(value: object) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise _BadRequestError("invalid input type")


class _Handler(BaseHTTPRequestHandler):
    defect: Defect = "none"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        return

    def _send(self, status: int, body: object) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        kind = "text/plain; charset=utf-8" if isinstance(body, str) else "application/json"
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/":
            self._send(200, "Ollama is running")
        elif self.path == "/v1/models":
            model = {"id": _MODEL, "object": "model", "created": 0, "owned_by": "test"}
            self._send(200, {"object": "list", "data": [model]})
        else:
            self._send(404, {"error": "404 page not found"})

    def do_POST(self) -> None:
        openai = self.path == "/v1/embeddings"
        if not openai and self.path != "/api/embed":
            self._send(404, {"error": "404 page not found"})
            return
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            body = self._json(raw)
            answer = self._openai(body) if openai else self._ollama(body)
        except _BadRequestError as exc:
            error = {"message": str(exc), "type": "invalid_request_error", "param": None}
            self._send(400, {"error": error | {"code": None}} if openai else {"error": str(exc)})
            return
        if answer is None:
            self._send(500, {"error": "internal error"})
            return
        self._send(200, answer)

    @staticmethod
    def _json(raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise _BadRequestError(f"malformed JSON: {type(exc).__name__}") from exc
        if not isinstance(body, dict):
            raise _BadRequestError("the body must be a JSON object")
        return body

    def _embed(self, texts: list[str], dimensions: object) -> Vectors | None:
        """The rows of `texts`, with this server's defect; None means it answers 500."""
        if self.defect == "500-on-empty" and (not texts or "" in texts):
            return None
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        rows = np.stack([_vector(t) for t in texts])
        normalise = self.defect != "unnormalised"
        rows = _unit(rows) if normalise else rows
        if self.defect == "reordered":
            rows = rows[::-1]
        honoured = self.defect != "ignores-dimensions"
        if honoured and type(dimensions) is int and 0 < dimensions < DIMENSIONS:
            rows = rows[:, :dimensions]
            rows = _unit(rows) if normalise else rows
        return rows

    def _openai(self, body: dict[str, Any]) -> dict[str, Any] | None:
        texts = _openai_texts(body.get("input"))  # [] is refused below, after the defect
        dimensions = body.get("dimensions")
        if dimensions is not None and (type(dimensions) is not int or dimensions < 1):
            raise _BadRequestError("dimensions must be a positive integer")
        rows = self._embed(texts, dimensions)
        if rows is None:
            return None
        if not texts:
            raise _BadRequestError("invalid input")
        b64 = body.get("encoding_format") == "base64"

        def encode(row: Vectors) -> object:
            return base64.b64encode(row.astype("<f4").tobytes()).decode() if b64 else row.tolist()

        tokens = sum(len(t.split()) + 2 for t in texts)
        return {
            "object": "list",
            "model": body.get("model"),
            "data": [
                {"object": "embedding", "index": i, "embedding": encode(row)}
                for i, row in enumerate(rows)
            ],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def _ollama(self, body: dict[str, Any]) -> dict[str, Any] | None:
        texts = _ollama_texts(body.get("input"))
        rows = self._embed(texts, body.get("dimensions"))
        if rows is None:
            return None
        return {"model": body.get("model"), "embeddings": rows.tolist()}


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the robustness suite opens 64 connections at once
    daemon_threads = True


@contextmanager
def serve(defect: Defect) -> Iterator[str]:
    """A server with `defect` on an ephemeral port of 127.0.0.1; yields its base URL."""
    handler = type("Handler", (_Handler,), {"defect": defect})
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
