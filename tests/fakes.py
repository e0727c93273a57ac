"""Fakes for every port: small, deterministic, and honest about what they do."""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from domain.errors import (
    ArchitectureNotSupported,
    InvalidInput,
    ModelNotFound,
    ModelUnavailable,
    TokenIdOutOfRange,
)
from domain.models import Family, ModelSpec
from domain.ops import Array, IdArray
from domain.ports import Encoded, Encoder, FileProgress, FolderFacts, OnProgress, Tokenizer

BOS, EOS = 1, 2


class FakeTokenizer:
    """One token per whitespace-separated word, its id the word's length, between BOS and EOS.

    `reads` records how many characters each text was read to, and `limits` each `text_ids`
    limit, so tests see what the pipeline asked for."""

    def __init__(
        self,
        max_tokens: int = 8,
        vocab_size: int = 100,
        prompts: Mapping[str, str] | None = None,
        *,
        pools_prompt: bool = True,
    ) -> None:
        self._max_tokens = max_tokens
        self._vocab_size = vocab_size
        self._prompts = dict(prompts or {})
        self._pools_prompt = pools_prompt
        self.reads: list[int] = []
        self.limits: list[int | None] = []

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @property
    def vocab_size(self) -> int:
        return self._vocab_size

    @property
    def prompts(self) -> Mapping[str, str]:
        return self._prompts

    def excluded_prompt_tokens(self, prompt: str) -> int:
        """BOS and the prompt's words, where the model pools without its prompt."""
        return 0 if self._pools_prompt or not prompt else 1 + len(prompt.split())

    def encode(self, texts: Sequence[str], read: int | None = None) -> list[Encoded]:
        encoded = [self.wrap(self._ids(t, read)) for t in texts]
        return [
            e if read is None or e.full_length - 2 <= read else replace(e, exact=False)
            for e in encoded
        ]

    def text_ids(self, texts: Sequence[str], limit: int | None = None) -> list[tuple[int, ...]]:
        self.limits.append(limit)
        return [self._ids(t, limit) for t in texts]

    def settled_ids(self, prefix: str, limit: int) -> tuple[int, ...] | None:
        """Words followed by whitespace inside the prefix are settled."""
        last = re.search(r"\s\S*\Z", prefix)
        ids = self._ids(prefix[: 0 if last is None else last.start()], limit)
        return ids if len(ids) > limit else None

    def _ids(self, text: str, limit: int | None) -> tuple[int, ...]:
        """Words are read one at a time, and no further than the limit needs."""
        ids: list[int] = []
        end = 0
        for word in re.finditer(r"\S+", text):
            if limit is not None and len(ids) > limit:
                break
            ids.append(min(len(word.group()), self._vocab_size - 1))
            end = word.end()
        self.reads.append(end if limit is not None and len(ids) > limit else len(text))
        return tuple(ids)

    def wrap(self, ids: Sequence[int]) -> Encoded:
        kept = (BOS, *ids[: self._max_tokens - 2], EOS)
        return Encoded(ids=kept, full_length=len(ids) + 2)


class FakeEncoder:
    """Row vector = [sum of ids, token count, 3, 4]: batch-invariant, so order bugs show."""

    dimensions = 4
    images = None  # text only

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.batches: list[tuple[int, int]] = []  # (B, T) of every forward pass
        self._gate = gate
        self.entered = threading.Event()  # set when a forward pass starts, before the gate
        self.releases: list[int] = []  # passes run so far, at each release_memory

    def release_memory(self) -> None:
        self.releases.append(len(self.batches))

    def embed(self, ids: IdArray, mask: IdArray) -> Array:
        self.entered.set()
        if self._gate is not None:
            self._gate.wait(timeout=10)
        self.batches.append(ids.shape)
        out = np.empty((ids.shape[0], 4), dtype=np.float32)
        out[:, 0] = (ids * mask).sum(axis=1)
        out[:, 1] = mask.sum(axis=1)
        out[:, 2] = 3.0
        out[:, 3] = 4.0
        return out


class FakeEngine:
    name = "fake"

    def __init__(self, families: frozenset[Family] = frozenset({Family.BERT})) -> None:
        self.families = families
        self.loads: list[ModelSpec] = []
        self.encoder = FakeEncoder()

    def load(self, spec: ModelSpec, folder: Path) -> Encoder | ModelUnavailable:
        self.loads.append(spec)
        if (folder / "broken").exists():
            return ModelUnavailable(spec.qualified_name, "broken on purpose")
        return self.encoder


class FakeStore:
    """Holds the repos it is given; `fetch` of any other repo is a ModelNotFound."""

    def __init__(self, folders: dict[str, Path] | None = None) -> None:
        self.folders = dict(folders or {})
        self.fetches: list[str] = []

    def locate(self, spec: ModelSpec) -> Path | None:
        return self.folders.get(spec.repo_id)

    def fetch(self, spec: ModelSpec) -> Path | ModelNotFound | ModelUnavailable:
        self.fetches.append(spec.repo_id)
        folder = self.locate(spec)
        return folder if folder is not None else ModelNotFound(spec.qualified_name, "not in fake")


def fake_tokenizer_loader(spec: ModelSpec, folder: Path) -> Tokenizer | ModelUnavailable:
    return FakeTokenizer()


class FakeDecoder:
    """Id n decodes to a word of n letters; ids of 50 and more are outside its vocabulary."""

    vocabulary = "fake"

    def __init__(self) -> None:
        self.decoded: list[int] = []

    def decode(self, ids: Sequence[int]) -> str | TokenIdOutOfRange:
        return self.decode_head(ids, len(ids))

    def decode_head(self, ids: Sequence[int], count: int) -> str | TokenIdOutOfRange:
        """Every id checked; how many were decoded is recorded in `decoded`."""
        for i in ids:
            if not 0 < i < 50:
                return TokenIdOutOfRange(i, self.vocabulary)
        self.decoded.append(min(count, len(ids)))
        return " ".join("x" * i for i in ids[:count])


class FakeDownloads:
    """Downloads by making the folder, and tells of one file on the way."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def locate(self, spec: ModelSpec) -> Path | None:
        folder = self.root / spec.repo_id
        return folder if folder.is_dir() else None

    def fetch(
        self, spec: ModelSpec, progress: OnProgress | None = None
    ) -> Path | ModelNotFound | ModelUnavailable:
        if progress is not None:
            progress(FileProgress("model.safetensors", "sha256:00", 10, 10))
        folder = self.root / spec.repo_id
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def remove(self, spec: ModelSpec) -> bool:
        folder = self.locate(spec)
        if folder is None:
            return False
        folder.rmdir()
        return True


class FakeFacts:
    """Every model it holds weighs one byte, modified at the epoch; others are not on disk."""

    def __init__(self, *on_disk: ModelSpec) -> None:
        self.on_disk = set(on_disk)

    def facts(self, spec: ModelSpec) -> FolderFacts | None:
        if spec not in self.on_disk:
            return None
        return FolderFacts(
            size=1, modified=datetime.fromtimestamp(0, UTC), digest="d", parameters=1
        )


class FakeImageEncoder:
    """An image tower of 2x2 grey pictures: image vector = [its first pixel, 0, 0, 1]."""

    tokens = 5  # four patches and a class token

    def __init__(self) -> None:
        self.batches: list[int] = []  # images in every forward pass

    def prepare(self, data: bytes) -> Array | InvalidInput:
        return np.full((1, 2, 2), float(len(data)), dtype=np.float32)

    def embed(self, pixels: Array) -> Array:
        self.batches.append(len(pixels))
        out = np.zeros((len(pixels), 4), dtype=np.float32)
        out[:, 0] = pixels[:, 0, 0, 0]
        out[:, 3] = 1.0
        return out


class FakeImageTextEncoder:
    """FakeEncoder's text rows, with FakeImageEncoder as its image tower."""

    dimensions = 4

    def __init__(self) -> None:
        self.text = FakeEncoder()
        self.images = FakeImageEncoder()

    def embed(self, ids: IdArray, mask: IdArray) -> Array:
        return self.text.embed(ids, mask)


class FakeRepoModels:
    """Repos by id: `described` is what the Hub would say of each (a spec, or a refusal);
    `on_disk` the repo-id models already downloaded. Counts the descriptions it is asked for."""

    def __init__(
        self,
        described: dict[str, ModelSpec | ArchitectureNotSupported],
        on_disk: Sequence[ModelSpec] = (),
    ) -> None:
        self._described = described
        self.on_disk = list(on_disk)
        self.asked: list[str] = []

    def describe(
        self, name: str, repo_id: str, revision: str
    ) -> ModelSpec | ModelNotFound | ModelUnavailable | ArchitectureNotSupported:
        self.asked.append(f"{repo_id}@{revision}")
        found = self._described.get(repo_id)
        if found is None:
            return ModelNotFound(name, f"the Hub has no repository {repo_id}")
        return replace(found, name=name) if isinstance(found, ModelSpec) else found

    def downloaded(self) -> list[ModelSpec]:
        return list(self.on_disk)
