"""Small random-weight RoBERTa and XLM-RoBERTa models, in the file layouts real repos use.

The companion of tests/model_factory.py (BERT), whose layouts, random initialisation and
sentence-transformers saving it reuses. What differs is the tokenizer, which no installed package
carries for these families, so it is generated offline, once per process, on tests/corpus.py:

- "roberta": a byte-level BPE (ByteLevel pre-tokenizer, no normalizer, RobertaProcessing
  `<s> $A </s>`), as FacebookAI/roberta-base's tokenizer.json has it. Byte-level BPE never maps a
  text to <unk>: every byte is in the vocabulary.
- "xlm-roberta": a SentencePiece-style Unigram (Metaspace pre-tokenizer prepending "▁", the
  `Replace(" {2,}", " ")` normalizer that transformers' converter writes, template
  `<s> $A </s>`), as FacebookAI/xlm-roberta-base's tokenizer.json has it (less the
  Precompiled charsmap, which only the sentencepiece library can build). Trained on the edge
  texts only, so characters the other texts bring map to <unk>.

Both put <s> <pad> </s> <unk> at ids 0-3 and <mask> (lstrip) last, as the real vocabularies do,
so the model config's pad_token_id is 1, as on the hub. Each is saved through transformers'
RobertaTokenizerFast / XLMRobertaTokenizerFast, so tokenizer.json and tokenizer_config.json are
what that class writes; special_tokens_map.json, which transformers 5 no longer writes, is
added in the format the hub repos carry.

Public API: `write_roberta_model`, `Flavour`.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from tests.corpus import EDGE_TEXTS, VARIED_TEXTS
from tests.model_factory import (
    ConfigFormat,
    Layout,
    _randomise,
    _save_with_sentence_transformers,
    _set_model_max_length,
    _write_legacy_sentence_transformers_files,
)

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import PreTrainedModel

__all__ = ["Flavour", "write_roberta_model"]

Flavour = Literal["roberta", "xlm-roberta"]

_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # ids 0-3, as in both real vocabularies
_PAD_ID = 1
_BPE_VOCAB = 1200
_UNIGRAM_VOCAB = 600


def write_roberta_model(  # noqa: PLR0913 - one keyword per knob a real repo varies
    folder: Path,
    *,
    flavour: Flavour = "roberta",
    pooling: str | list[str] = "mean",
    normalize: bool = False,
    layout: Layout = "sentence-transformers",
    config_format: ConfigFormat = "current",
    prefixed: bool = False,
    max_seq_length: int | None = 128,
    tokenizer_config: bool = True,
    seed: int = 0,
    hidden: int = 32,
    layers: int = 2,
    heads: int = 4,
    intermediate: int = 64,
    max_position_embeddings: int = 514,
) -> Path:
    """Write a random-weight RoBERTa / XLM-RoBERTa model into `folder`; return `folder`.

    flavour: "roberta" (byte-level BPE, model_type roberta) or "xlm-roberta" (Unigram,
        model_type xlm-roberta).
    pooling, normalize: the sentence-transformers Pooling mode(s) and a Normalize module.
    layout: "sentence-transformers" (saved by sentence-transformers itself, like
        paraphrase-multilingual-mpnet-base-v2) or "transformers" (a plain repo, like
        FacebookAI/roberta-base: no modules.json; refuses pooling/normalize settings).
        Either way tokenizer.json is the one the hub repos carry (Metaspace alone, Replace
        normalizer), not the pipeline transformers 5 rebuilds and sentence-transformers
        would save for XLM-RoBERTa.
    config_format: "current" (what sentence-transformers 6 writes) or "legacy" (the files
        paraphrase-multilingual-mpnet-base-v2 carries: max_seq_length in
        sentence_bert_config.json, `sentence_transformers.models.*` modules, boolean pooling
        keys); see tests/model_factory.py.
    prefixed: store the checkpoint as RobertaForMaskedLM / XLMRobertaForMaskedLM does: keys
        under `roberta.` plus the `lm_head.*` prediction head, as the FacebookAI repos have.
    max_seq_length: sentence-transformers' limit; in the plain layout tokenizer_config.json's
        model_max_length (None removes the key, as a repo without one).
    tokenizer_config: False leaves a plain repo without tokenizer_config.json, as repos that
        predate the file are: transformers then picks the tokenizer class from config.json's
        model_type and has no model_max_length.
    max_position_embeddings: 514 on the real models: two rows sit below the first position
        (padding_idx + 1), so 512 tokens fit.
    seed: every weight is drawn from a generator seeded with it; same seed, same files.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    modes = [pooling] if isinstance(pooling, str) else list(pooling)
    if layout == "transformers" and (modes != ["mean"] or normalize):
        msg = "a plain transformers repo has no pooling or normalize settings"
        raise ValueError(msg)
    if layout != "transformers" and not tokenizer_config:
        msg = "sentence-transformers always writes tokenizer_config.json"
        raise ValueError(msg)
    if layout == "transformers" and config_format != "current":
        msg = "config_format applies to the sentence-transformers layout only"
        raise ValueError(msg)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(flavour)
    config = _config(
        flavour,
        vocab_size=tokenizer.get_vocab_size(with_added_tokens=True),
        hidden=hidden,
        layers=layers,
        heads=heads,
        intermediate=intermediate,
        max_position_embeddings=max_position_embeddings,
    )
    checkpoint = _random_model(flavour, config, seed=seed, prefixed=prefixed)
    if layout == "transformers":
        checkpoint.save_pretrained(folder)
        _save_tokenizer(flavour, tokenizer, folder)
        _set_model_max_length(folder, max_seq_length)
        if not tokenizer_config:
            (folder / "tokenizer_config.json").unlink()
        return folder

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp)
        checkpoint.save_pretrained(source)
        _save_tokenizer(flavour, tokenizer, source)
        _save_with_sentence_transformers(
            source, folder, modes=modes, normalize=normalize, max_seq_length=max_seq_length
        )
        shutil.copyfile(source / "tokenizer.json", folder / "tokenizer.json")
    _write_special_tokens_map(folder)
    if config_format == "legacy":
        _write_legacy_sentence_transformers_files(folder, max_seq_length, do_lower_case=False)
    if prefixed:
        # sentence-transformers saves the bare model it loaded; put the MLM checkpoint back
        (folder / "model.safetensors").unlink()
        checkpoint.save_pretrained(folder)
    return folder


# --- tokenizers -----------------------------------------------------------------------------------


@functools.cache
def _tokenizer(flavour: Flavour) -> Tokenizer:
    """Trained once per process; the trainers are deterministic on a fixed corpus."""
    from tokenizers import AddedToken

    tokenizer = _train_bpe() if flavour == "roberta" else _train_unigram()
    # the real vocabularies end with <mask>, which swallows the space before it
    tokenizer.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    return tokenizer


def _train_bpe() -> Tokenizer:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE(continuing_subword_prefix="", end_of_word_suffix=""))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_BPE_VOCAB,
        special_tokens=list(_SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(VARIED_TEXTS, trainer=trainer)
    tokenizer.post_processor = processors.RobertaProcessing(
        ("</s>", tokenizer.token_to_id("</s>")), ("<s>", tokenizer.token_to_id("<s>"))
    )
    return tokenizer


def _train_unigram() -> Tokenizer:
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.Sequence([normalizers.Replace(Regex(" {2,}"), " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=_UNIGRAM_VOCAB,
        special_tokens=list(_SPECIALS),
        unk_token="<unk>",
        show_progress=False,
    )
    tokenizer.train_from_iterator(EDGE_TEXTS, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    return tokenizer


def _save_tokenizer(flavour: Flavour, tokenizer: Tokenizer, folder: Path) -> None:
    from transformers import RobertaTokenizerFast, XLMRobertaTokenizerFast

    cls = RobertaTokenizerFast if flavour == "roberta" else XLMRobertaTokenizerFast
    for n, token in enumerate(_SPECIALS):
        assert tokenizer.token_to_id(token) == n, token
    cls(tokenizer_object=tokenizer, model_max_length=512).save_pretrained(str(folder))
    _write_special_tokens_map(folder)


def _write_special_tokens_map(folder: Path) -> None:
    mask = {"content": "<mask>", "lstrip": True, "normalized": False}
    tokens: dict[str, Any] = {
        "bos_token": "<s>",
        "cls_token": "<s>",
        "eos_token": "</s>",
        "mask_token": {**mask, "rstrip": False, "single_word": False},
        "pad_token": "<pad>",
        "sep_token": "</s>",
        "unk_token": "<unk>",
    }
    path = folder / "special_tokens_map.json"
    path.write_text(json.dumps(tokens, indent=2) + "\n", encoding="utf-8")


# --- model ----------------------------------------------------------------------------------------


def _config(  # noqa: PLR0913 - the knobs of write_roberta_model
    flavour: Flavour,
    *,
    vocab_size: int,
    hidden: int,
    layers: int,
    heads: int,
    intermediate: int,
    max_position_embeddings: int,
) -> Any:
    from transformers import RobertaConfig, XLMRobertaConfig

    cls = RobertaConfig if flavour == "roberta" else XLMRobertaConfig
    return cls(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=max_position_embeddings,
        type_vocab_size=1,
        hidden_act="gelu",
        layer_norm_eps=1e-5,
        pad_token_id=_PAD_ID,
        bos_token_id=0,
        eos_token_id=2,
    )


def _random_model(flavour: Flavour, config: Any, *, seed: int, prefixed: bool) -> PreTrainedModel:
    from transformers import (
        RobertaForMaskedLM,
        RobertaModel,
        XLMRobertaForMaskedLM,
        XLMRobertaModel,
    )

    if flavour == "roberta":
        model: PreTrainedModel = RobertaForMaskedLM(config) if prefixed else RobertaModel(config)
    else:
        model = XLMRobertaForMaskedLM(config) if prefixed else XLMRobertaModel(config)
    _randomise(model, seed)
    return model
