"""Tiny embeddings servers on 127.0.0.1, each correct but for one deliberate defect.

Vectors are made from a hash of the text (8 dimensions), so no model is needed; the harness
must catch each defect by the checks that concern it.
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

Defect = Literal["none", "unnormalised", "500-on-empty", "reordered", "ignores-dimensions"]
DIMENSIONS = 8


def _vector(text: str, *, normalise: bool) -> np.ndarray:
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    raw = np.frombuffer(digest, dtype=np.uint8)[:DIMENSIONS].astype(np.float32) - 127.5
    raw += np.float32(3.0)  # never all zero
    return raw / np.linalg.norm(raw) if normalise else raw


def _texts(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [" ".join(map(str, value))]
    if isinstance(value, list) and value and all(isinstance(v, list) and v for v in value):
        return [" ".join(map(str, v)) for v in value]
    return None


class _Handler(BaseHTTPRequestHandler):
    defect: Defect = "none"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        return

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/":
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        self._send(404, {"error": "404 page not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        try:
            body = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            self._send(
                400, {"error": {"message": "bad json", "type": "x", "param": None, "code": None}}
            )
            return
        if not isinstance(body, dict):
            self._send(400, {"error": "bad body"})
            return
        texts = _texts(body.get("input"))
        if texts is None:
            self._send(400, {"error": "invalid input"})
            return
        if self.defect == "500-on-empty" and "" in texts:
            self._send(500, {"error": "boom"})
            return
        vectors = self._embed(texts, body.get("dimensions"))
        if self.path == "/api/embed":
            self._send(200, {"model": body.get("model"), "embeddings": vectors.tolist()})
        else:
            self._send(200, self._openai(body, vectors, texts))

    def _embed(self, texts: list[str], dimensions: object) -> np.ndarray:
        normalise = self.defect != "unnormalised"
        vectors = np.stack([_vector(t, normalise=normalise) for t in texts])
        if self.defect == "reordered":
            vectors = vectors[::-1]
        honoured = self.defect != "ignores-dimensions"
        if honoured and isinstance(dimensions, int) and 0 < dimensions < DIMENSIONS:
            cut = vectors[:, :dimensions]
            vectors = cut / np.linalg.norm(cut, axis=1, keepdims=True)
        return vectors

    @staticmethod
    def _openai(body: dict[str, Any], vectors: np.ndarray, texts: list[str]) -> dict[str, Any]:
        b64 = body.get("encoding_format") == "base64"

        def encode(v: np.ndarray) -> object:
            return base64.b64encode(v.astype("<f4").tobytes()).decode() if b64 else v.tolist()

        tokens = sum(len(t.split()) + 2 for t in texts)
        return {
            "object": "list",
            "model": body.get("model"),
            "data": [
                {"object": "embedding", "index": i, "embedding": encode(v)}
                for i, v in enumerate(vectors)
            ],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


@contextmanager
def serve(defect: Defect) -> Iterator[str]:
    """A server with `defect` on an ephemeral port; yields its base URL."""
    handler = type("Handler", (_Handler,), {"defect": defect})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
