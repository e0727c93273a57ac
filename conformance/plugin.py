"""The pytest plugin behind the suites: command-line options, SDK clients, failure reports.

Registered through the `pytest11` entry point, so `pytest conformance/suites --base-url URL`
works wherever embedserve is installed; without --base-url every check is skipped as not
applicable, so the plugin is inert in other test runs.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import ollama
import openai
import pytest

from conformance.target import DIALECTS, RERANK_ROUTES, Dialect, Recorder, Target

__all__ = ["pytest_addoption"]

_GROUP = "conformance"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(_GROUP, "embeddings server conformance")
    group.addoption("--base-url", help="the server under test, e.g. http://127.0.0.1:11434")
    group.addoption("--model", default="all-minilm", help="the model name to test with")
    group.addoption(
        "--dialect",
        choices=["openai", "ollama", "both", "rerank"],
        default="both",
        help="which API the server claims to speak: the embedding dialects, or the rerank "
        "routes (then --model names a reranker)",
    )
    group.addoption(
        "--rerank-route",
        action="append",
        choices=RERANK_ROUTES,
        default=None,
        help="under --dialect rerank, a rerank route the server serves (repeatable; default all)",
    )
    group.addoption(
        "--reference",
        type=Path,
        default=None,
        help="a local model folder: the fidelity suite compares the server with "
        "sentence-transformers / model2vec run on it",
    )
    group.addoption("--request-timeout", type=float, default=120.0, help="seconds per request")
    group.addoption(
        "--openapi",
        type=Path,
        default=None,
        help="the OpenAPI document the schema suite checks the server against (default: "
        "openapi/openapi.json of a source checkout, else the server's /openapi/openapi.json)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "dialect(name): the check needs the server to speak that dialect"
    )


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    base_url = request.config.getoption("--base-url")
    if not base_url:
        pytest.skip("not applicable: no --base-url given")
    chosen = request.config.getoption("--dialect")
    dialects: tuple[Dialect, ...] = {"both": DIALECTS, "rerank": ()}.get(chosen, (chosen,))
    routes = request.config.getoption("--rerank-route") or RERANK_ROUTES
    return Target(
        base_url=str(base_url).rstrip("/"),
        model=request.config.getoption("--model"),
        dialects=dialects,
        reference=request.config.getoption("--reference"),
        timeout_s=request.config.getoption("--request-timeout"),
        rerank_routes=tuple(routes),
    )


@pytest.fixture(autouse=True)
def _only_selected_dialects(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("dialect")
    if marker is None or not request.config.getoption("--base-url"):
        return
    chosen = request.config.getoption("--dialect")
    # "both" is the two embedding dialects; the rerank checks need a reranker as --model
    if chosen != marker.args[0] and (chosen == "rerank" or marker.args[0] == "rerank"):
        pytest.skip(f"not applicable: the {marker.args[0]} dialect was not selected")
    if chosen not in ("both", marker.args[0]):
        pytest.skip(f"not applicable: the {marker.args[0]} dialect was not selected")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


def _hooks(recorder: Recorder) -> dict[str, list[Callable[..., Any]]]:
    return {"response": [recorder.on_response]}


@pytest.fixture
def http(target: Target, recorder: Recorder) -> Iterator[httpx.Client]:
    """Plain HTTP, for what no SDK sends (malformed bodies, HEAD /, /api/version)."""
    with httpx.Client(
        base_url=target.base_url, timeout=target.timeout_s, event_hooks=_hooks(recorder)
    ) as client:
        yield client


@pytest.fixture
def openai_client(target: Target, recorder: Recorder) -> Iterator[openai.OpenAI]:
    """The official SDK, retries off: a check must see the server's first answer."""
    # openai-python 3.x runs on httpx2, ollama-python on httpx: same API, two packages
    http_client = httpx2.Client(timeout=target.timeout_s, event_hooks=_hooks(recorder))
    with openai.OpenAI(
        base_url=target.openai_base_url,
        api_key="conformance",
        max_retries=0,
        http_client=http_client,
    ) as client:
        yield client


@pytest.fixture
def ollama_client(target: Target, recorder: Recorder) -> Iterator[ollama.Client]:
    with ollama.Client(
        host=target.base_url, timeout=target.timeout_s, event_hooks=_hooks(recorder)
    ) as client:
        yield client


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
    call: pytest.CallInfo[None],  # noqa: ARG001 - pytest passes hook arguments by name
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed check's report carries every request it made and what came back."""
    report = yield
    recorder = getattr(item, "funcargs", {}).get("recorder")
    if report.failed and isinstance(recorder, Recorder) and recorder.exchanges:
        text = "\n".join(e.describe() for e in recorder.exchanges[-3:])
        report.sections.append(("exchanges", text))
        report.user_properties.append(("exchanges", recorder.as_json()[-3:]))
    return report
