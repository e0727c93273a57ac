"""Models downloaded from the Hugging Face Hub into `<home>/Embeddings/<org>/<name>`.

A model folder appears whole or not at all. Files download into `.partial/<org>--<name>`, where
huggingface_hub keeps the files it finished between attempts; once every file the family needs
is there, the folder is renamed into place. So a killed download leaves no folder that looks like
a model, and the next attempt fetches only the files still missing (a half-fetched file starts
over: huggingface_hub 2.4.0 gives each attempt a temporary file of its own).

Which files: domain.families decides from the repo's file list, before any byte is fetched —
the family's own files and one weights file (model.safetensors, else pytorch_model.bin), never
the TensorFlow, Flax, Rust, ONNX or OpenVINO copies a repo also carries.
"""

from __future__ import annotations

import glob
import os
import shutil
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx2  # huggingface_hub's own HTTP client: connection failures arrive as its errors
from huggingface_hub import HfApi, is_offline_mode, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id  # type: ignore[attr-defined] # lazily exported

from domain.errors import ModelNotFound, ModelUnavailable
from domain.families import WEIGHTS, MissingWeights, files_to_fetch
from domain.models import ModelSpec

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["HubStore"]

_TRUTHY = frozenset({"1", "true", "yes", "on"})
_PARTIAL = ".partial"
_BOOKKEEPING = ".cache"  # huggingface_hub's local_dir metadata; no part of a model folder
# The model-info call has no timeout of its own: without one a silent endpoint hangs a request.
_METADATA_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class _Listing:
    commit: str  # what the revision points at now; the download is pinned to it
    files: frozenset[str]  # the repo files to fetch: exact paths (domain.families)


class HubStore:
    """A `ModelStore` over the Hub (or any endpoint that speaks its HTTP API)."""

    def __init__(
        self,
        root: Path,
        endpoint: str | None = None,
        *,
        offline: bool = False,
        token: str | None = None,
    ) -> None:
        self._root = root
        self._endpoint = endpoint
        self._offline = offline
        self._token = token
        # huggingface_hub reads HF_ENDPOINT once, at import: passing it here makes it stick.
        self._api = HfApi(endpoint=endpoint, token=token)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def locate(self, spec: ModelSpec) -> Path | None:
        folder = self._folder(spec)
        if folder is None or not folder.is_dir():
            return None
        candidates = WEIGHTS[spec.family]
        if candidates and not any((folder / name).is_file() for name in candidates):
            return None
        return folder

    def fetch(self, spec: ModelSpec) -> Path | ModelNotFound | ModelUnavailable:
        # One download per repo at a time: a second caller waits, then finds the folder.
        with self._lock(spec.repo_id):
            folder = self.locate(spec)
            if folder is not None:
                return folder
            if self._folder(spec) is None:
                return ModelNotFound(spec.qualified_name, f"{spec.repo_id!r} is not a repo id")
            if self._is_offline():
                return ModelUnavailable(
                    spec.qualified_name,
                    f"offline mode is on (HF_HUB_OFFLINE) and the model is not in {self._root}",
                )
            return self._download(spec)

    # steps of a download

    def _download(self, spec: ModelSpec) -> Path | ModelNotFound | ModelUnavailable:
        partial = self._root / _PARTIAL / spec.repo_id.replace("/", "--")
        try:
            listing = self._list(spec)
            if not isinstance(listing, _Listing):
                return listing
            # Pinned to the commit, so every file comes from one snapshot even if `main` moves.
            snapshot_download(
                spec.repo_id,
                revision=listing.commit,
                # exact paths: a name holding `*`, `?` or `[` must not match others
                allow_patterns=[glob.escape(name) for name in sorted(listing.files)],
                local_dir=partial,
                endpoint=self._endpoint,
                token=self._token,
            )
        except (httpx2.HTTPError, HFValidationError, OSError) as err:
            return _as_domain_error(spec, err)
        return self._publish(spec, partial, listing.files)

    def _list(self, spec: ModelSpec) -> _Listing | ModelUnavailable:
        info = self._api.model_info(
            spec.repo_id, revision=spec.revision, timeout=_METADATA_TIMEOUT_S
        )
        if info.sha is None:
            return ModelUnavailable(
                spec.qualified_name, "the Hub did not say which commit to fetch"
            )
        names = [sibling.rfilename for sibling in info.siblings or []]
        # Decided before any byte is fetched: one weights file, and only the files the family reads.
        files = files_to_fetch(spec.family, names)
        if isinstance(files, MissingWeights):
            return ModelUnavailable(
                spec.qualified_name,
                f"{spec.repo_id} has no weights file this server reads "
                f"(looked for {' or '.join(files.candidates)})",
            )
        if not files:
            return ModelUnavailable(
                spec.qualified_name,
                f"{spec.repo_id} has none of the files a {spec.family} model needs",
            )
        return _Listing(info.sha, files)

    def _publish(
        self, spec: ModelSpec, partial: Path, files: frozenset[str]
    ) -> Path | ModelUnavailable:
        # snapshot_download returns a half-filled local_dir when the Hub drops out mid-way.
        missing = sorted(name for name in files if not (partial / name).is_file())
        if missing:
            return ModelUnavailable(
                spec.qualified_name, f"the download stopped before {', '.join(missing[:3])}"
            )
        shutil.rmtree(partial / _BOOKKEEPING, ignore_errors=True)
        _prune(partial, files)
        final = self._root / spec.repo_id
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            partial.rename(final)  # atomic on one file system: whole, or not there at all
        except OSError as err:
            if self.locate(spec) is not None:  # another process put it there first
                shutil.rmtree(partial, ignore_errors=True)
                return final
            return ModelUnavailable(spec.qualified_name, f"could not move it into {final}: {err}")
        return final

    # small parts

    def _folder(self, spec: ModelSpec) -> Path | None:
        """Where the model lives; None for an id that could climb out of the root (`..`)."""
        try:
            validate_repo_id(spec.repo_id)
        except HFValidationError:
            return None
        return self._root / spec.repo_id

    def _is_offline(self) -> bool:
        env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUTHY
        return self._offline or env or is_offline_mode()

    def _lock(self, repo_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(repo_id, threading.Lock())


def _prune(folder: Path, keep: frozenset[str]) -> None:
    """Drop files an earlier attempt left that this snapshot does not need."""
    for path in sorted(folder.rglob("*"), reverse=True):  # children before their folders
        if path.is_dir():
            if not any(path.iterdir()):
                path.rmdir()
        elif path.relative_to(folder).as_posix() not in keep:
            path.unlink()


def _as_domain_error(spec: ModelSpec, err: Exception) -> ModelNotFound | ModelUnavailable:
    reason = _why_not_found(spec, err)
    if reason is not None:
        return ModelNotFound(spec.qualified_name, reason)
    return ModelUnavailable(spec.qualified_name, _why_unavailable(err))


def _why_not_found(spec: ModelSpec, err: Exception) -> str | None:
    match err:
        case GatedRepoError():  # before its parent class, RepositoryNotFoundError
            return f"{spec.repo_id} is gated: accept its terms on the Hub, then pass a token"
        case RepositoryNotFoundError():
            return f"the Hub has no repository {spec.repo_id} (or it is private)"
        case RevisionNotFoundError():
            return f"{spec.repo_id} has no revision {spec.revision!r}"
        case HFValidationError():
            return f"{spec.repo_id!r} is not a repo id"
        case _:
            return None


def _why_unavailable(err: Exception) -> str:
    match err:
        case OfflineModeIsEnabled():
            return "offline mode is on (HF_HUB_OFFLINE)"
        case HfHubHTTPError(response=response):
            return f"the Hub answered HTTP {response.status_code}"
        case _:
            return f"download failed: {type(err).__name__}: {_first_line(err)}"


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return lines[0] if lines else ""
