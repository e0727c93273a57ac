"""Tiny rerank servers on 127.0.0.1, each correct but for at most one deliberate defect.

They serve the three rerank routes the rerank suite checks: TEI's POST /rerank, Jina's / Cohere
v1's POST /v1/rerank, Cohere v2's POST /v2/rerank, with each route's error envelope. Scores come
from the `Scorer` given (a real CrossEncoder in the tests, so the fidelity checks can pass), one
call at a time: a fast tokenizer must not be shared between threads.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = ["DEFECTS", "Defect", "Scorer", "serve"]

Defect = Literal[
    "none",
    "unsorted",
    "ignores-top-n",
    "drops-documents",
    "wrong-envelope",
    "loses-a-document",
    "off-scores",
    "scores-as-strings",
    "refuses-document-objects",
]
DEFECTS: tuple[Defect, ...] = (
    "unsorted",
    "ignores-top-n",
    "drops-documents",
    "wrong-envelope",
    "loses-a-document",
    "off-scores",
    "scores-as-strings",
    "refuses-document-objects",
)
_MODEL = "fake-reranker"
_OFF = 1e-3  # a sloppy engine's error: ten times the suite's bound

Scores = npt.NDArray[np.float64]
# (query, documents) -> (activated scores, logits)
Scorer = Callable[[str, list[str]], tuple[Scores, Scores]]


class _RefusedError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _documents(value: object, *, objects: bool) -> list[str]:
    if not isinstance(value, list) or not value:
        raise _RefusedError(400, "documents must be a non-empty list")
    texts = []
    for item in value:
        if objects and isinstance(item, dict) and isinstance(item.get("text"), str):
            texts.append(item["text"])
        elif isinstance(item, str):
            texts.append(item)
        else:
            raise _RefusedError(400, "a document must be a string")
    return texts


class _Handler(BaseHTTPRequestHandler):
    defect: Defect = "none"
    scorer: Scorer
    lock: threading.Lock

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        return

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        if self.path not in ("/rerank", "/v1/rerank", "/v2/rerank"):
            self._send(404, {"error": "not found"})
            return
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            self._send(200, self._answer(json.loads(raw)))
        except _RefusedError as exc:
            self._send(exc.status, self._envelope(str(exc)))

    def _envelope(self, message: str) -> dict[str, Any]:
        if self.defect == "wrong-envelope":
            return {"detail": message}  # FastAPI's, which no client of these routes reads
        if self.path == "/rerank":
            return {"error": message, "error_type": "Validation"}
        return {"error": {"message": message, "type": "invalid_request_error"} | _NULLS}

    def _answer(self, body: dict[str, Any]) -> object:
        if not isinstance(body.get("query"), str):
            raise _RefusedError(400, "query is required")
        tei = self.path == "/rerank"
        if not tei and body.get("model") != _MODEL:
            raise _RefusedError(404, f"model {body.get('model')!r} not found")
        objects = self.path == "/v1/rerank" and self.defect != "refuses-document-objects"
        texts = _documents(body.get("texts" if tei else "documents"), objects=objects)
        ranked = self._ranked(body, texts)
        if tei:
            keep = body.get("return_text") and self.defect != "drops-documents"
            return [
                {"index": i, "score": s} | ({"text": texts[i]} if keep else {}) for i, s in ranked
            ]
        keep = body.get("return_documents") and self.defect != "drops-documents"
        results = [
            {"index": i, "relevance_score": s} | ({"document": {"text": texts[i]}} if keep else {})
            for i, s in ranked
        ]
        return {"id": "x", "model": _MODEL, "results": results, "usage": {"total_tokens": 7}}

    def _ranked(self, body: dict[str, Any], texts: list[str]) -> list[tuple[int, Any]]:
        """(index, score) rows with this server's defect, highest first unless it is
        `unsorted`."""
        with self.lock:
            scores, logits = self.scorer(body["query"], texts)
        values = logits if body.get("raw_scores") else scores
        if self.defect == "off-scores":
            values = values + _OFF
        order = (
            range(len(texts)) if self.defect == "unsorted" else np.argsort(-values, kind="stable")
        )
        rows: list[tuple[int, Any]] = [(int(i), float(values[i])) for i in order]
        if self.defect == "loses-a-document":
            rows = rows[:-1]
        if self.defect == "scores-as-strings":
            rows = [(i, repr(s)) for i, s in rows]
        top_n = body.get("top_n")
        if isinstance(top_n, int) and top_n >= 1 and self.defect != "ignores-top-n":
            rows = rows[:top_n]
        return rows


_NULLS = {"param": None, "code": None}


class _Server(ThreadingHTTPServer):
    daemon_threads = True


@contextmanager
def serve(defect: Defect, scorer: Scorer) -> Iterator[str]:
    """A rerank server with `defect` on an ephemeral port of 127.0.0.1; yields its base URL."""
    handler = type(
        "Handler", (_Handler,), {"defect": defect, "scorer": staticmethod(scorer), "lock": _LOCK}
    )
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


_LOCK = threading.Lock()  # one scorer call at a time, across every server of the process
