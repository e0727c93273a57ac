"""Ollama's library names for embedding models, and the Hugging Face repos they stand for.

Ollama users type `bge-m3` or `snowflake-arctic-embed:22m`; here each such name is another name
(an alias, with Ollama's tag) of a catalogue model. The facts below (architecture, width, token
limit, pooling) were checked against the repos' published files as quoted by model cards, hub
pages and code that cites them (the Hub itself cannot be reached from the build machines); each
row says what was confirmed. Where a fact could not be confirmed, the row says so.

At load time the repo's own files decide (sentence-transformers' configs); these values are what
the listings show before a model is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from domain.models import Family, ModelSpec, PoolingMode

__all__ = ["AWAITED", "LIBRARY_NAMES", "LIBRARY_SPECS", "AwaitedModel", "LibraryName"]

_B, _R, _X, _N = Family.BERT, Family.ROBERTA, Family.XLM_ROBERTA, Family.NOMIC_BERT
_G3, _Q = Family.GEMMA3, Family.QWEN3
_MEAN, _CLS, _LAST = PoolingMode.MEAN, PoolingMode.CLS, PoolingMode.LAST_TOKEN


@dataclass(frozen=True, slots=True)
class LibraryName:
    """`name:tag` in Ollama's library, answering for the catalogue model `target` names."""

    name: str
    tag: str
    target: str  # a catalogue name, `name:tag` where the entry's tag is not latest


@dataclass(frozen=True, slots=True)
class AwaitedModel:
    """A library name whose architecture this server does not run yet: listed, and refused
    with a 400 naming the architecture (as config.json spells it), with nothing downloaded."""

    name: str
    tag: str
    repo_id: str
    architecture: str

    @property
    def qualified_name(self) -> str:
        return f"{self.name}:{self.tag}"


# The repos Ollama's names stand for, beyond the seed catalogue. Each is a sentence-transformers
# repo: modules.json lists Transformer, Pooling and (where said) Normalize.
LIBRARY_SPECS: tuple[ModelSpec, ...] = (
    # BertModel, hidden_size 384, 12 layers; sentence_bert_config max_seq_length 128 (L6-v2 has
    # 256); mean pooling, Normalize
    ModelSpec("all-MiniLM-L12-v2", "sentence-transformers/all-MiniLM-L12-v2", _B, 384, 128, _MEAN),
    # BertModel (BERT-large), hidden_size 1024, 512 positions; 1_Pooling: pooling_mode_cls_token;
    # no Normalize module. Query prompt "Represent this sentence for searching relevant
    # passages: " (model card)
    ModelSpec("mxbai-embed-large-v1", "mixedbread-ai/mxbai-embed-large-v1", _B, 1024, 512, _CLS),
    # XLMRobertaModel, hidden_size 1024, max_position_embeddings 8194 (8192 tokens after RoBERTa's
    # padding offset); modules.json Transformer, 1_Pooling (CLS), 2_Normalize; the repo has
    # model.safetensors (2.27 GB) beside pytorch_model.bin, and colbert/sparse heads we do not
    # read (*.pt pickles, never fetched)
    ModelSpec("bge-m3", "BAAI/bge-m3", _X, 1024, 8192, _CLS),
    # BertModel, hidden_size 1024, 512 positions; CLS pooling, Normalize (BGE v1.5 cards)
    ModelSpec("bge-large-en-v1.5", "BAAI/bge-large-en-v1.5", _B, 1024, 512, _CLS),
    # Snowflake arctic-embed v1: BertModel, 512 positions, 1_Pooling CLS (confirmed for -m),
    # Normalize. hidden_size: xs 384 (6 layers, from all-MiniLM-L6-v2), s 384 (12 layers),
    # m 768, l 1024 (confirmed from configs of fine-tunes that name them as _name_or_path).
    # Query prompt "Represent this sentence for searching relevant passages: ".
    ModelSpec(
        "snowflake-arctic-embed-xs", "Snowflake/snowflake-arctic-embed-xs", _B, 384, 512, _CLS
    ),
    ModelSpec("snowflake-arctic-embed-s", "Snowflake/snowflake-arctic-embed-s", _B, 384, 512, _CLS),
    ModelSpec("snowflake-arctic-embed-m", "Snowflake/snowflake-arctic-embed-m", _B, 768, 512, _CLS),
    ModelSpec(
        "snowflake-arctic-embed-l", "Snowflake/snowflake-arctic-embed-l", _B, 1024, 512, _CLS
    ),
    # XLMRobertaModel, hidden_size 1024, max_position_embeddings 8194, CLS, Normalize; query
    # prompt "query: " (config of a fine-tune naming it; the prompt from the model card)
    ModelSpec(
        "snowflake-arctic-embed-l-v2.0",
        "Snowflake/snowflake-arctic-embed-l-v2.0",
        _X,
        1024,
        8192,
        _CLS,
    ),
    # RobertaModel, hidden_size 384, 6 layers, max_position_embeddings 514, pad_token_id 1
    # (its config.json); CLS pooling (Ollama's GGUF metadata: bert.pooling_type CLS)
    ModelSpec(
        "granite-embedding-30m-english",
        "ibm-granite/granite-embedding-30m-english",
        _R,
        384,
        512,
        _CLS,
    ),
    # hidden 768, 12 layers, 512 context, CLS (Ollama's GGUF metadata, XLM-R's t5/unigram
    # tokenizer with 250k tokens); `XLMRobertaModel` as its architecture is not confirmed here
    ModelSpec(
        "granite-embedding-278m-multilingual",
        "ibm-granite/granite-embedding-278m-multilingual",
        _X,
        768,
        512,
        _CLS,
    ),
    # Gemma3TextModel with use_bidirectional_attention, hidden_size 768, 2048 positions,
    # sliding_window 512; mean pooling, Dense 768 -> 3072 -> 768 (no bias, Identity),
    # Normalize; max_seq_length 2048 (confirmed from files quoted by public code pinning them);
    # task prompts "query", "document", ... (tests/model_factory_gemma3.py)
    ModelSpec("embeddinggemma-300m", "google/embeddinggemma-300m", _G3, 768, 2048, _MEAN),
    # Qwen3 decoders with last-token pooling, then Normalize: config.json says architectures
    # ["Qwen3ForCausalLM"], model_type qwen3 (the 0.6B's, as quoted by ports of it; the 4B and 8B
    # are assumed to say the same); hidden_size 1024 / 2560 / 4096 (the model card's embedding
    # dimensions); 32k context (the card; that sentence_bert_config.json says 32768 is not
    # confirmed). Query instruction as a `query` prompt. The 4B (~16 GB as float32) and 8B (~32 GB)
    # load only where --max-memory and the machine's memory allow (application/loading.py).
    ModelSpec("Qwen3-Embedding-0.6B", "Qwen/Qwen3-Embedding-0.6B", _Q, 1024, 32768, _LAST),
    ModelSpec("Qwen3-Embedding-4B", "Qwen/Qwen3-Embedding-4B", _Q, 2560, 32768, _LAST),
    ModelSpec("Qwen3-Embedding-8B", "Qwen/Qwen3-Embedding-8B", _Q, 4096, 32768, _LAST),
    # NomicBertModel (config.json in Nomic's own names: n_embd 768, 12 layers, n_positions 8192,
    # rotary base 1000, SwiGLU, no biases; auto_map to code never run here). nomic-embed-text-v1.5:
    # mean pooling, max_seq_length 8192, its task prompts (search_query: , search_document: ,
    # classification: , clustering: ). snowflake-arctic-embed-m-long (from nomic-embed-text-v1-
    # unsupervised): CLS, Normalize, arctic v1's query prompt, max_seq_length 2048 (its card;
    # unconfirmed). Layouts: tests/model_factory_nomic.py.
    ModelSpec("nomic-embed-text-v1.5", "nomic-ai/nomic-embed-text-v1.5", _N, 768, 8192, _MEAN),
    ModelSpec(
        "snowflake-arctic-embed-m-long",
        "Snowflake/snowflake-arctic-embed-m-long",
        _N,
        768,
        2048,
        _CLS,
    ),
)

LIBRARY_NAMES: tuple[LibraryName, ...] = (
    LibraryName("all-minilm", "latest", "all-MiniLM-L6-v2"),
    LibraryName("all-minilm", "22m", "all-MiniLM-L6-v2"),
    LibraryName("all-minilm", "33m", "all-MiniLM-L12-v2"),
    LibraryName("mxbai-embed-large", "latest", "mxbai-embed-large-v1"),
    LibraryName("mxbai-embed-large", "335m", "mxbai-embed-large-v1"),
    LibraryName("bge-m3", "567m", "bge-m3"),
    LibraryName("bge-large", "latest", "bge-large-en-v1.5"),
    LibraryName("bge-large", "335m", "bge-large-en-v1.5"),
    LibraryName("snowflake-arctic-embed", "latest", "snowflake-arctic-embed-l"),
    LibraryName("snowflake-arctic-embed", "22m", "snowflake-arctic-embed-xs"),
    LibraryName("snowflake-arctic-embed", "33m", "snowflake-arctic-embed-s"),
    LibraryName("snowflake-arctic-embed", "110m", "snowflake-arctic-embed-m"),
    LibraryName("snowflake-arctic-embed", "137m", "snowflake-arctic-embed-m-long"),
    LibraryName("snowflake-arctic-embed", "335m", "snowflake-arctic-embed-l"),
    LibraryName("snowflake-arctic-embed2", "latest", "snowflake-arctic-embed-l-v2.0"),
    LibraryName("snowflake-arctic-embed2", "568m", "snowflake-arctic-embed-l-v2.0"),
    LibraryName("paraphrase-multilingual", "latest", "paraphrase-multilingual-mpnet-base-v2"),
    LibraryName("paraphrase-multilingual", "278m", "paraphrase-multilingual-mpnet-base-v2"),
    # which size `latest` is could not be confirmed here; 278m is assumed
    LibraryName("granite-embedding", "latest", "granite-embedding-278m-multilingual"),
    LibraryName("granite-embedding", "30m", "granite-embedding-30m-english"),
    LibraryName("granite-embedding", "278m", "granite-embedding-278m-multilingual"),
    LibraryName("embeddinggemma", "latest", "embeddinggemma-300m"),
    LibraryName("embeddinggemma", "300m", "embeddinggemma-300m"),
    # which size `latest` is could not be confirmed here; 8b is assumed
    LibraryName("qwen3-embedding", "latest", "Qwen3-Embedding-8B"),
    LibraryName("qwen3-embedding", "0.6b", "Qwen3-Embedding-0.6B"),
    LibraryName("qwen3-embedding", "4b", "Qwen3-Embedding-4B"),
    LibraryName("qwen3-embedding", "8b", "Qwen3-Embedding-8B"),
    # Ollama's nomic-embed-text is v1.5 under every tag (137m-v1.5-fp16 unconfirmed)
    LibraryName("nomic-embed-text", "latest", "nomic-embed-text-v1.5"),
    LibraryName("nomic-embed-text", "v1.5", "nomic-embed-text-v1.5"),
    LibraryName("nomic-embed-text", "137m-v1.5-fp16", "nomic-embed-text-v1.5"),
)

# names Ollama's library has whose architecture is not written here yet: none today
AWAITED: tuple[AwaitedModel, ...] = ()
