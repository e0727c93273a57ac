"""Schema suite: schemathesis drives every operation of the published OpenAPI document.

The document describes the two wire APIs, so any server that speaks them should satisfy it. It
is, in this order: the file given with `--openapi PATH`; `openapi/openapi.json` of the source
checkout this package runs from; the one the server serves at /openapi/openapi.json. With none
of them the suite is not applicable.

One check per operation. Each sends schema-valid and schema-violating requests (half of the valid
ones name the model under test, so real embeddings are computed; the others mostly name unknown
models) and requires: never a 5xx, only documented status codes, and documented content types,
headers and bodies. The number of examples is bounded and hypothesis is derandomised, so a run
is repeatable and takes well under a minute against a CPU server.

schemathesis' own pytest loaders do not fit: `from_fixture` breaks on pytest 9.2 (it writes the
item's former `_nodeid` attribute), and `schema.parametrize()` needs the document at import time,
before the command line is known. So each operation's strategy is driven by hypothesis here,
and `case.call_and_validate` runs schemathesis' checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conformance.target import RERANK_ROUTES, Target

MAX_EXAMPLES = 25  # per operation, valid and invalid requests together
_CHECKOUT_DOCUMENT = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
_SERVED_PATH = "/openapi/openapi.json"
_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    # no shrinking: each step is an HTTP round trip; the failing request is reported as found
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=list(HealthCheck),
)


_Operation = schemathesis.APIOperation[Any, Any, Any, Any]
_Case = schemathesis.Case[Any]


@dataclass
class _Document:
    schema: schemathesis.BaseSchema | None
    origin: str  # where the document came from, or why there is none
    unreadable: bool = False  # the document named by --openapi could not be read: a failure
    # "METHOD /path" -> the operation, or why schemathesis cannot generate requests for it
    operations: dict[str, _Operation | str] = field(default_factory=dict)


_DOCUMENT = pytest.StashKey[_Document]()


def _load(config: pytest.Config) -> _Document:
    """The document, by the order the module docstring gives."""
    explicit = config.getoption("--openapi", default=None)
    if explicit is not None:
        try:
            return _Document(schemathesis.openapi.from_path(explicit), str(explicit))
        except (OSError, ValueError, schemathesis.errors.LoaderError) as exc:
            return _Document(None, f"--openapi {explicit}: {exc}", unreadable=True)
    if _CHECKOUT_DOCUMENT.is_file():
        schema = schemathesis.openapi.from_path(_CHECKOUT_DOCUMENT)
        return _Document(schema, str(_CHECKOUT_DOCUMENT))
    base_url = config.getoption("--base-url", default=None)
    if not base_url:
        return _Document(None, "no --base-url given")
    url = f"{str(base_url).rstrip('/')}{_SERVED_PATH}"
    try:
        return _Document(schemathesis.openapi.from_url(url, timeout=10), url)
    except schemathesis.errors.LoaderError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return _Document(None, f"no --openapi, no source checkout, and {url}: {reason}")


def _document(config: pytest.Config) -> _Document:
    """Read once per session; every operation listed, broken definitions included."""
    if _DOCUMENT not in config.stash:
        document = _load(config)
        for result in document.schema.get_all_operations() if document.schema else []:
            if isinstance(result, Ok):
                operation = result.ok()
                document.operations[f"{operation.method.upper()} {operation.path}"] = operation
            else:
                error = result.err()
                label = f"{(error.method or '?').upper()} {error.path or '?'}"
                document.operations[label] = f"the document's definition is unusable: {error}"
        config.stash[_DOCUMENT] = document
    return config.stash[_DOCUMENT]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One check per operation of the document, marked with the dialect its path belongs to."""
    if "operation" not in metafunc.fixturenames:
        return
    labels = list(_document(metafunc.config).operations)
    params = [
        pytest.param(label, id=label, marks=pytest.mark.dialect(_dialect(label)))
        for label in labels
    ]
    metafunc.parametrize("operation", params or [pytest.param("", id="no-document")])


def _dialect(label: str) -> str:
    """A rerank route's operations need a reranker as --model: they run under --dialect rerank."""
    if label.split(" ", 1)[-1] in RERANK_ROUTES:
        return "rerank"
    return "openai" if " /v1/" in label else "ollama"


def test_every_response_conforms(
    operation: str, target: Target, request: pytest.FixtureRequest
) -> None:
    """Valid and invalid requests to the operation never get a 5xx; every answer has a
    documented status code, content type, headers and body."""
    document = _document(request.config)
    if document.unreadable:
        pytest.fail(document.origin)
    if document.schema is None:
        pytest.skip(f"not applicable: no OpenAPI document ({document.origin})")
    api_operation = document.operations[operation]
    if isinstance(api_operation, str):
        pytest.fail(api_operation)

    def with_model(case: _Case, rename: bool) -> _Case:  # noqa: FBT001 - a drawn flag
        if rename and isinstance(case.body, dict) and isinstance(case.body.get("model"), str):
            case.body["model"] = target.model
        return case

    valid = st.builds(
        with_model, api_operation.as_strategy(schemathesis.GenerationMode.POSITIVE), st.booleans()
    )
    invalid = api_operation.as_strategy(schemathesis.GenerationMode.NEGATIVE)

    @_SETTINGS
    @given(case=st.one_of(valid, invalid))
    def exchange(case: _Case) -> None:
        case.call_and_validate(base_url=target.base_url, checks=_CHECKS, timeout=target.timeout_s)

    try:
        exchange()
    except schemathesis.errors.FailureGroup as failures:
        # its message names each failed check, the answer, and a curl command that reproduces it
        pytest.fail(failures.message, pytrace=False)
