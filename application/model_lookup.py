"""Which model a requested name stands for, and whether it may be used at all.

A name resolves, in order, as a catalogue name or alias (application/catalogue.py), one of
Ollama's library names whose architecture is awaited (refused with that architecture), or a
Hugging Face repo id, `org/name` or `org/name@revision`: then the repo's own config files say
what it is (domain/repo_configs.py), read through the RepoModels port from its folder when it is
on disk and from the Hub otherwise. A repo id model is named by its repo id as given, without
the revision; its folder is one per repo, so a repo on disk answers for any revision asked.

`allowed` holds the operator's --allow-models patterns (fnmatch, case-insensitive); none means
anything. A model is allowed when a pattern matches the name asked for (an Ollama name, an
alias), the catalogue name it stands for, or its repo id, so `BAAI/*` admits `bge-m3` too.
Anything else is a 404, as an unknown model: an operator's list is not the client's business.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from fnmatch import fnmatchcase

from application.catalogue import Alias, Catalogue
from application.ollama_library import AWAITED, AwaitedModel
from domain.errors import ArchitectureNotSupported, ModelNotFound, ModelUnavailable
from domain.models import ModelSpec
from domain.ports import RepoModels
from domain.repo_configs import supported_architectures

__all__ = ["Lookup", "ModelLookup", "as_lookup"]

Lookup = ModelSpec | ModelNotFound | ModelUnavailable | ArchitectureNotSupported

# `org/name`, optionally `@revision` (a branch, tag or commit); the Hub's own rules are checked
# by the store before anything is fetched
_REPO_ID = re.compile(r"(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<revision>[\w./-]+))?")
_LATEST = ":latest"


class ModelLookup:
    """Names to models: the catalogue, the repo ids described so far, and what may be used."""

    def __init__(
        self,
        catalogue: Catalogue,
        repos: RepoModels | None = None,
        allowed: Iterable[str] = (),
        awaited: Iterable[AwaitedModel] = AWAITED,
    ) -> None:
        """`repos`: None serves the catalogue alone (every repo id is unknown)."""
        self.catalogue = catalogue
        self._repos = repos
        self._allowed = tuple(p.strip().lower() for p in allowed if p.strip())
        self._awaited = {m.qualified_name.lower(): m for m in awaited}
        self._described: dict[str, ModelSpec] = {}  # repo id, lower-cased -> its spec

    # -- names that need no I/O -------------------------------------------------------------

    def known(self, requested: str) -> ModelSpec | None:
        """The model a name stands for, if that is known without reading anything."""
        spec = self.catalogue.resolve(requested)
        if spec is None:
            repo = _repo_id(requested)
            spec = None if repo is None else self._described.get(repo[0].lower())
        return spec if spec is not None and self.allows(requested, spec) else None

    def allows(self, requested: str, spec: ModelSpec) -> bool:
        if not self._allowed:
            return True
        name = requested.strip().lower().removesuffix(_LATEST)
        names = {name, name.split(":", 1)[0], spec.name.lower(), spec.repo_id.lower()}
        names.add(spec.qualified_name.lower())
        return any(fnmatchcase(n, p) for p in self._allowed for n in names)

    def alias(self, requested: str) -> Alias | None:
        return self.catalogue.alias(requested)

    def aliases(self, spec: ModelSpec) -> tuple[Alias, ...]:
        """The names beside its own that a listing shows for `spec`, those allowed."""
        return tuple(a for a in self.catalogue.aliases(spec) if self.allows(a.qualified_name, spec))

    def awaited(self) -> tuple[AwaitedModel, ...]:
        """Ollama library names listed before their architecture runs here, those allowed."""
        return tuple(m for m in self._awaited.values() if self._allows_awaited(m))

    # -- names that may need the store ------------------------------------------------------

    async def find(self, requested: str) -> Lookup:
        """As `find_blocking`, off the event loop when the store must be read."""
        spec = self.known(requested)
        if spec is not None:
            return spec
        return await asyncio.to_thread(self.find_blocking, requested)

    def find_blocking(self, requested: str) -> Lookup:  # noqa: PLR0911 - one return per kind of name
        """The model a name stands for; a repo id is described (its configs read, from disk or
        the Hub) the first time. Blocks: callers on an event loop use `find`."""
        name = requested.strip()
        spec = self.catalogue.resolve(name)
        if spec is not None:
            return spec if self.allows(name, spec) else ModelNotFound(name)
        awaited = self._awaited.get(_qualified(name).lower())
        if awaited is not None and self._allows_awaited(awaited):
            return ArchitectureNotSupported(name, awaited.architecture, supported_architectures())
        repo = _repo_id(name)
        if repo is None or self._repos is None:
            return ModelNotFound(name)
        repo_id, revision = repo
        if not self._allowed_repo(repo_id):
            return ModelNotFound(name)
        spec = self._described.get(repo_id.lower())
        if spec is not None:
            return spec
        described = self._repos.describe(repo_id, repo_id, revision)
        if isinstance(described, ModelSpec):
            described = self._described.setdefault(repo_id.lower(), described)
        elif isinstance(described, ModelNotFound):
            return ModelNotFound(name, described.reason)
        return described

    def find_local(self, requested: str) -> ModelSpec | ModelNotFound:
        """As `find_blocking`, but a repo id is looked for among the models on disk alone,
        never on the Hub: what removing a model needs."""
        name = requested.strip()
        spec = self.known(name)
        repo = _repo_id(name)
        if spec is None and repo is not None and self._repos is not None:
            wanted = repo[0].lower()
            on_disk = (s for s in self._repos.downloaded() if s.repo_id.lower() == wanted)
            spec = next(on_disk, None)
            if spec is not None and not self.allows(name, spec):
                spec = None
        return ModelNotFound(name) if spec is None else spec

    def forget(self, spec: ModelSpec) -> None:
        """A repo-id model was removed: the next request describes it afresh (and its download
        keeps the spec beside the weights again)."""
        self._described.pop(spec.repo_id.lower(), None)

    def listed(self) -> tuple[ModelSpec, ...]:
        """What the model listings show: the catalogue's models and the repo-id models on disk,
        those allowed. Reads the store: callers on an event loop use a thread."""
        listed = [s for s in self.catalogue.specs if self._listable(s)]
        if self._repos is not None:
            for found in self._repos.downloaded():
                if self.catalogue.resolve(found.repo_id) is not None:
                    continue  # a catalogue entry's folder, listed under its catalogue name
                spec = self._described.setdefault(found.repo_id.lower(), found)
                if self._listable(spec):
                    listed.append(spec)
        return tuple(listed)

    # -- parts ------------------------------------------------------------------------------

    def _listable(self, spec: ModelSpec) -> bool:
        names = (spec.qualified_name, *(a.qualified_name for a in self.catalogue.aliases(spec)))
        return any(self.allows(n, spec) for n in names)

    def _allowed_repo(self, repo_id: str) -> bool:
        return not self._allowed or any(fnmatchcase(repo_id.lower(), p) for p in self._allowed)

    def _allows_awaited(self, model: AwaitedModel) -> bool:
        names = (model.name, model.qualified_name, model.repo_id)
        return not self._allowed or any(
            fnmatchcase(n.lower(), p) for p in self._allowed for n in names
        )


def as_lookup(names: Catalogue | ModelLookup) -> ModelLookup:
    """What the use cases take: a lookup, or a catalogue served alone."""
    return names if isinstance(names, ModelLookup) else ModelLookup(names)


def _repo_id(requested: str) -> tuple[str, str] | None:
    """(repo id, revision) of a name shaped as one, with no tag or `:latest`."""
    name = requested.strip().removesuffix(_LATEST)
    match = _REPO_ID.fullmatch(name)
    if match is None:
        return None
    return match["repo"], match["revision"] or "main"


def _qualified(name: str) -> str:
    return name if ":" in name else f"{name}{_LATEST}"
