"""Tokenizing with Hugging Face `tokenizers` from a model's tokenizer.json.

tokenizer.json files carry padding and truncation settings of their own (all-MiniLM-L6-v2's pads
every input to 128): both are switched off, and inputs are cut at the limit sentence-transformers
applies, keeping the special tokens the model was trained with.

For some tokenizer classes transformers 5 keeps only the vocabulary from tokenizer.json and
rebuilds the rest in code; sentence-transformers tokenizes with that rebuild, and so do we
(`_REBUILT`). XLM-RoBERTa's is the one that changes tokens: the hub's tokenizer.json files split
on spaces alone (a trailing space, a tab or a newline becomes a "▁" token), the rebuild splits
on any whitespace first, as SentencePiece does.

`do_lower_case` (sentence_bert_config.json) is applied as sentence-transformers 6 applies it: a
`tokenizers` Lowercase normalizer in front of the file's own normalizer, not Python's str.lower()
(the two differ on Greek final sigma: "ΟΔΟΣ" -> "οδοσ" versus "οδος").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer as HFTokenizerFile
from tokenizers import normalizers, pre_tokenizers

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


def _xlm_roberta(tokenizer: HFTokenizerFile, config: Mapping[str, Any]) -> None:
    """transformers 5's XLMRobertaTokenizer: the file's Precompiled charsmap and nothing else
    before a whitespace split, then Metaspace."""
    tokenizer.normalizer = _precompiled(tokenizer.normalizer)
    prepend = "always" if config.get("add_prefix_space", True) else "never"
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme=prepend),
        ]
    )


def _precompiled(current: normalizers.Normalizer | None) -> normalizers.Normalizer | None:
    """The SentencePiece charsmap among the file's normalizers, if it has one."""
    parts = (
        [current[n] for n in range(len(current))]
        if isinstance(current, normalizers.Sequence)
        else [current]
    )
    return next((n for n in parts if isinstance(n, normalizers.Precompiled)), None)


# tokenizer classes (tokenizer_config.json's tokenizer_class, less "Fast") that transformers
# rebuilds in code, and what the rebuild changes
_REBUILT: Mapping[str, Callable[[HFTokenizerFile, Mapping[str, Any]], None]] = {
    "XLMRobertaTokenizer": _xlm_roberta,
}
# the class AutoTokenizer picks from config.json's model_type when tokenizer_config.json names none
_CLASS_OF_MODEL_TYPE = {"xlm-roberta": "XLMRobertaTokenizer"}


def _as_transformers_builds_it(tokenizer: HFTokenizerFile, folder: Path) -> None:
    config = read_json(folder / "tokenizer_config.json")
    name = config.get("tokenizer_class")
    if not isinstance(name, str):
        name = _CLASS_OF_MODEL_TYPE.get(read_json(folder / "config.json").get("model_type", ""))
    rebuild = _REBUILT.get((name or "").removesuffix("Fast"))
    if rebuild is not None:
        rebuild(tokenizer, config)


def load_tokenizer(spec: ModelSpec, folder: Path) -> Tokenizer | ModelUnavailable:
    try:
        tokenizer = HFTokenizerFile.from_file(str(folder / "tokenizer.json"))
        _as_transformers_builds_it(tokenizer, folder)
        lowercase = bool(read_json(folder / "sentence_bert_config.json").get("do_lower_case"))
        return HFTokenizer(tokenizer, max_seq_length(folder), lowercase=lowercase)
    except Exception as exc:  # noqa: BLE001 - tokenizers raises bare Exception for bad files
        return ModelUnavailable(spec.qualified_name, f"tokenizer.json: {exc}")
