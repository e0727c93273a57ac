"""What was decided about a repo-id model, kept in its folder: `.embedserve.json`.

A model asked for by repo id (`BAAI/bge-small-en-v1.5`) is described from its config files
(domain/repo_configs.py) before its weights are fetched; the spec goes into the download's partial
folder beside them, so it lands with the model in the one atomic rename and a restart (offline
too) finds the model under the name it was pulled by. Catalogue models have no such file: the
catalogue says what they are.

Read back defensively: a damaged or unreadable file counts as absent (with a warning), and the
model is described again from the configs in its folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import msgspec
import structlog

from domain.models import Family, ModelSpec, PoolingMode
from domain.repo_configs import CONFIG_FILES, MODULE_CONFIGS

__all__ = ["SPEC_FILE", "config_names", "read_configs", "read_spec", "write_spec"]

log = structlog.get_logger(__name__)

SPEC_FILE = ".embedserve.json"
_MAX_CONFIG_BYTES = 1 << 20  # a config file is a few kB; a larger one is no config


class _SavedSpec(msgspec.Struct, kw_only=True):
    """ModelSpec on disk; `version` lets a later layout tell an older one apart."""

    version: int = 1
    name: str
    repo_id: str
    family: Family
    dimensions: int
    max_tokens: int | None
    pooling: PoolingMode
    revision: str = "main"


_decode = msgspec.json.Decoder(_SavedSpec).decode
_encode = msgspec.json.Encoder().encode


def write_spec(folder: Path, spec: ModelSpec) -> None:
    saved = _SavedSpec(
        name=spec.name,
        repo_id=spec.repo_id,
        family=spec.family,
        dimensions=spec.dimensions,
        max_tokens=spec.max_tokens,
        pooling=spec.pooling,
        revision=spec.revision,
    )
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f"{SPEC_FILE}.tmp"
    temporary.write_bytes(_encode(saved))
    temporary.replace(folder / SPEC_FILE)


def read_spec(folder: Path) -> ModelSpec | None:
    """The spec saved in `folder`; None when there is none or it is damaged (logged)."""
    path = folder / SPEC_FILE
    if not path.is_file():
        return None
    try:
        saved = _decode(path.read_bytes())
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as err:
        log.warning("saved_spec_damaged", folder=folder.name, error=str(err))
        return None
    if saved.dimensions < 1:
        log.warning("saved_spec_damaged", folder=folder.name, error="dimensions below 1")
        return None
    return ModelSpec(
        saved.name,
        saved.repo_id,
        saved.family,
        saved.dimensions,
        saved.max_tokens,
        saved.pooling,
        revision=saved.revision,
    )


def config_names(repo_files: Iterable[str]) -> list[str]:
    """The repo's config files that domain.repo_configs reads, as exact paths."""
    return sorted(
        name
        for name in repo_files
        if name in CONFIG_FILES or any(fnmatchcase(name, p) for p in MODULE_CONFIGS)
    )


def read_configs(folder: Path, names: Iterable[str] | None = None) -> dict[str, Any]:
    """`{repo path: parsed JSON}` of the config files in `folder` (all it has, if `names` is
    None). A file that is absent, too large or not JSON is left out."""
    if names is None:
        found = (p.relative_to(folder).as_posix() for p in folder.rglob("*.json"))
        names = config_names(found)
    configs: dict[str, Any] = {}
    for name in names:
        path = folder / name
        try:
            if path.stat().st_size > _MAX_CONFIG_BYTES:
                continue
            configs[name] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
    return configs
