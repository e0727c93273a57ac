"""Tokenizing with Hugging Face `tokenizers` from a model's tokenizer.json.

tokenizer.json files carry padding and truncation settings of their own (all-MiniLM-L6-v2's pads
every input to 128): both are switched off, and inputs are cut at the limit sentence-transformers
applies, keeping the special tokens the model was trained with.

`do_lower_case` (sentence_bert_config.json) is applied as sentence-transformers 6 applies it: a
`tokenizers` Lowercase normalizer in front of the file's own normalizer, not Python's str.lower()
(the two differ on Greek final sigma: "ΟΔΟΣ" -> "οδοσ" versus "οδος").
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tokenizers import Tokenizer as HFTokenizerFile
from tokenizers import normalizers

from adapters.model_folder import max_seq_length, read_json
from domain.errors import ModelUnavailable
from domain.models import ModelSpec
from domain.ports import Encoded, Tokenizer

__all__ = ["HFTokenizer", "load_tokenizer"]

_PROBE = "probe"


class HFTokenizer:
    def __init__(self, tokenizer: HFTokenizerFile, max_tokens: int, *, lowercase: bool) -> None:
        tokenizer.no_padding()
        tokenizer.no_truncation()
        if lowercase:
            _prepend_lowercase(tokenizer)
        self._tok = tokenizer
        self._max_tokens = max_tokens
        self._prefix, self._suffix = self._special_tokens()
        self._room = max_tokens - len(self._prefix) - len(self._suffix)
        if self._room < 1:
            msg = f"max_seq_length {max_tokens} leaves no room for text"
            raise ValueError(msg)

    def _special_tokens(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The ids the post-processor puts before and after a single text ([CLS] … [SEP])."""
        plain = self._tok.encode(_PROBE, add_special_tokens=False).ids
        full = self._tok.encode(_PROBE).ids
        for start in range(len(full) - len(plain) + 1):
            if full[start : start + len(plain)] == plain:
                return tuple(full[:start]), tuple(full[start + len(plain) :])
        msg = "the tokenizer's post-processor changes the text's own tokens"
        raise ValueError(msg)

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @property
    def vocab_size(self) -> int:
        return int(self._tok.get_vocab_size(with_added_tokens=True))

    def encode(self, texts: Sequence[str]) -> list[Encoded]:
        raw = self._tok.encode_batch_fast(list(texts), add_special_tokens=False)
        return [self.wrap(e.ids) for e in raw]

    def wrap(self, ids: Sequence[int]) -> Encoded:
        kept = (*self._prefix, *ids[: self._room], *self._suffix)
        return Encoded(ids=kept, full_length=len(ids) + len(self._prefix) + len(self._suffix))


def _prepend_lowercase(tokenizer: HFTokenizerFile) -> None:
    """What sentence-transformers' Transformer does for do_lower_case with a fast tokenizer."""
    current = tokenizer.normalizer
    if isinstance(current, normalizers.Lowercase):
        return
    if isinstance(current, normalizers.Sequence):
        parts: list[normalizers.Normalizer] = [current[n] for n in range(len(current))]
        if any(isinstance(n, normalizers.Lowercase) for n in parts):
            return
    else:
        parts = [] if current is None else [current]
    tokenizer.normalizer = normalizers.Sequence([normalizers.Lowercase(), *parts])


def load_tokenizer(spec: ModelSpec, folder: Path) -> Tokenizer | ModelUnavailable:
    try:
        tokenizer = HFTokenizerFile.from_file(str(folder / "tokenizer.json"))
        lowercase = bool(read_json(folder / "sentence_bert_config.json").get("do_lower_case"))
        return HFTokenizer(tokenizer, max_seq_length(folder), lowercase=lowercase)
    except Exception as exc:  # noqa: BLE001 - tokenizers raises bare Exception for bad files
        return ModelUnavailable(spec.qualified_name, f"tokenizer.json: {exc}")
