"""Which of a repository's files each family reads: the hub store downloads only these."""

from __future__ import annotations

from domain.models import Family

__all__ = ["FILES_NEEDED"]

_SENTENCE_TRANSFORMERS = (
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "*_Pooling/config.json",
    "*_Dense/config.json",
    "*_Dense/model.safetensors",
)
_TRANSFORMER = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "model.safetensors",
)

# fnmatch patterns over repo paths (huggingface_hub's allow_patterns)
FILES_NEEDED: dict[Family, tuple[str, ...]] = {
    Family.BERT: _TRANSFORMER + _SENTENCE_TRANSFORMERS,
    Family.ROBERTA: _TRANSFORMER + _SENTENCE_TRANSFORMERS,
    Family.XLM_ROBERTA: _TRANSFORMER + _SENTENCE_TRANSFORMERS,
    Family.CLIP: (*_TRANSFORMER, "preprocessor_config.json"),
    # the word2vec text file, or a gensim KeyedVectors pickle (`*.model`) and its table
    Family.WORD2VEC: ("*.txt", "*.model", "*.model.vectors.npy"),
    # model2vec reads these three; `weights` and `mapping` live inside model.safetensors
    Family.MODEL2VEC: ("config.json", "tokenizer.json", "model.safetensors"),
    # StaticEmbedding where modules.json puts it: 0_StaticEmbedding/ in sentence-transformers'
    # saves, the root in model2vec's (which also reads as one with no modules.json at all)
    Family.STATIC: (
        "modules.json",
        "0_StaticEmbedding/model.safetensors",
        "0_StaticEmbedding/tokenizer.json",
        "model.safetensors",
        "tokenizer.json",
    ),
}
