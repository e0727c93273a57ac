"""Expected failures, as values. Each dialect maps every one of them (see adapters/http)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from domain.models import Family, Task

__all__ = [
    "ArchitectureNotSupported",
    "EmbedError",
    "FamilyNotSupported",
    "InputTooLong",
    "InvalidDimensions",
    "InvalidInput",
    "ModelNotFound",
    "ModelTooLarge",
    "ModelUnavailable",
    "NotRemovable",
    "Overloaded",
    "TokenIdOutOfRange",
    "TooManyInputs",
    "TooManyTokens",
    "WrongTask",
]


@dataclass(frozen=True, slots=True)
class ModelNotFound:
    name: str
    reason: str = ""

    @property
    def message(self) -> str:
        return f"model {self.name!r} not found" + (f": {self.reason}" if self.reason else "")


@dataclass(frozen=True, slots=True)
class ModelUnavailable:
    """The model exists but its files could not be fetched or read."""

    name: str
    reason: str

    @property
    def message(self) -> str:
        return f"model {self.name!r} could not be loaded: {self.reason}"


@dataclass(frozen=True, slots=True)
class ModelTooLarge:
    """The model's weights would not fit in memory: refused from their sizes alone (safetensors
    headers), before any weight is downloaded or read. Asking again does not help; a smaller
    model, a larger --max-memory or a larger machine does."""

    name: str
    needed: int  # bytes the load would hold at its peak
    limit: int  # bytes allowed
    what: str  # the limit, in words: "the memory limit (--max-memory)", ...

    @property
    def message(self) -> str:
        return (
            f"model {self.name!r} is too large to load here: it needs {_gib(self.needed)} "
            f"(its weights as float32), past {self.what} of {_gib(self.limit)}"
        )


def _gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB"


@dataclass(frozen=True, slots=True)
class FamilyNotSupported:
    name: str
    family: Family

    @property
    def message(self) -> str:
        return (
            f"model {self.name!r} is in the {self.family.value} family, "
            "which this server cannot run yet"
        )


@dataclass(frozen=True, slots=True)
class ArchitectureNotSupported:
    """A repo whose config.json names an architecture we have not written ourselves: refused
    from its configs alone, before any weight is fetched (a repo's own code is never run)."""

    name: str
    architecture: str  # as config.json's `architectures` (or `model_type`) spells it; "": none
    supported: tuple[str, ...]  # the architecture names this server runs

    @property
    def message(self) -> str:
        what = (
            f"architecture {self.architecture}"
            if self.architecture
            else "no architecture (its config.json names none)"
        )
        return (
            f"model {self.name!r} has {what}, which this server does not run; "
            f"it runs {', '.join(self.supported)}"
        )


@dataclass(frozen=True, slots=True)
class InvalidInput:
    message: str
    param: str = "input"


@dataclass(frozen=True, slots=True)
class InputTooLong:
    index: int
    tokens: int  # special tokens included; with `exact` False, those read: the input has more
    limit: int
    exact: bool = True  # a refusal reads an input only so far (application/prepared_inputs.py)

    @property
    def message(self) -> str:
        has = f"{self.tokens}" if self.exact else f"more than {self.tokens - 1}"
        return (
            f"input {self.index} has {has} tokens, more than this model's "
            f"maximum context length of {self.limit} tokens"
        )


@dataclass(frozen=True, slots=True)
class TooManyInputs:
    count: int
    limit: int

    @property
    def message(self) -> str:
        return f"{self.count} inputs were given; at most {self.limit} are allowed per request"


@dataclass(frozen=True, slots=True)
class TooManyTokens:
    total: int  # with `exact` False, the tokens read before the request was known to be over
    limit: int
    exact: bool = True

    @property
    def message(self) -> str:
        total = f"{self.total}" if self.exact else f"more than {self.limit}"
        return f"Requested {total} tokens, max {self.limit} tokens per request"


@dataclass(frozen=True, slots=True)
class InvalidDimensions:
    requested: int
    available: int

    @property
    def message(self) -> str:
        return (
            f"dimensions must be between 1 and {self.available} for this model, "
            f"got {self.requested}"
        )


@dataclass(frozen=True, slots=True)
class TokenIdOutOfRange:
    token_id: int
    vocabulary: str

    @property
    def message(self) -> str:
        return f"token id {self.token_id} is not in the {self.vocabulary} vocabulary"


@dataclass(frozen=True, slots=True)
class Overloaded:
    """Too much already waits for this model: refused now rather than queued without end."""

    name: str
    waiting: int  # inputs queued for the model
    retry_after_s: int

    @property
    def message(self) -> str:
        return (
            f"the server is busy: {self.waiting} inputs wait for model {self.name!r}; "
            f"retry after {self.retry_after_s} s"
        )


@dataclass(frozen=True, slots=True)
class NotRemovable:
    """The model lives in an installed package, which only the package manager may remove."""

    name: str
    folder: Path

    @property
    def message(self) -> str:
        return (
            f"model '{self.name}' comes from an installed Python package ({self.folder}) and "
            "cannot be removed here; uninstall that package to remove it"
        )


@dataclass(frozen=True, slots=True)
class WrongTask:
    """An embedding model asked to rerank, or a reranker (cross-encoder) asked to embed."""

    name: str
    asked: Task  # what the request wanted the model to do
    capable: tuple[str, ...]  # the listed models that can, by name

    @property
    def message(self) -> str:
        verb = "rerank" if self.asked is Task.RERANK else "embed"
        kind = "an embedding model" if self.asked is Task.RERANK else "a reranker (cross-encoder)"
        can = ", ".join(self.capable) if self.capable else "none is listed on this server"
        return f"model {self.name!r} is {kind} and cannot {verb}; models that can {verb}: {can}"


EmbedError = (
    ModelNotFound
    | ModelUnavailable
    | ModelTooLarge
    | FamilyNotSupported
    | ArchitectureNotSupported
    | InvalidInput
    | InputTooLong
    | TooManyInputs
    | TooManyTokens
    | InvalidDimensions
    | TokenIdOutOfRange
    | Overloaded
    | WrongTask
)
