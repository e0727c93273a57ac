"""`embedserve pull`, `list`, `rm` and `embed`: model management without a server, as Ollama's
CLI offers it. They read the same home folder as `serve`, and HF_ENDPOINT / HF_HUB_OFFLINE."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import urllib.error
import urllib.request
from typing import IO, TYPE_CHECKING

import numpy as np

from adapters.bootstrap import build_front_door
from adapters.cli.options import add_options
from adapters.observability import configure_logging
from adapters.settings import Settings
from application.front_door import FrontDoor, Pulled
from domain.errors import ModelNotFound, NotRemovable
from domain.models import ModelSpec
from domain.ports import FileProgress
from domain.requests import EmbeddingRequest, EmbeddingResult, Normalization

if TYPE_CHECKING:
    from domain.ops import Array

__all__ = ["add_commands", "run"]

_PS_TIMEOUT_S = 1.0  # `list` asks a running server what it has loaded; none answers fast
_BAR = 24
_SHOWN = 4  # vector components shown at each end
_KILO = 1000


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pull = commands.add_parser(
        "pull",
        help="download a model",
        description="Download a model (a catalogue name, one of Ollama's library names, or a "
        "Hugging Face repo id such as BAAI/bge-small-en-v1.5) into the home folder, with a "
        "progress bar per file. An interrupted pull continues where it stopped; the model "
        "appears only once whole. Honours HF_ENDPOINT and HF_HUB_OFFLINE.",
    )
    pull.add_argument(
        "model", help="a catalogue name, alias or repo id, e.g. all-minilm or BAAI/bge-m3"
    )
    add_options(pull, ["home"])

    listing = commands.add_parser(
        "list",
        aliases=["ls"],
        help="list downloaded models",
        description="The models on disk: name, family, dimensions, size, and whether a server "
        "running at --host/--port has them loaded (- when no server answers).",
    )
    listing.add_argument(
        "--all", action="store_true", help="the whole catalogue, not only what is on disk"
    )
    add_options(listing, ["home", "host", "port"])

    rm = commands.add_parser(
        "rm",
        help="remove downloaded models",
        description="Delete downloaded models from the home folder. A running server keeps a "
        "loaded copy in memory until it unloads it (DELETE /api/delete does both).",
    )
    rm.add_argument("models", nargs="+", metavar="model")
    add_options(rm, ["home"])

    embed = commands.add_parser(
        "embed",
        help="embed texts in process, without a server",
        description="Embed texts with a model (pulled first if it is not on disk). One text "
        "shows its vector; two or more show their cosine-similarity matrix.",
    )
    embed.add_argument("model")
    embed.add_argument("texts", nargs="+", metavar="text")
    embed.add_argument(
        "--show",
        choices=["auto", "vectors", "similarity", "json"],
        default="auto",
        help="vectors (shortened), the cosine-similarity matrix, or JSON with every component; "
        "auto: vectors for one text, the matrix for more",
    )
    embed.add_argument("--dimensions", type=int, default=None, help="Matryoshka: keep the first N")
    add_options(embed, ["engine", "home"])


def run(args: argparse.Namespace, settings: Settings) -> int:
    """`settings` hold what each command offers options for, and the Hub's variables."""
    configure_logging("console", level=logging.WARNING)  # stdout is for results
    if args.command == "embed":
        return _embed(settings, args.model, args.texts, args.show, args.dimensions)
    door = build_front_door(settings)  # nothing is loaded: rm deletes files only
    if args.command == "pull":
        return _pull(door, args.model, sys.stderr)
    if args.command == "rm":
        return max(_remove(door, name) for name in args.models)
    return _list(door, settings.host, settings.port, show_all=args.all)


# pull


def _size(n: float) -> str:
    """Decimal units, as Ollama's CLI writes sizes."""
    for unit in ("B", "KB", "MB"):
        if n < _KILO:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= _KILO
    return f"{n:.1f} GB"


class _Bars:
    """One bar per file on stderr: redrawn in place on a terminal; elsewhere (a log, a pipe) one
    line per file, once it is whole."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._live = out.isatty()

    def __call__(self, p: FileProgress) -> None:
        done = p.total > 0 and p.completed >= p.total
        if not self._live and not done:
            return
        fraction = p.completed / p.total if p.total else 1.0
        filled = round(fraction * _BAR)
        line = (
            f"pulling {p.file:<30.30} {fraction:4.0%} ▕{'█' * filled}{' ' * (_BAR - filled)}▏ "
            f"{_size(p.completed)}/{_size(p.total)}"
        )
        self._out.write(("\r" if self._live else "") + line + ("\n" if done else ""))
        self._out.flush()


def _pull(door: FrontDoor, name: str, out: IO[str]) -> int:
    spec = asyncio.run(door.find(name))
    if not isinstance(spec, ModelSpec):
        return _fail(spec.message)
    out.write("pulling manifest\n")
    pulled = door.pull(spec, _Bars(out))
    if not isinstance(pulled, Pulled):
        return _fail(pulled.message)
    if pulled.carried:
        out.write(f"{spec.qualified_name} comes with an installed package: nothing to download\n")
    else:
        out.write("verifying sha256 digest\nwriting manifest\n")
    out.write("success\n")
    return 0


# rm


def _remove(door: FrontDoor, name: str) -> int:
    removed = asyncio.run(door.delete(name))
    if isinstance(removed, ModelNotFound):
        return _fail(f"model '{name}' not found")
    if isinstance(removed, NotRemovable):
        return _fail(removed.message)
    sys.stdout.write(f"deleted '{name}'\n")
    return 0


# list


def _loaded_on_server(host: str, port: int) -> set[str] | None:
    """Names a running server has loaded (GET /api/ps); None when no server answers."""
    if host in {"0.0.0.0", "::", ""}:  # noqa: S104 - where a server listens, not where we bind
        host = "127.0.0.1"
    url = f"http://{host}:{port}/api/ps"
    try:
        with urllib.request.urlopen(url, timeout=_PS_TIMEOUT_S) as answer:
            models = json.loads(answer.read()).get("models", [])
    except (OSError, ValueError, AttributeError):
        return None
    return {str(m.get("model") or m.get("name")) for m in models if isinstance(m, dict)}


def _list(door: FrontDoor, host: str, port: int, *, show_all: bool) -> int:
    loaded = _loaded_on_server(host, port)
    rows = [("NAME", "FAMILY", "DIMENSIONS", "SIZE", "LOADED")]
    for spec, size in door.stored():
        if size is None and not show_all:
            continue
        is_loaded = "-" if loaded is None else "yes" if spec.qualified_name in loaded else "no"
        rows.append(
            (
                spec.qualified_name,
                spec.family.value,
                str(spec.dimensions),
                "-" if size is None else _size(size),
                is_loaded,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        sys.stdout.write(line.rstrip() + "\n")
    return 0


# embed


def _embed(settings: Settings, model: str, texts: list[str], show: str, dims: int | None) -> int:
    door = build_front_door(settings)
    request = EmbeddingRequest(
        model=model, inputs=texts, dimensions=dims, normalization=Normalization.ALWAYS
    )
    result = asyncio.run(door.embed(request))
    if not isinstance(result, EmbeddingResult):
        return _fail(result.message)
    vectors = result.vectors
    if show == "json":
        body = {"model": result.model, "embeddings": vectors.tolist()}
        sys.stdout.write(json.dumps(body) + "\n")
    elif show == "similarity" or (show == "auto" and len(texts) > 1):
        sys.stdout.write(_matrix(vectors, texts))
    else:
        for text, vector in zip(texts, vectors, strict=True):
            sys.stdout.write(f"{_shortened(vector)}  {len(vector)} dims  {text!r}\n")
    return 0


def _shortened(vector: Array) -> str:
    values = [f"{v:.4f}" for v in vector.tolist()]
    if len(values) > 2 * _SHOWN:
        values = [*values[:_SHOWN], "...", *values[-_SHOWN:]]
    return "[" + ", ".join(values) + "]"


def _matrix(vectors: Array, texts: list[str]) -> str:
    """Cosine similarities: the vectors have unit length, so a dot product each."""
    similarity = np.clip(vectors @ vectors.T, -1.0, 1.0)
    labels = [f"[{i}]" for i in range(len(texts))]
    width = max(6, *(len(label) for label in labels))
    lines = [" " * width + "".join(label.rjust(width + 2) for label in labels)]
    for label, row in zip(labels, similarity, strict=True):
        lines.append(label.ljust(width) + "".join(f"{v:.3f}".rjust(width + 2) for v in row))
    lines.extend(f"{label} {text}" for label, text in zip(labels, texts, strict=True))
    return "\n".join(lines) + "\n"


def _fail(message: str) -> int:
    sys.stderr.write(f"Error: {message}\n")
    return 1
