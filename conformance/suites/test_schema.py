"""Schema suite: schemathesis generates requests for every operation of the OpenAPI document.

The document is the one the server publishes at /openapi/openapi.json or, for a server that
publishes none, embedserve's own (openapi/openapi.json in a source checkout): it describes the
two wire APIs, so any server that speaks them should satisfy it. Each operation gets requests
that fit the document and requests that break it (wrong types, missing fields). Checks: no 5xx
ever, the content type and body of every documented response conform. Few examples per
operation and mode (derandomised), so a run takes seconds to a minute on a CPU server.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from conformance.target import Target

_CHECKOUT_DOCUMENT = Path(__file__).parents[2] / "openapi" / "openapi.json"


def _document(target: Target) -> dict[str, Any] | None:
    try:
        served = httpx.get(f"{target.base_url}/openapi/openapi.json", timeout=10)
    except httpx.HTTPError:
        served = None
    if served is not None and served.status_code == 200:
        document: dict[str, Any] = served.json()
        return document
    if _CHECKOUT_DOCUMENT.is_file():
        return dict(json.loads(_CHECKOUT_DOCUMENT.read_text(encoding="utf-8")))
    return None


@pytest.fixture(scope="module")
def api_schema(target: Target) -> Any:
    document = _document(target)
    if document is None:
        pytest.skip("not applicable: no OpenAPI document (server or source checkout)")
    return schemathesis.openapi.from_dict(document)


_SETTINGS = settings(
    max_examples=8,  # per operation and mode: 16 requests an operation
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each step is an HTTP call
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    database=None,
)


_CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance]


def _run_operation(operation: Any, mode: GenerationMode, target: Target) -> Callable[[], None]:
    """One hypothesis run over the operation's requests of one mode (valid, or made invalid)."""

    @_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        valid = mode is GenerationMode.POSITIVE
        if valid and isinstance(case.body, dict) and "model" in case.body:
            case.body["model"] = target.model  # a served model, so valid bodies really embed
        case.call_and_validate(base_url=target.base_url, checks=_CHECKS, timeout=target.timeout_s)

    return run


def test_no_operation_fails_on_the_server_side(api_schema: Any, target: Target) -> None:
    """For every operation, any request the schema allows (and many it does not) gets a 2xx or
    4xx whose content type and body conform to the document."""
    # schemathesis' pytest loader (from_fixture) breaks on pytest 9, so each operation's
    # strategy is driven here, one hypothesis run per operation and mode.
    failures: list[str] = []
    tried = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        openai_path = operation.path.startswith("/v1")
        if ("openai" if openai_path else "ollama") not in target.dialects:
            continue
        tried += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run = _run_operation(operation, mode, target)
            try:
                run()
            except Exception as exc:  # noqa: BLE001 - every operation and mode tried; all reported
                if isinstance(exc, Unsatisfiable) and mode is GenerationMode.NEGATIVE:
                    continue  # nothing in this operation can be made invalid (no body, no params)
                failures.append(f"{operation.method.upper()} {operation.path} ({mode}): {exc}")
    if tried == 0:
        pytest.skip("not applicable: no operation of the selected dialects in the document")
    assert not failures, "\n".join(failures)
