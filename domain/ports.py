"""The ports the application needs from the outside world. Adapters satisfy them structurally."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from domain.errors import (
    ArchitectureNotSupported,
    InvalidInput,
    ModelNotFound,
    ModelUnavailable,
    TokenIdOutOfRange,
)
from domain.models import Family, ModelSpec
from domain.ops import Array, IdArray

__all__ = [
    "Downloads",
    "Encoded",
    "EncodedPair",
    "Encoder",
    "FileProgress",
    "FolderFacts",
    "ImageEncoder",
    "InferenceEngine",
    "KeepsShapes",
    "ModelFacts",
    "ModelStore",
    "OnProgress",
    "OverlapsPasses",
    "PadsForFree",
    "PairTokenizer",
    "ReleasesMemory",
    "RepoModels",
    "TokenIdDecoder",
    "Tokenizer",
    "TokenizerLoader",
    "WeightsSize",
]


class ModelStore(Protocol):
    """Where a model's files come from and live."""

    def locate(self, spec: ModelSpec) -> Path | None:
        """The model's folder if it is already here; never downloads."""
        ...

    def fetch(self, spec: ModelSpec) -> Path | ModelNotFound | ModelUnavailable:
        """The model's folder, downloading what the family needs first if it must."""
        ...


@runtime_checkable
class WeightsSize(Protocol):
    """What a model's weights take in memory, told before any of them is read."""

    def held_bytes(self, spec: ModelSpec) -> int | None:
        """Bytes the weights take held as float32 (as the engines hold them), from their
        safetensors headers alone: the folder's where it is here, else the Hub's, read with
        range requests. None where no header tells (a pickle-only repo, no network)."""
        ...


@dataclass(frozen=True, slots=True)
class FolderFacts:
    """What a model's folder on disk weighs, as the model listings report it."""

    size: int  # bytes on disk
    modified: datetime
    digest: str  # sha256 of the weights file: the same weights, the same digest
    parameters: int  # 0 where the weights cannot be read
    damaged: str | None = None  # why the weights cannot be read; None: they can


class ModelFacts(Protocol):
    """Facts about a model's files, read from disk (slow the first time: hashing)."""

    def facts(self, spec: ModelSpec) -> FolderFacts | None:
        """None where the model is not on disk."""
        ...


@dataclass(frozen=True, slots=True)
class FileProgress:
    """How far one file of a download has come."""

    file: str  # its path in the repo
    digest: str  # "sha256:<hex>" where the Hub names the content by it, else the Hub's ETag
    total: int  # bytes
    completed: int  # bytes on disk, those kept from an interrupted attempt included


OnProgress = Callable[[FileProgress], None]


class Downloads(Protocol):
    """A store that downloads models, says how far it has come, and removes what it put there."""

    def locate(self, spec: ModelSpec) -> Path | None: ...

    def fetch(
        self, spec: ModelSpec, progress: OnProgress | None = None
    ) -> Path | ModelNotFound | ModelUnavailable: ...

    def remove(self, spec: ModelSpec) -> bool:
        """Deletes the model's folder; False when there was none."""
        ...


class RepoModels(Protocol):
    """Models named by a Hugging Face repo id rather than a catalogue name."""

    def describe(
        self, name: str, repo_id: str, revision: str
    ) -> ModelSpec | ModelNotFound | ModelUnavailable | ArchitectureNotSupported:
        """What the repo is (domain/repo_configs.py), named `name`. A repo on disk answers from
        its folder, offline too; another from its config files on the Hub, fetched where its
        download goes on from. Never fetches a weights file."""
        ...

    def downloaded(self) -> list[ModelSpec]:
        """The repo-id models on disk."""
        ...


@dataclass(frozen=True, slots=True)
class Encoded:
    ids: tuple[int, ...]  # special tokens included, cut to the model's limit
    # what len(ids) would have been without the cut; where the text was read only in part
    # (`exact` False), the tokens of the part read, special tokens included: more than the cut
    full_length: int
    exact: bool = True

    @property
    def truncated(self) -> bool:
        return self.full_length > len(self.ids)


class Tokenizer(Protocol):
    """Texts to token ids, reading each text only as far as the ids asked for need: a text is
    tokenized up to a point where its tokens so far cannot change whatever follows (for
    `tokenizers` pipelines: adapters/tokenizers/cut_points.py), so a 15 MB text cut to 256 tokens
    costs what 256 tokens cost."""

    @property
    def max_tokens(self) -> int: ...

    @property
    def vocab_size(self) -> int: ...

    @property
    def prompts(self) -> Mapping[str, str]:
        """The model's named prompts (config_sentence_transformers.json); {} where none."""
        ...

    def excluded_prompt_tokens(self, prompt: str) -> int:
        """How many leading tokens of `prompt + text` pooling leaves out: 0 where the model
        pools the prompt's tokens too (sentence-transformers' include_prompt, true by default),
        else the prompt's own tokens as sentence-transformers counts them (the prompt
        tokenized alone, less a trailing special token)."""
        ...

    def encode(self, texts: Sequence[str], read: int | None = None) -> list[Encoded]:
        """Each text's ids, special tokens added, cut to the model's limit. `read`: at most
        this many of a text's own tokens and one more are read (it should be at least what the
        cut keeps); a text found to go on past them has `exact` False. None: read whole."""
        ...

    def wrap(self, ids: Sequence[int]) -> Encoded:
        """Ids already in the model's vocabulary: add its special tokens and cut to the limit."""
        ...

    def text_ids(self, texts: Sequence[str], limit: int | None = None) -> list[tuple[int, ...]]:
        """The texts' own token ids, as `encode` reads them, but with no special tokens and
        nothing cut: what `truncate: "chunk"` cuts into windows. `limit`: only the first
        `limit` + 1 are read and given, so more than `limit` says that the text goes on."""
        ...

    def settled_ids(self, prefix: str, limit: int) -> tuple[int, ...] | None:
        """The first `limit` + 1 ids (as `text_ids` gives them) of every text that starts with
        `prefix`, if the prefix settles that many whatever follows it; None when it does not
        (the text is shorter, or more of it is needed). How token ids of another vocabulary are
        decoded only as far as the model reads them."""
        ...


@dataclass(frozen=True, slots=True)
class EncodedPair:
    """A (query, document) pair as a cross-encoder reads it: the pair template's special tokens
    around both texts, cut `longest_first` to the model's limit."""

    ids: tuple[int, ...]
    second: int  # where token type 1 starts (the second text's part); len(ids) where none has it
    truncated: bool = False  # the cut left out tokens of either text


@runtime_checkable
class PairTokenizer(Protocol):
    """A tokenizer that also reads text pairs, as transformers' tokenizers do for
    `tokenizer(queries, documents, truncation="longest_first")`."""

    def encode_pairs(
        self, query: str, documents: Sequence[str], document_limit: int | None = None
    ) -> list[EncodedPair]:
        """The query paired with each document; each text read only as far as the cut needs.
        `document_limit`: each document is first cut to this many of its own tokens."""
        ...


class TokenizerLoader(Protocol):
    def __call__(self, spec: ModelSpec, folder: Path) -> Tokenizer | ModelUnavailable: ...


class ImageEncoder(Protocol):
    """A model's image tower, with the preprocessing its files define, into the text space."""

    @property
    def tokens(self) -> int:
        """Positions one image occupies in the tower (patches and class token): its usage."""
        ...

    def prepare(self, data: bytes) -> Array | InvalidInput:
        """An encoded image file (PNG, JPEG, ...) to the tower's input [C,S,S]; any thread."""
        ...

    def embed(self, pixels: Array) -> Array: ...  # [B,C,S,S] -> [B,D]


class Encoder(Protocol):
    """A loaded model on one engine: padded token ids in, sentence vectors out."""

    @property
    def dimensions(self) -> int: ...

    @property
    def images(self) -> ImageEncoder | None:
        """The image tower, for models that embed images too."""
        ...

    def embed(self, ids: IdArray, mask: IdArray) -> Array: ...  # [B,T], [B,T] -> [B,D]


@runtime_checkable
class KeepsShapes(Protocol):
    """An Encoder whose runtime keeps what it prepared for every input shape it has run
    (OpenVINO's compiled kernels and their buffers, ~1 MB a shape for all-MiniLM-L6-v2, for as
    long as the model is loaded): its passes are padded to a few lengths, so that the shapes,
    and the memory, stop growing after a while of load."""

    @property
    def keeps_shapes(self) -> bool: ...


@runtime_checkable
class OverlapsPasses(Protocol):
    """An Encoder whose forward passes may run on several threads at once, each on its own
    runtime threads: a merged run's passes then overlap instead of taking turns."""

    @property
    def overlaps_passes(self) -> bool: ...


@runtime_checkable
class PadsForFree(Protocol):
    """An Encoder whose pass may read its rows' real tokens alone (a lookup and a mean over the
    real ids: `embedding_bag` in domain/ops.py), so that padding costs it nothing: its rows
    are cut into the fewest passes, not into the least padded ones."""

    @property
    def pads_for_free(self) -> bool: ...


@runtime_checkable
class ReleasesMemory(Protocol):
    """An Encoder whose runtime keeps the working memory of its largest pass from pass to pass
    (arenas, intermediate buffers), and can give it back while the model is idle."""

    def release_memory(self) -> None:
        """Called between passes, never during one; cheap when there is nothing to give back."""
        ...


class InferenceEngine(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def families(self) -> frozenset[Family]: ...

    def load(self, spec: ModelSpec, folder: Path) -> Encoder | ModelUnavailable: ...


class TokenIdDecoder(Protocol):
    """Turns token ids of another vocabulary (OpenAI's cl100k_base) back into text."""

    @property
    def vocabulary(self) -> str: ...

    def decode(self, ids: Sequence[int]) -> str | TokenIdOutOfRange: ...

    def decode_head(self, ids: Sequence[int], count: int) -> str | TokenIdOutOfRange:
        """The text of the first `count` ids, every id of `ids` checked: a prefix of
        `decode(ids)`, a character that the cut splits left out."""
        ...
