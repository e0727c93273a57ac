"""Models downloaded from the Hugging Face Hub into `<home>/Embeddings/<org>/<name>`.

A model folder appears whole or not at all. Files download into `.partial/<org>--<name>`: each
one grows in `.cache/<etag>.incomplete` and moves to its repo path once it is whole (and, where
the Hub names its content by sha256, once that checks out); once every file the family needs is
there, the folder is renamed into place. So a killed or broken download leaves no folder that
looks like a model, and the next attempt, in this process or another, fetches only what is
missing: finished files are kept, and a half-fetched file resumes with a Range request where it
stopped. (huggingface_hub 2.4.0 cannot do the last: it gives each attempt a temporary file of its
own and deletes it on failure, which is why the files are fetched here one by one.)

Which files: domain.families decides from the repo's file list, before any byte is fetched —
the family's own files and one weights file (model.safetensors, else pytorch_model.bin), never
the TensorFlow, Flax, Rust, ONNX or OpenVINO copies a repo also carries.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import threading
import uuid
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

import httpx2  # huggingface_hub's own HTTP client: connection failures arrive as its errors
from huggingface_hub import HfApi, get_hf_file_metadata, hf_hub_url, is_offline_mode
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    NotASafetensorsRepoError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
    SafetensorsParsingError,
)
from huggingface_hub.file_download import http_get
from huggingface_hub.utils import (  # type: ignore[attr-defined] # lazily exported
    WeakFileLock,
    build_hf_headers,
    validate_repo_id,
)

from adapters.stores.saved_specs import SPEC_FILE, config_names, read_configs, read_spec, write_spec
from adapters.weights.mapped_tensors import FLOAT32_BYTES, held_bytes
from domain.errors import ArchitectureNotSupported, ModelNotFound, ModelUnavailable
from domain.families import WEIGHTS, MissingWeights, files_to_fetch
from domain.models import ModelSpec
from domain.ports import FileProgress, OnProgress
from domain.repo_configs import describe_repo

__all__ = ["HubStore"]

_TRUTHY = frozenset({"1", "true", "yes", "on"})
_PARTIAL = ".partial"
_LOCKS = ".locks"
_BOOKKEEPING = ".cache"  # half-fetched files and the commit they belong to; no part of a model
_COMMIT = "commit"  # in _BOOKKEEPING: the snapshot the kept files come from
_SHA256 = re.compile(r"[0-9a-f]{64}")  # an ETag of this shape is the content's sha256 (Git LFS)
# The metadata calls have no timeout of their own: without one a silent endpoint hangs a request.
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

    def fetch(
        self, spec: ModelSpec, progress: OnProgress | None = None
    ) -> Path | ModelNotFound | ModelUnavailable:
        """The model's folder; `progress` hears about each file as it arrives."""
        if self._folder(spec) is None:
            return ModelNotFound(spec.qualified_name, f"{spec.repo_id!r} is not a repo id")
        # One download per repo at a time, in this process and across processes (a CLI pull
        # beside a server): a second caller waits, then finds the folder.
        with self._lock(spec.repo_id), self._file_lock(spec.repo_id):
            folder = self.locate(spec)
            if folder is not None:
                return folder
            if self._is_offline():
                return ModelUnavailable(
                    spec.qualified_name,
                    f"offline mode is on (HF_HUB_OFFLINE) and the model is not in {self._root}",
                )
            return self._download(spec, progress or _ignore)

    def held_bytes(self, spec: ModelSpec) -> int | None:
        """The weights' float32 size from their safetensors headers: the folder's, else the
        Hub's (a HEAD and two range requests per file, huggingface_hub's
        get_safetensors_metadata), so a model too large for this machine is refused before a
        byte of its weights is downloaded."""
        folder = self.locate(spec)
        if folder is not None:
            return held_bytes(folder)
        if self._folder(spec) is None or self._is_offline():
            return None
        try:
            meta = self._api.get_safetensors_metadata(
                spec.repo_id, revision=spec.revision, timeout=_METADATA_TIMEOUT_S
            )
        except (
            httpx2.HTTPError,
            HfHubHTTPError,
            HFValidationError,
            NotASafetensorsRepoError,  # a pickle-only repo: the size is known once downloaded
            SafetensorsParsingError,
            OSError,
        ):
            return None  # the download that follows reports what is wrong, if anything
        tensors = [t for f in meta.files_metadata.values() for t in f.tensors.values()]
        return FLOAT32_BYTES * sum(math.prod(t.shape) for t in tensors)

    def remove(self, spec: ModelSpec) -> bool:
        """Deletes the model folder; False when there is none. It never looks half-deleted:
        it is moved out of the way first, in one rename."""
        if self._folder(spec) is None:
            return False
        with self._lock(spec.repo_id), self._file_lock(spec.repo_id):
            folder = self.locate(spec)
            if folder is None:
                return False
            doomed = self._root / _PARTIAL / f"removing-{uuid.uuid4().hex}"
            # a folder copied in by hand has no download behind it, so no .partial yet
            doomed.parent.mkdir(parents=True, exist_ok=True)
            folder.rename(doomed)
            shutil.rmtree(doomed, ignore_errors=True)
            for parent in folder.parents:  # the org folder, once its last model is gone
                if parent == self._root or any(parent.iterdir()):
                    break
                parent.rmdir()
            return True

    # models named by repo id (domain.ports.RepoModels)

    def describe(
        self, name: str, repo_id: str, revision: str
    ) -> ModelSpec | ModelNotFound | ModelUnavailable | ArchitectureNotSupported:
        """What the repo is, from its config files alone: the folder's when it is on disk, else
        the Hub's, fetched into the partial folder that its download then goes on from."""
        folder = self._folder_of(repo_id)
        if folder is None:
            return ModelNotFound(name, f"{repo_id!r} is not a repo id")
        with self._lock(repo_id), self._file_lock(repo_id):
            if folder.is_dir():
                return read_spec(folder) or describe_repo(
                    name, repo_id, revision, read_configs(folder)
                )
            if self._is_offline():
                return ModelNotFound(
                    name, "offline mode is on (HF_HUB_OFFLINE) and it is not downloaded"
                )
            try:
                return self._describe_from_hub(name, repo_id, revision)
            except (httpx2.HTTPError, HFValidationError, OSError) as err:
                return _as_domain_error(name, repo_id, revision, err)

    def downloaded(self) -> list[ModelSpec]:
        """Every model on disk that was pulled by repo id (its folder holds a spec file)."""
        found: list[ModelSpec] = []
        for path in sorted(self._root.glob(f"*/*/{SPEC_FILE}")):
            folder = path.parent
            if folder.parent.name.startswith("."):  # .partial, .locks: no model yet
                continue
            repo_id = f"{folder.parent.name}/{folder.name}"
            spec = read_spec(folder) or describe_repo(
                repo_id, repo_id, "main", read_configs(folder)
            )
            if isinstance(spec, ModelSpec):
                found.append(spec)
        return found

    def _describe_from_hub(
        self, name: str, repo_id: str, revision: str
    ) -> ModelSpec | ModelUnavailable | ArchitectureNotSupported:
        info = self._api.model_info(repo_id, revision=revision, timeout=_METADATA_TIMEOUT_S)
        if info.sha is None:
            return ModelUnavailable(name, "the Hub did not say which commit to fetch")
        names = config_names(sibling.rfilename for sibling in info.siblings or [])
        partial = self._partial(repo_id)
        _keep_only_commit(partial, info.sha)
        for file in names:  # a few kB each; the weights wait until the repo is known to be ours
            failed = self._download_file(
                repo_id=repo_id,
                model=name,
                commit=info.sha,
                name=file,
                partial=partial,
                progress=_ignore,
            )
            if failed is not None:
                return failed
        described = describe_repo(name, repo_id, revision, read_configs(partial, names))
        if isinstance(described, ModelSpec):
            write_spec(partial, described)
        else:  # refused: nothing of it is kept
            shutil.rmtree(partial, ignore_errors=True)
        return described

    # steps of a download

    def _download(
        self, spec: ModelSpec, progress: OnProgress
    ) -> Path | ModelNotFound | ModelUnavailable:
        partial = self._partial(spec.repo_id)
        try:
            listing = self._list(spec)
            if not isinstance(listing, _Listing):
                return listing
            _keep_only_commit(partial, listing.commit)
            # Pinned to the commit, so every file comes from one snapshot even if `main` moves.
            for name in sorted(listing.files):
                failed = self._download_file(
                    repo_id=spec.repo_id,
                    model=spec.qualified_name,
                    commit=listing.commit,
                    name=name,
                    partial=partial,
                    progress=progress,
                )
                if failed is not None:
                    return failed
        except (httpx2.HTTPError, HFValidationError, OSError) as err:
            return _as_domain_error(spec.qualified_name, spec.repo_id, spec.revision, err)
        return self._publish(spec, partial, listing.files)

    def _download_file(  # noqa: PLR0913 - where from, where to, and who hears of it
        self,
        *,
        repo_id: str,
        model: str,
        commit: str,
        name: str,
        partial: Path,
        progress: OnProgress,
    ) -> ModelUnavailable | None:
        target = partial / name
        if target.is_file():  # finished by an earlier attempt
            size = target.stat().st_size
            progress(FileProgress(name, "", size, size))
            return None
        url = hf_hub_url(repo_id, name, revision=commit, endpoint=self._endpoint)
        headers = build_hf_headers(token=self._token)
        meta = get_hf_file_metadata(
            url, token=self._token, timeout=_METADATA_TIMEOUT_S, endpoint=self._endpoint
        )
        etag = meta.etag or hashlib.sha256(url.encode()).hexdigest()
        digest = f"sha256:{etag}" if _SHA256.fullmatch(etag) else etag
        if urlsplit(meta.location).netloc != urlsplit(url).netloc:
            headers.pop("authorization", None)  # a CDN is not the Hub: no token for it
        headers["Accept-Encoding"] = "identity"  # the bytes as stored, so sizes add up
        incomplete = partial / _BOOKKEEPING / f"{_file_name(etag)}.incomplete"
        incomplete.parent.mkdir(parents=True, exist_ok=True)
        kept = incomplete.stat().st_size if incomplete.is_file() else 0
        if meta.size is not None and kept > meta.size:  # not a prefix of this file: start over
            incomplete.unlink()
            kept = 0
        total = meta.size or 0
        with incomplete.open("ab") as sink:  # appends to what an earlier attempt kept
            http_get(
                meta.location,
                sink,
                resume_size=kept,
                headers=headers,
                expected_size=meta.size,
                displayed_filename=name,
                tqdm_class=_reporter(name, digest, total, progress),
            )
        if _SHA256.fullmatch(etag) and _sha256(incomplete) != etag:
            incomplete.unlink()  # the next attempt fetches it whole
            return ModelUnavailable(model, f"{name} failed its sha256 check; pull it again")
        target.parent.mkdir(parents=True, exist_ok=True)
        incomplete.replace(target)
        return None

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
        missing = sorted(name for name in files if not (partial / name).is_file())
        if missing:
            return ModelUnavailable(
                spec.qualified_name, f"the download stopped before {', '.join(missing[:3])}"
            )
        shutil.rmtree(partial / _BOOKKEEPING, ignore_errors=True)
        _prune(partial, files | {SPEC_FILE})  # a repo-id model's spec goes with it
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
        return self._folder_of(spec.repo_id)

    def _folder_of(self, repo_id: str) -> Path | None:
        try:
            validate_repo_id(repo_id)
        except HFValidationError:
            return None
        return self._root / repo_id

    def _partial(self, repo_id: str) -> Path:
        return self._root / _PARTIAL / repo_id.replace("/", "--")

    def _is_offline(self) -> bool:
        env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUTHY
        return self._offline or env or is_offline_mode()

    def _lock(self, repo_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(repo_id, threading.Lock())

    def _file_lock(self, repo_id: str) -> AbstractContextManager[object]:
        # beside .partial, not in it: a lock file outlives the download it guarded
        lock = self._root / _LOCKS / f"{repo_id.replace('/', '--')}.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        return WeakFileLock(lock)


class _Reporter:
    """What huggingface_hub's download loop takes for a tqdm bar: it tells `progress` instead."""

    def __init__(self, name: str, digest: str, total: int, progress: OnProgress, done: int) -> None:
        self._name, self._digest, self._total = name, digest, total
        self._progress = progress
        self._done = done
        self._tell()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def close(self) -> None:
        pass

    def update(self, n: float | None = 1) -> None:
        self._done += int(n or 0)
        self._tell()

    def _tell(self) -> None:
        self._progress(FileProgress(self._name, self._digest, self._total, self._done))


def _reporter(name: str, digest: str, total: int, progress: OnProgress) -> type[_Reporter]:
    """A bar class bound to one file: huggingface_hub builds it with tqdm's arguments."""

    class Bound(_Reporter):
        def __init__(self, *_: object, initial: int = 0, **__: object) -> None:
            super().__init__(name, digest, total, progress, initial)

    return Bound


def _ignore(_: FileProgress) -> None:
    pass


def _file_name(etag: str) -> str:
    """An ETag as a file name: the Hub's are hex, but a stand-in's could hold anything."""
    return (
        etag
        if re.fullmatch(r"[0-9A-Za-z_-]{1,128}", etag)
        else hashlib.sha256(etag.encode()).hexdigest()
    )


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _keep_only_commit(partial: Path, commit: str) -> None:
    """Files kept from an attempt at another commit may differ: that attempt starts over."""
    marker = partial / _BOOKKEEPING / _COMMIT
    if marker.is_file() and marker.read_text().strip() != commit:
        shutil.rmtree(partial)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(commit)


def _prune(folder: Path, keep: frozenset[str]) -> None:
    """Drop files an earlier attempt left that this snapshot does not need."""
    for path in sorted(folder.rglob("*"), reverse=True):  # children before their folders
        if path.is_dir():
            if not any(path.iterdir()):
                path.rmdir()
        elif path.relative_to(folder).as_posix() not in keep:
            path.unlink()


def _as_domain_error(
    name: str, repo_id: str, revision: str, err: Exception
) -> ModelNotFound | ModelUnavailable:
    reason = _why_not_found(repo_id, revision, err)
    if reason is not None:
        return ModelNotFound(name, reason)
    return ModelUnavailable(name, _why_unavailable(err))


def _why_not_found(repo_id: str, revision: str, err: Exception) -> str | None:
    match err:
        case GatedRepoError():  # before its parent class, RepositoryNotFoundError
            return f"{repo_id} is gated: accept its terms on the Hub, then pass a token"
        case RepositoryNotFoundError():
            return f"the Hub has no repository {repo_id} (or it is private)"
        case RevisionNotFoundError():
            return f"{repo_id} has no revision {revision!r}"
        case HFValidationError():
            return f"{repo_id!r} is not a repo id"
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
