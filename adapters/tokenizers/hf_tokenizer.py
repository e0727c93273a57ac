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

Static token embeddings read tokenizer.json as their own libraries do, with what differs held as
data (`TokenRules`), not as another tokenizer class:
- Model2Vec (model2vec's StaticModel.tokenize): no special tokens; the text is first cut to
  max_length x the vocabulary's median token length in characters, then to max_length tokens
  (config.json's max_length: 512 when absent, no limit when null); the unknown token is then
  dropped, so a text of only unknown tokens has none. The file's own truncation is ignored.
- Static (sentence-transformers' StaticEmbedding): the module's tokenizer.json as it is, no
  special tokens, nothing dropped, cut only where the file's own truncation says (model2vec
  writes max_length 512 into the files it saves); without one there is no limit.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Regex, models, normalizers, pre_tokenizers, processors
from tokenizers import Tokenizer as HFTokenizerFile

from adapters.heap import note_large_request
from adapters.tokenizers.cut_points import CutPoints, cut_points
from adapters.tokenizers.word_level import NO_LIMIT
from adapters.weights.model_folder import (
    max_seq_length,
    model2vec_max_length,
    pools_prompt,
    read_json,
    read_prompts,
    static_embedding_module,
)
from domain.errors import ModelUnavailable
from domain.models import ModelSpec
from domain.ports import Encoded, EncodedPair, Tokenizer

__all__ = [
    "HFTokenizer",
    "TokenRules",
    "load_model2vec_tokenizer",
    "load_static_tokenizer",
    "load_tokenizer",
]

_PROBE = "probe"
_PIECE_CHARS = 1 << 16  # the most characters of a text tokenized at once
_TRIM_AFTER_CHARS = 1 << 18  # reading this many in one call gives the freed heap back


@dataclass(frozen=True, slots=True)
class _PairTemplate:
    """The post-processor's pair layout: prefix A middle B suffix, with each part's token types."""

    prefix: tuple[int, ...]
    middle: tuple[int, ...]
    suffix: tuple[int, ...]
    types: tuple[tuple[int, ...], int, tuple[int, ...], int, tuple[int, ...]]

    @property
    def specials(self) -> int:
        return len(self.prefix) + len(self.middle) + len(self.suffix)

    def join(self, first: Sequence[int], second: Sequence[int], *, truncated: bool) -> EncodedPair:
        prefix_t, first_t, middle_t, second_t, suffix_t = self.types
        types = [*prefix_t, *[first_t] * len(first), *middle_t, *[second_t] * len(second)]
        types += suffix_t
        ids = (*self.prefix, *first, *self.middle, *second, *self.suffix)
        start = types.index(1) if 1 in types else len(types)
        if any(t != (n >= start) for n, t in enumerate(types)):
            msg = "the tokenizer's pair template gives token types that are not two runs"
            raise ValueError(msg)
        return EncodedPair(ids=ids, second=start, truncated=truncated)


def longest_first(first: int, second: int, room: int) -> tuple[int, int]:
    """How many tokens of each text `tokenizers`' longest_first truncation keeps: a text of at
    most half the room stays whole and the other takes the rest; two longer ones split the
    room, the longer (the second, on a tie) taking the odd token."""
    if first + second <= room:
        return first, second
    swap = first > second
    short, long = (second, first) if swap else (first, second)
    long = short if short > room else max(short, room - short)
    if short + long > room:
        short, long = room // 2, room - room // 2
    return (long, short) if swap else (short, long)


@dataclass(frozen=True, slots=True)
class TokenRules:
    """What a family does with tokenizer.json's ids beyond the file itself."""

    special_tokens: bool = True  # the post-processor's tokens around the text ([CLS] … [SEP])
    drop: frozenset[int] = frozenset()  # ids removed after the cut (model2vec's unknown token)
    char_limit: int | None = None  # the text is cut to this many characters first (model2vec)
    keep_end: bool = False  # the cut keeps the last tokens (a file that truncates "left")


class HFTokenizer:
    def __init__(  # noqa: PLR0913 - the file, its limit, and what sentence-transformers adds
        self,
        tokenizer: HFTokenizerFile,
        max_tokens: int,
        *,
        lowercase: bool,
        rules: TokenRules = TokenRules(),
        prompts: Mapping[str, str] | None = None,
        pools_prompt: bool = True,
    ) -> None:
        tokenizer.no_padding()
        tokenizer.no_truncation()
        if lowercase:
            _prepend_lowercase(tokenizer)
        self._tok = tokenizer
        self._max_tokens = max_tokens
        self._rules = rules
        self._prompts = dict(prompts or {})
        self._pools_prompt = pools_prompt
        self._prefix, self._suffix = self._special_tokens() if rules.special_tokens else ((), ())
        self._specials = len(self._prefix) + len(self._suffix)
        self._room = max_tokens - self._specials
        self._cuts = cut_points(json.loads(tokenizer.to_str()))
        if self._room < 1:
            msg = f"max_seq_length {max_tokens} leaves no room for text"
            raise ValueError(msg)

    def _pair_template(self) -> _PairTemplate:
        """The pair layout, found by probing as `_special_tokens` finds the single one."""
        plain = self._tok.encode(_PROBE, add_special_tokens=False).ids
        pair = self._tok.encode(_PROBE, _PROBE)
        full, types, n = pair.ids, pair.type_ids, len(plain)
        starts = [i for i in range(len(full) - n + 1) if full[i : i + n] == plain]
        if len(starts) != 2:  # noqa: PLR2004 - the two texts of a pair
            msg = "the tokenizer's post-processor changes the texts of a pair"
            raise ValueError(msg)
        a, b = starts
        return _PairTemplate(
            prefix=tuple(full[:a]),
            middle=tuple(full[a + n : b]),
            suffix=tuple(full[b + n :]),
            types=(
                tuple(types[:a]),
                types[a],
                tuple(types[a + n : b]),
                types[b],
                tuple(types[b + n :]),
            ),
        )

    def encode_pairs(
        self, query: str, documents: Sequence[str], document_limit: int | None = None
    ) -> list[EncodedPair]:
        """Each text is read up to the room the pair template leaves, and one token more; where
        the query alone overflows it, who gives way depends on the lengths past the cut, so
        the query and the overflowing documents are then read whole."""
        template = self._pair_template()
        room = self._max_tokens - template.specials
        if room < 2:  # noqa: PLR2004 - a token of each text
            msg = f"max_seq_length {self._max_tokens} leaves no room for a pair"
            raise ValueError(msg)
        query_ids = self._read([query], room, dropped=False)[0]
        documents_ids = self._read(list(documents), room, dropped=False)
        if len(query_ids) > room:
            query_ids = self._read([query], None, dropped=False)[0]
            long = [n for n, ids in enumerate(documents_ids) if len(ids) > room]
            for n, ids in zip(
                long, self._read([documents[n] for n in long], None, dropped=False), strict=True
            ):
                documents_ids[n] = ids
        pairs = []
        for ids in documents_ids:
            cut = ids if document_limit is None else ids[:document_limit]
            keep_query, keep_document = longest_first(len(query_ids), len(cut), room)
            truncated = keep_query < len(query_ids) or keep_document < len(cut)
            joined = template.join(query_ids[:keep_query], cut[:keep_document], truncated=truncated)
            pairs.append(joined)
        return pairs

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

    @property
    def prompts(self) -> Mapping[str, str]:
        return self._prompts

    def excluded_prompt_tokens(self, prompt: str) -> int:
        if self._pools_prompt or not prompt:
            return 0
        ids = self.encode([prompt])[0].ids  # as sentence-transformers tokenizes it: cut too
        special = {i for i, token in self._tok.get_added_tokens_decoder().items() if token.special}
        return len(ids) - 1 if ids and ids[-1] in special else len(ids)

    def encode(self, texts: Sequence[str], read: int | None = None) -> list[Encoded]:
        limit = self._rules.char_limit
        cut = list(texts) if limit is None else [t[:limit] for t in texts]
        room, keep_end = read, self._rules.keep_end
        raw = self._read(cut, room, dropped=False, from_end=keep_end)
        encoded = [self._wrap_read(ids, room) for ids in raw]
        if self._rules.drop and room is not None:
            encoded = [self._recount(t, e) for t, e in zip(cut, encoded, strict=True)]
        longer = [n for n, (t, c) in enumerate(zip(texts, cut, strict=True)) if len(t) > len(c)]
        if longer:  # cut by characters: the text past them says how many tokens it really had
            whole = self._read([texts[n] for n in longer], room, dropped=True)
            specials = self._specials
            for n, ids in zip(longer, whole, strict=True):
                exact = encoded[n].exact and (room is None or len(ids) <= room)
                full = max(len(ids) + specials, encoded[n].full_length)
                encoded[n] = Encoded(ids=encoded[n].ids, full_length=full, exact=exact)
        return encoded

    def _recount(self, text: str, encoded: Encoded) -> Encoded:
        """Ids dropped after the cut (model2vec's unknown token) may leave the ids read short
        of the cut: the text is then read on until one more id survives the drop, or it ends."""
        if encoded.exact or encoded.truncated:  # ids past the cut survived the drop already
            return encoded
        kept = len(encoded.ids) - self._specials
        more = self._read([text], kept, dropped=True)[0]
        exact = len(more) <= kept
        return Encoded(ids=encoded.ids, full_length=len(more) + self._specials, exact=exact)

    def _wrap_read(self, ids: list[int], read: int | None) -> Encoded:
        encoded = self.wrap(ids)
        if read is None or len(ids) <= read:
            return encoded
        return Encoded(ids=encoded.ids, full_length=encoded.full_length, exact=False)

    def text_ids(self, texts: Sequence[str], limit: int | None = None) -> list[tuple[int, ...]]:
        """No character cut either: chunking reads the whole text, up to `limit` + 1 tokens."""
        return [tuple(ids) for ids in self._read(list(texts), limit, dropped=True)]

    def settled_ids(self, prefix: str, limit: int) -> tuple[int, ...] | None:
        if self._rules.char_limit is not None and len(prefix) < self._rules.char_limit:
            return None  # the model's own character cut is not inside the prefix yet
        if self._cuts is None:
            return None
        end = self._cuts.last(prefix)
        raw = self._tok.encode_batch_fast([prefix[:end]], add_special_tokens=False)[0]
        ids = self._dropped(raw.ids)
        return tuple(ids[: limit + 1]) if len(ids) > limit else None

    def _dropped(self, ids: list[int]) -> list[int]:
        drop = self._rules.drop
        return [i for i in ids if i not in drop] if drop else ids

    def _read(
        self, texts: list[str], limit: int | None, *, dropped: bool, from_end: bool = False
    ) -> list[list[int]]:
        """Each text's first `limit` + 1 ids (its last, `from_end`; all of them for None), the
        dropped ids removed first when `dropped`.

        A long text is tokenized in pieces that end (start, `from_end`) at cut points
        (adapters/tokenizers/cut_points.py), whose ids add up to the whole text's, until it has
        enough: the first of `limit` + 1 characters, each next one at least twice as long
        (`_next_size`), up to 8 x (`limit` + 1) and at most `_PIECE_CHARS`; a text no longer
        than that largest piece is one piece. So what
        normalisation collapses (whitespace runs, marks) costs reading, never ids; no piece
        holds many more tokens than `limit` asks for, nor more than the few MB of one piece's
        Encoding (~350 bytes a token, offsets and token strings included). Reading that much in
        all gives the freed heap back (heap.py)."""
        cuts = self._cuts
        if limit is None or cuts is None:
            whole = self._tok.encode_batch_fast(texts, add_special_tokens=False)
            every = [self._dropped(e.ids) if dropped else e.ids for e in whole]
            del whole
            if sum(map(len, texts)) >= _TRIM_AFTER_CHARS:
                note_large_request()
            return (
                every if limit is None else [_ends(i, limit + 1, from_end=from_end) for i in every]
            )
        wanted = limit + 1
        largest = min(8 * wanted, _PIECE_CHARS)
        out: list[list[int]] = [[] for _ in texts]
        # per text: where the next piece starts (counted from the end, `from_end`), and its size;
        # a text no longer than the largest piece is one piece, the whole text, in one round
        first = min(wanted, largest)
        todo = {n: (0, largest if len(text) <= largest else first) for n, text in enumerate(texts)}
        tokenized = 0
        while todo:
            spans = {
                n: _piece(texts[n], at, size, cuts, from_end=from_end)
                for n, (at, size) in todo.items()
            }
            raw = self._tok.encode_batch_fast(
                [texts[n][a:b] for n, (a, b) in spans.items()], add_special_tokens=False
            )
            tokenized += sum(b - a for a, b in spans.values())
            for (n, (a, b)), e in zip(spans.items(), raw, strict=True):
                ids = self._dropped(e.ids) if dropped else e.ids
                if not out[n]:
                    out[n] = ids  # a fresh list: the first piece's ids need no copy
                elif from_end:
                    out[n][:0] = ids
                else:
                    out[n] += ids
                done = len(texts[n]) - a if from_end else b
                if len(out[n]) >= wanted or done == len(texts[n]):
                    out[n] = _ends(out[n], wanted, from_end=from_end)
                    del todo[n]
                else:
                    todo[n] = (done, _next_size(todo[n][1], done, len(out[n]), wanted, largest))
            del raw
        if tokenized >= _TRIM_AFTER_CHARS:
            note_large_request()
        return out

    def wrap(self, ids: Sequence[int]) -> Encoded:
        # runs once per text (1,024 texts of ~60 tokens take ~60 ms to tokenize): no generator
        # and no tuple splice where the family has nothing to splice
        room, drop = self._room, self._rules.drop
        total = len(ids)
        end = self._rules.keep_end
        kept = ids if total <= room else ids[total - room :] if end else ids[:room]
        if drop:
            # list.count runs at C speed; most texts hold no dropped id, and skip the filter
            dropped = sum(map(ids.count, drop))
            if dropped:
                total -= dropped
                kept = [i for i in kept if i not in drop]
        if not self._specials:
            return Encoded(ids=tuple(kept), full_length=total)
        return Encoded(
            ids=(*self._prefix, *kept, *self._suffix), full_length=total + self._specials
        )


def _piece(text: str, done: int, size: int, cuts: CutPoints, *, from_end: bool) -> tuple[int, int]:
    """The next piece of `text` to tokenize, `done` characters being read already: about
    `size` characters more, to a cut point (from the end backwards, `from_end`)."""
    if from_end:
        end = len(text) - done
        return (0 if end <= size else cuts.before(text, end - size)), end
    return done, (len(text) if len(text) - done <= size else cuts.after(text, done + size))


def _next_size(size: int, chars: int, tokens: int, wanted: int, largest: int) -> int:
    """The next piece: at least twice the last, or what the rest needs at the text's
    characters per token so far, a quarter over (so most texts take two pieces, not four),
    and never past `largest`."""
    needed = (wanted - tokens) * chars * 5 // (4 * max(tokens, 1))
    return min(max(2 * size, needed), largest)


def _ends(ids: list[int], count: int, *, from_end: bool) -> list[int]:
    if len(ids) <= count:
        return ids
    return ids[len(ids) - count :] if from_end else ids[:count]


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


_CLIP_SPLIT = (
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"
)


def _token_text(config: Mapping[str, Any], key: str, default: str) -> str:
    value = config.get(key, default)
    return str(value.get("content", default) if isinstance(value, dict) else value)


def _clip(tokenizer: HFTokenizerFile, config: Mapping[str, Any]) -> None:
    """transformers 5's CLIPTokenizer: the file's BPE, with CLIP's own text cleaning (NFC,
    whitespace runs to one space, lower case) and word split, whatever the file says."""
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_CLIP_SPLIT), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    bos = _token_text(config, "bos_token", "<|startoftext|>")
    eos = _token_text(config, "eos_token", "<|endoftext|>")
    bos_id, eos_id = tokenizer.token_to_id(bos), tokenizer.token_to_id(eos)
    if bos_id is None or eos_id is None:
        msg = f"the vocabulary has no {bos!r} or no {eos!r}"
        raise ValueError(msg)
    tokenizer.post_processor = processors.RobertaProcessing(
        (eos, eos_id), (bos, bos_id), trim_offsets=False, add_prefix_space=False
    )


# tokenizer classes (tokenizer_config.json's tokenizer_class, less "Fast") that transformers
# rebuilds in code, and what the rebuild changes
_REBUILT: Mapping[str, Callable[[HFTokenizerFile, Mapping[str, Any]], None]] = {
    "XLMRobertaTokenizer": _xlm_roberta,
    "CLIPTokenizer": _clip,
}
# the class AutoTokenizer picks from config.json's model_type when tokenizer_config.json names none
_CLASS_OF_MODEL_TYPE = {"xlm-roberta": "XLMRobertaTokenizer", "clip": "CLIPTokenizer"}


def _clip_vocabulary_files(folder: Path) -> HFTokenizerFile:
    """A CLIP folder with vocab.json and merges.txt and no tokenizer.json (as the original
    OpenAI uploads were first published): the BPE transformers builds from those two files."""
    config = read_json(folder / "tokenizer_config.json")
    specials = [
        _token_text(config, "bos_token", "<|startoftext|>"),
        _token_text(config, "eos_token", "<|endoftext|>"),
    ]
    model = models.BPE.from_file(
        str(folder / "vocab.json"),
        str(folder / "merges.txt"),
        continuing_subword_prefix="",
        end_of_word_suffix="</w>",
        fuse_unk=False,
        unk_token=_token_text(config, "unk_token", "<|endoftext|>"),
    )
    tokenizer = HFTokenizerFile(model)
    tokenizer.add_special_tokens([AddedToken(t, special=True) for t in specials])
    return tokenizer


def _tokenizer_class(folder: Path) -> str:
    """The class transformers' AutoTokenizer builds for the folder, less "Fast"."""
    name = read_json(folder / "tokenizer_config.json").get("tokenizer_class")
    if not isinstance(name, str):
        name = _CLASS_OF_MODEL_TYPE.get(read_json(folder / "config.json").get("model_type", ""))
    return (name or "").removesuffix("Fast")


def _as_transformers_builds_it(folder: Path) -> HFTokenizerFile:
    name = _tokenizer_class(folder)
    if name == "CLIPTokenizer" and not (folder / "tokenizer.json").is_file():
        tokenizer = _clip_vocabulary_files(folder)
    else:
        tokenizer = HFTokenizerFile.from_file(str(folder / "tokenizer.json"))
    rebuild = _REBUILT.get(name)
    if rebuild is not None:
        rebuild(tokenizer, read_json(folder / "tokenizer_config.json"))
    return tokenizer


def load_tokenizer(spec: ModelSpec, folder: Path) -> Tokenizer | ModelUnavailable:
    try:
        tokenizer = _as_transformers_builds_it(folder)
        lowercase = bool(read_json(folder / "sentence_bert_config.json").get("do_lower_case"))
        return HFTokenizer(
            tokenizer,
            max_seq_length(folder),
            lowercase=lowercase,
            prompts=read_prompts(folder),
            pools_prompt=pools_prompt(folder),
        )
    except Exception as exc:  # noqa: BLE001 - tokenizers raises bare Exception for bad files
        return ModelUnavailable(spec.qualified_name, f"tokenizer.json: {exc}")


def _unknown_id(tokenizer: HFTokenizerFile) -> int | None:
    """The unknown token's id, found as model2vec finds it (WordPiece, BPE, WordLevel name it;
    a Unigram model numbers it)."""
    model = tokenizer.model
    if hasattr(model, "unk_token"):
        token = model.unk_token
        return None if token is None else tokenizer.token_to_id(token)
    unk_id = json.loads(tokenizer.to_str())["model"].get("unk_id")
    return None if unk_id is None else int(unk_id)


def _median_token_length(tokenizer: HFTokenizerFile) -> int:
    """model2vec's median_token_length: over every vocabulary entry, added tokens included."""
    return int(statistics.median(len(token) for token in tokenizer.get_vocab()))


def load_model2vec_tokenizer(spec: ModelSpec, folder: Path) -> Tokenizer | ModelUnavailable:
    try:
        tokenizer = HFTokenizerFile.from_file(str(folder / "tokenizer.json"))
        limit = model2vec_max_length(folder)
        unknown = _unknown_id(tokenizer)
        rules = TokenRules(
            special_tokens=False,
            drop=frozenset() if unknown is None else frozenset({unknown}),
            char_limit=None if limit is None else limit * _median_token_length(tokenizer),
        )
        max_tokens = NO_LIMIT if limit is None else limit
        return HFTokenizer(tokenizer, max_tokens, lowercase=False, rules=rules)
    except Exception as exc:  # noqa: BLE001 - tokenizers raises bare Exception for bad files
        return ModelUnavailable(spec.qualified_name, f"tokenizer.json: {exc}")


def load_static_tokenizer(spec: ModelSpec, folder: Path) -> Tokenizer | ModelUnavailable:
    try:
        module, _ = static_embedding_module(folder)
        tokenizer = HFTokenizerFile.from_file(str(module / "tokenizer.json"))
        truncation = tokenizer.truncation  # the file's own, which StaticEmbedding keeps
        max_tokens = NO_LIMIT if truncation is None else int(truncation["max_length"])
        keep_end = truncation is not None and truncation.get("direction") == "left"
        rules = TokenRules(special_tokens=False, keep_end=keep_end)
        return HFTokenizer(tokenizer, max_tokens, lowercase=False, rules=rules)
    except Exception as exc:  # noqa: BLE001 - tokenizers raises bare Exception for bad files
        return ModelUnavailable(spec.qualified_name, f"tokenizer.json: {exc}")
