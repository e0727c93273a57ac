"""The one tokenizer loader the composition root passes on: each family's own, by table."""

from __future__ import annotations

from pathlib import Path

from adapters.families import FAMILY_READERS
from domain.errors import ModelUnavailable
from domain.models import ModelSpec
from domain.ports import Tokenizer

__all__ = ["load_tokenizer"]


def load_tokenizer(spec: ModelSpec, folder: Path) -> Tokenizer | ModelUnavailable:
    return FAMILY_READERS[spec.family].tokenizer(spec, folder)
