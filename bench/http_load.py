"""The HTTP load generator: concurrent keep-alive clients on 127.0.0.1, bounded in time and count.

One cell is (dialect, encoding, concurrency, batch): `concurrency` asyncio workers share one
httpx client and send the corpus in its own order, `batch` texts per request (a plain string
when 1), until the corpus is used up or the time budget is. Bodies are encoded before the clock
starts and answers are read but not parsed (the first of each cell is checked), so the client
costs as little as it can; its CPU time is still reported, since it shares the machine.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
from server_process import Server, cpu_seconds, embed_lines, loop_cpu_seconds

__all__ = ["Cell", "CellResult", "run_cell", "warm_up"]

_MODEL = {"openai": "all-MiniLM-L6-v2", "ollama": "all-minilm"}
_PATH = {"openai": "/v1/embeddings", "ollama": "/api/embed"}
_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Cell:
    dialect: str  # "openai" or "ollama"
    encoding: str  # "float" or "base64" on /v1; "" on /api/embed
    concurrency: int
    batch: int
    model: str = ""  # all-MiniLM-L6-v2 (in its dialect's name) when empty

    @property
    def label(self) -> str:
        wire = f"/v1 {self.encoding}" if self.dialect == "openai" else "/api/embed"
        return f"c{self.concurrency} b{self.batch} {wire}"


@dataclass(frozen=True, slots=True)
class CellResult:
    cell: Cell
    requests: int
    texts: int
    seconds: float
    latencies_ms: tuple[float, ...]
    errors: int
    server_cpu_s: float
    client_cpu_s: float
    server_ms: float | None  # mean of the access log's duration_ms: the handler's own time
    passes_per_request: float | None  # mean forward passes of the merged run each request joined
    server_loop_cpu_s: float = 0.0  # the server's main thread: its event loop

    @property
    def loop_cpu_ms_per_text(self) -> float:
        return self.server_loop_cpu_s * 1e3 / self.texts if self.texts else 0.0

    @property
    def texts_per_s(self) -> float:
        return self.texts / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_text(self) -> float:
        """The server's CPU time per text embedded (all its threads), the client's not counted."""
        return self.server_cpu_s * 1e3 / self.texts if self.texts else 0.0

    @property
    def mean_ms(self) -> float | None:
        return statistics.fmean(self.latencies_ms) if self.latencies_ms else None

    def percentile(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _body(cell: Cell, texts: Sequence[str]) -> bytes:
    payload: dict[str, object] = {
        "model": cell.model or _MODEL[cell.dialect],
        "input": texts[0] if cell.batch == 1 else list(texts),
    }
    if cell.dialect == "openai":
        payload["encoding_format"] = cell.encoding
    return json.dumps(payload).encode("utf-8")


def _bodies(cell: Cell, texts: Sequence[str]) -> list[tuple[bytes, int]]:
    chunks = [texts[n : n + cell.batch] for n in range(0, len(texts), cell.batch)]
    return [(_body(cell, chunk), len(chunk)) for chunk in chunks]


def _check(cell: Cell, answer: httpx.Response, expected: int) -> None:
    data = answer.json()
    got = len(data["data"]) if cell.dialect == "openai" else len(data["embeddings"])
    if got != expected:
        msg = f"{cell.label}: {got} vectors for {expected} inputs"
        raise RuntimeError(msg)


@dataclass(slots=True)
class _Drive:
    latencies_ms: list[float] = field(default_factory=list)
    texts: int = 0
    errors: int = 0
    seconds: float = 0.0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0
    server_loop_cpu_s: float = 0.0


async def _drive(
    server: Server, cell: Cell, bodies: list[tuple[bytes, int]], budget_s: float
) -> _Drive:
    """The cell's requests; times and CPU times cover the timed part only."""
    limits = httpx.Limits(
        max_connections=cell.concurrency, max_keepalive_connections=cell.concurrency
    )
    headers = {"content-type": "application/json"}
    out = _Drive()
    counts = {"next": 0}
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=_TIMEOUT_S) as client:
        first = await client.post(_PATH[cell.dialect], content=bodies[0][0], headers=headers)
        _check(cell, first, bodies[0][1])  # also opens one connection before the clock starts
        server_cpu, client_cpu = cpu_seconds(server.pid), time.process_time()
        server_loop_cpu = loop_cpu_seconds(server.pid)
        started = time.perf_counter()
        deadline = started + budget_s

        async def worker() -> None:
            while counts["next"] < len(bodies) and time.perf_counter() < deadline:
                body, n = bodies[counts["next"]]
                counts["next"] += 1
                sent = time.perf_counter()
                answer = await client.post(_PATH[cell.dialect], content=body, headers=headers)
                await answer.aread()
                out.latencies_ms.append((time.perf_counter() - sent) * 1e3)
                if answer.status_code == 200:
                    out.texts += n
                else:
                    out.errors += 1

        await asyncio.gather(*(worker() for _ in range(cell.concurrency)))
        out.seconds = time.perf_counter() - started
        out.server_cpu_s = cpu_seconds(server.pid) - server_cpu
        out.client_cpu_s = time.process_time() - client_cpu
        out.server_loop_cpu_s = loop_cpu_seconds(server.pid) - server_loop_cpu
    return out


def warm_up(server: Server, texts: Sequence[str], model: str = "") -> None:
    """The first request loads the model; a few more of each shape settle the runtime."""
    cell = Cell("openai", "float", 1, 32, model)
    with httpx.Client(base_url=server.url, timeout=_TIMEOUT_S * 3) as client:
        for n in range(2):
            for size in (1, 32):
                chunk = [texts[(n * 32 + k) % len(texts)] for k in range(size)]
                body = _body(Cell(cell.dialect, cell.encoding, 1, size, model), chunk)
                answer = client.post(
                    "/v1/embeddings", content=body, headers={"content-type": "application/json"}
                )
                answer.raise_for_status()


def run_cell(server: Server, texts: Sequence[str], cell: Cell, budget_s: float) -> CellResult:
    bodies = _bodies(cell, texts)
    log_from = server.log.stat().st_size
    drive = asyncio.run(_drive(server, cell, bodies, budget_s))
    time.sleep(0.05)  # the log line of the last answer is written just after it is sent
    # the first line is the untimed request's
    lines = [e for e in embed_lines(server.log, log_from) if e.get("status") == 200][1:]
    durations = [float(e["duration_ms"]) for e in lines if "duration_ms" in e]  # type: ignore[arg-type]
    passes = [float(e["batches"]) for e in lines if "batches" in e]  # type: ignore[arg-type]
    return CellResult(
        cell=cell,
        requests=len(drive.latencies_ms),
        texts=drive.texts,
        seconds=drive.seconds,
        latencies_ms=tuple(drive.latencies_ms),
        errors=drive.errors,
        server_cpu_s=drive.server_cpu_s,
        client_cpu_s=drive.client_cpu_s,
        server_ms=statistics.fmean(durations) if durations else None,
        passes_per_request=statistics.fmean(passes) if passes else None,
        server_loop_cpu_s=drive.server_loop_cpu_s,
    )
