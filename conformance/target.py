"""The server under test, and the HTTP exchanges a check made with it (for failure reports)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx
import httpx2

__all__ = ["DIALECTS", "RERANK_ROUTES", "Dialect", "Exchange", "Recorder", "Target"]

Dialect = Literal["openai", "ollama"]
DIALECTS: tuple[Dialect, ...] = ("openai", "ollama")
# TEI's, Jina's / Cohere v1's and Cohere v2's rerank routes (the rerank suite's `--dialect rerank`)
RERANK_ROUTES = ("/rerank", "/v1/rerank", "/v2/rerank")
_SHOWN = 600  # characters of a body kept in a failure report


@dataclass(frozen=True, slots=True)
class Target:
    base_url: str  # without a trailing slash, e.g. http://127.0.0.1:11434
    model: str
    dialects: tuple[Dialect, ...]  # empty under --dialect rerank
    reference: Path | None = None  # a local model folder for the fidelity and rerank suites
    timeout_s: float = 120.0
    rerank_routes: tuple[str, ...] = RERANK_ROUTES  # those the server serves, for the rerank suite

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"


def _clip(text: str) -> str:
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}… ({len(text)} characters)"


@dataclass(frozen=True, slots=True)
class Exchange:
    method: str
    url: str
    request_body: str
    status: int
    response_body: str

    def describe(self) -> str:
        return (
            f"{self.method} {self.url}\n  request:  {self.request_body}\n"
            f"  answer:   {self.status} {self.response_body}"
        )


@dataclass
class Recorder:
    """httpx event hooks that keep every exchange of the running check."""

    exchanges: list[Exchange] = field(default_factory=list)

    def on_response(self, response: httpx.Response | httpx2.Response) -> None:
        response.read()
        request = response.request
        body = request.content.decode("utf-8", errors="replace") if request.content else ""
        self.exchanges.append(
            Exchange(
                method=request.method,
                url=str(request.url),
                request_body=_clip(body),
                status=response.status_code,
                response_body=_clip(response.text),
            )
        )

    def as_json(self) -> list[dict[str, object]]:
        return [dataclasses.asdict(e) for e in self.exchanges]
