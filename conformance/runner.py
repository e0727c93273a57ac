"""`python -m conformance`: run the suites against a server and print a readable report."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

from conformance.target import RERANK_ROUTES

__all__ = ["SUITES", "main"]

SUITES = ("smoke", "openai", "ollama", "schema", "properties", "robustness", "fidelity", "rerank")
_HERE = Path(__file__).parent / "suites"
_WORDS = {"passed": "PASS", "failed": "FAIL", "skipped": "N/A "}


@dataclass
class Check:
    suite: str
    name: str
    outcome: str  # passed, failed, skipped (not applicable)
    description: str
    detail: str = ""
    exchanges: list[object] = field(default_factory=list)
    measured: dict[str, object] = field(default_factory=dict)  # e.g. fidelity's max_abs_diff


class _Collector:
    """Collects one result per check from pytest's reports."""

    def __init__(self) -> None:
        self.checks: dict[str, Check] = {}
        self._docs: dict[str, str] = {}

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            doc = getattr(getattr(item, "function", None), "__doc__", None) or ""
            self._docs[item.nodeid] = " ".join(doc.split())

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" and not (report.failed or report.skipped):
            return
        suite = Path(report.fspath).stem.removeprefix("test_")
        name = report.nodeid.split("::", 1)[-1]
        detail = ""
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)  # the assertion's own message
            detail = crash.message if crash is not None else report.longreprtext.strip()
            for title, text in report.sections:
                if "exchanges" in title:
                    detail += "\n" + text
        elif report.skipped and isinstance(report.longrepr, tuple):
            detail = str(report.longrepr[2]).removeprefix("Skipped: ")
        properties = dict(report.user_properties)
        exchanges = properties.pop("exchanges", [])
        if report.when == "teardown" and report.nodeid in self.checks and not report.failed:
            return  # a teardown report must not overwrite the check's own result
        self.checks[report.nodeid] = Check(
            suite,
            name,
            report.outcome,
            self._docs.get(report.nodeid, ""),
            detail,
            list(exchanges) if isinstance(exchanges, list) else [],
            properties,
        )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m conformance",
        description="Check that an embeddings server speaks the OpenAI and/or Ollama API "
        "faithfully. Exit code 0 only when every selected check passes.",
    )
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:11434")
    parser.add_argument("--model", required=True, help="the model name to test with")
    parser.add_argument(
        "--dialect",
        choices=["openai", "ollama", "both", "rerank"],
        default="both",
        help="the embedding dialects, or `rerank` (the rerank suite; --model names a reranker)",
    )
    parser.add_argument(
        "--rerank-route",
        action="append",
        choices=RERANK_ROUTES,
        help="under --dialect rerank, a route the server serves (repeatable; default all three)",
    )
    parser.add_argument(
        "--reference", type=Path, help="local model folder for fidelity (a cross-encoder: rerank)"
    )
    parser.add_argument(
        "--openapi",
        type=Path,
        metavar="PATH",
        help="OpenAPI document for the schema suite (default: the checkout's, else the server's)",
    )
    parser.add_argument(
        "--suite", action="append", choices=SUITES, help="run only these suites (repeatable)"
    )
    parser.add_argument("--json", type=Path, help="also write the report here, as JSON")
    parser.add_argument("--request-timeout", type=float, default=120.0)
    return parser


def _print_report(checks: Sequence[Check]) -> None:
    for check in checks:
        measured = "  ".join(
            f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in check.measured.items()
        )
        line = f"{_WORDS.get(check.outcome, check.outcome)}  {check.suite:<11} {check.name}"
        print(f"{line}  {measured}".rstrip())  # noqa: T201
        if check.outcome == "failed":
            print(f"      {check.description}")  # noqa: T201
            for line in check.detail.splitlines():
                print(f"      {line}")  # noqa: T201
    counts = {o: sum(1 for c in checks if c.outcome == o) for o in _WORDS}
    print(  # noqa: T201
        f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} not applicable"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # a reranker cannot embed, nor an embedder rerank: the default suites follow the dialect
    rerank = args.dialect == "rerank"
    suites = args.suite or [s for s in SUITES if (s == "rerank") == rerank]
    paths = [str(_HERE / f"test_{s}.py") for s in suites if (_HERE / f"test_{s}.py").exists()]
    pytest_args = [
        *paths,
        "-c",
        str(_HERE / "conformance.ini"),
        "--rootdir",
        str(_HERE),
        "-p",
        "no:terminal",  # the report below replaces pytest's own output
        "-p",
        "no:asyncio",  # no check is async; spares its configuration warning
        "--base-url",
        args.base_url,
        "--model",
        args.model,
        "--dialect",
        args.dialect,
        "--request-timeout",
        str(args.request_timeout),
    ]
    if args.reference:
        pytest_args += ["--reference", str(args.reference)]
    if args.openapi:
        pytest_args += ["--openapi", str(args.openapi)]
    for route in args.rerank_route or ():
        pytest_args += ["--rerank-route", route]
    collector = _Collector()
    code = pytest.main(pytest_args, plugins=[collector])
    checks = list(collector.checks.values())
    _print_report(checks)
    if args.json:
        args.json.write_text(json.dumps([asdict(c) for c in checks], indent=2), encoding="utf-8")
    failed = any(c.outcome == "failed" for c in checks)
    return (
        1 if failed or code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED) else 0
    )


if __name__ == "__main__":
    sys.exit(main())
