"""The benchmark's one table (printed, and written as markdown) and its one chart."""

from __future__ import annotations

import datetime as dt
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["Row", "cpu_model", "draw_chart", "environment", "markdown", "text_table"]

_HEADER = ("section", "measurement", "texts/s", "ratio", "p50 ms", "p99 ms", "value", "target")
_PACKAGES = (
    "embedserve",
    "numpy",
    "torch",
    "sentence-transformers",
    "onnxruntime",
    "openvino",
    "model2vec",
    "tokenizers",
    "litestar",
    "msgspec",
    "uvicorn",
    "granian",
    "httpx",
)


@dataclass(frozen=True, slots=True)
class Row:
    section: str  # in-process, HTTP, static, start, stack
    measurement: str
    texts_per_s: float | None = None
    ratio: float | None = None  # to sentence-transformers fp32 (static: to model2vec)
    p50_ms: float | None = None
    p99_ms: float | None = None
    value: str = ""  # what is not a rate: cosines, seconds, megabytes, microseconds
    target: str = ""  # the goal and whether this run met it
    note: str = ""


def _num(x: float | None, digits: int = 1) -> str:
    return "" if x is None else f"{x:,.{digits}f}"


def _cells(row: Row) -> tuple[str, ...]:
    ratio = "" if row.ratio is None else f"{row.ratio:.2f}x"
    measurement = f"{row.measurement} ({row.note})" if row.note else row.measurement
    return (
        row.section,
        measurement,
        _num(row.texts_per_s),
        ratio,
        _num(row.p50_ms),
        _num(row.p99_ms),
        row.value,
        row.target,
    )


def text_table(rows: Sequence[Row]) -> str:
    lines = [_HEADER, *(_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(_HEADER))]
    numeric = {2, 3, 4, 5}
    out = []
    for n, line in enumerate(lines):
        cells = [
            c.rjust(w) if i in numeric and n else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> str:
    """The flags that decide bf16 speed: native bf16 needs AVX-512 BF16 or AMX."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return "unknown"
    flags = next((ln for ln in text.splitlines() if ln.startswith("flags")), "").split()
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile")
    present = [f for f in wanted if f in flags]
    return ", ".join(present) or "none of avx2/avx512/amx"


def environment() -> list[str]:
    versions = []
    for name in _PACKAGES:
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"date: {now}",
        f"CPU: {cpu_model()}, {os.cpu_count()} cores; flags: {_cpu_flags()}",
        f"Python {platform.python_version()} on {platform.system()} {platform.release()}",
        "versions: " + ", ".join(versions),
    ]


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def markdown(rows: Sequence[Row], header_lines: Sequence[str], notes: Sequence[str]) -> str:
    out = ["# embedserve benchmark results", ""]
    out += [f"- {line}" for line in header_lines]
    out += ["", "| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
    out += ["| " + " | ".join(_md_escape(c) for c in _cells(r)) + " |" for r in rows]
    if notes:
        out += ["", *[f"- {n}" for n in notes]]
    return "\n".join(out) + "\n"


def draw_chart(rows: Sequence[Row], path: Path, title: str) -> None:
    """Every row with a ratio, as a horizontal bar; 1.0 marks the reference."""
    import matplotlib as mpl

    mpl.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r.ratio is not None]
    colours = {"in-process": "#4C72B0", "HTTP": "#DD8452", "static": "#55A868", "stack": "#8172B2"}
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(shown) + 1.6))
    labels = [f"{r.section}: {r.measurement}" for r in shown]
    values = [r.ratio or 0.0 for r in shown]
    ax.barh(range(len(shown)), values, color=[colours.get(r.section, "#937860") for r in shown])
    ax.set_yticks(range(len(shown)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", linewidth=0.8)
    for n, value in enumerate(values):
        ax.text(value, n, f" {value:.2f}x", va="center", fontsize=7)
    ax.set_xlabel("texts/s as a multiple of sentence-transformers fp32 (static rows: of model2vec)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
