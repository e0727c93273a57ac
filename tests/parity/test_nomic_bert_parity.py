"""NomicBERT on every engine against sentence-transformers (on transformers' NomicBertModel).

Small random-weight folders from tests/model_factory_nomic.py in the layouts of
nomic-ai/nomic-embed-text-v1.5 (Nomic's config.json names, mean pooling, 8,192 tokens, its task
prompts) and Snowflake/snowflake-arctic-embed-m-long (CLS, Normalize, 2,048 tokens, a query
prompt), plus one whose config.json is the one transformers writes (BERT's names,
rope_parameters) with another rotary base. The corpus adds a text of about 3,000 tokens: rotary
angles far past 2,048 positions, read whole at 8,192 and cut at 2,048. Each folder is embedded
by the numpy engine, ONNX Runtime and OpenVINO in mixed-length right-padded batches and
compared with SentenceTransformer.encode (tests/parity/every_engine.py), without a prompt and
under each named prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from application.batching import pad, plan_batches
from domain.models import Family, ModelSpec, PoolingMode
from tests.corpus import VARIED_TEXTS
from tests.model_factory import reference_model
from tests.model_factory_nomic import (
    ARCTIC_LONG_PROMPTS,
    NOMIC_PROMPTS,
    write_nomic_bert_model,
)
from tests.parity.every_engine import (
    ENGINES,
    GRAPH_ENGINES,
    Reference,
    assert_matches,
    embedded_by,
    gate,
    mismatched_texts,
    reference_of,
)
from tests.tolerances import BATCH_INVARIANCE

if TYPE_CHECKING:
    from pathlib import Path

    from domain.ports import Encoder, Tokenizer

LONG = "rotary " * 3000  # ~3,000 tokens: past arctic's 2,048-token cut, whole under nomic's 8,192
TEXTS = [*VARIED_TEXTS, LONG, "search_query: already prefixed"]


@dataclass(frozen=True)
class Case:
    id: str
    repo_id: str
    pooling: PoolingMode
    max_tokens: int
    prompts: dict[str, str]
    factory: dict[str, Any] = field(default_factory=dict)

    @property
    def spec(self) -> ModelSpec:
        # the repo's own files decide at load; the spec only names the family and its repo
        return ModelSpec(
            self.id, self.repo_id, Family.NOMIC_BERT, 32, self.max_tokens, self.pooling
        )


CASES = [
    Case(
        "nomic-embed-text-v1.5",
        "nomic-ai/nomic-embed-text-v1.5",
        PoolingMode.MEAN,
        8192,
        NOMIC_PROMPTS,
        {"seed": 81},
    ),
    Case(
        "snowflake-arctic-embed-m-long",
        "Snowflake/snowflake-arctic-embed-m-long",
        PoolingMode.CLS,
        2048,
        ARCTIC_LONG_PROMPTS,
        {
            "pooling": "cls",
            "normalize": True,
            "prompts": ARCTIC_LONG_PROMPTS,
            "max_seq_length": 2048,
            "name_or_path": "Snowflake/snowflake-arctic-embed-m-long",
            "seed": 82,
        },
    ),
    Case(
        "transformers-config-base-10000",
        "acme/nomic-resaved",
        PoolingMode.MEAN,
        8192,
        NOMIC_PROMPTS,
        {"nomic_config": "transformers", "rotary_base": 10000.0, "seed": 83},
    ),
]


@dataclass(frozen=True)
class Written:
    case: Case
    folder: Path
    reference: Reference


@pytest.fixture(scope="module", params=CASES, ids=[c.id for c in CASES])
def written(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Written:
    case: Case = request.param
    folder = write_nomic_bert_model(tmp_path_factory.mktemp(case.id), **case.factory)
    return Written(case, folder, reference_of(folder, TEXTS))


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("graphs")


@pytest.mark.reference
@pytest.mark.parametrize("engine", ENGINES)
def test_embeddings_match_sentence_transformers(
    engine: str, written: Written, graphs: Path
) -> None:
    """Every vector equals SentenceTransformer.encode's (MAX_ABS_DIFF scaled, MIN_COSINE)."""
    ours = embedded_by(engine, written.case.spec, written.folder, TEXTS, graphs)
    assert ours.batches > 1
    assert ours.encoder.dimensions == written.reference.dimensions
    assert_matches(ours.vectors, written.reference.vectors, TEXTS)


@pytest.mark.reference
def test_token_ids_and_limit_match_sentence_transformers(written: Written, graphs: Path) -> None:
    """The texts become the ids sentence-transformers feeds its model, cut at its limit (8,192
    or 2,048), and the long text reaches past 2,048 positions or is cut there."""
    ours = embedded_by("numpy", written.case.spec, written.folder, TEXTS, graphs)
    assert not mismatched_texts(ours, written.reference, TEXTS)
    assert ours.tokenizer.max_tokens == written.reference.max_seq_length
    assert ours.tokenizer.max_tokens == written.case.max_tokens
    assert max(len(e.ids) for e in ours.encoded) == min(3002, written.case.max_tokens)


def _embed_with_prompt(
    tokenizer: Tokenizer, encoder: Encoder, texts: list[str], prompt: str
) -> np.ndarray:
    """As the server embeds `texts` under `prompt`: tokenized with it, batched by length."""
    rows = [e.ids for e in tokenizer.encode([prompt + t for t in texts])]
    skip = tokenizer.excluded_prompt_tokens(prompt)
    out = np.full((len(rows), encoder.dimensions), np.nan, dtype=np.float32)
    for batch in plan_batches([len(r) for r in rows], 2048, 8):
        out[batch] = encoder.embed(*pad([rows[i] for i in batch], [skip] * len(batch)))
    return out


@pytest.mark.reference
@pytest.mark.parametrize("engine", ENGINES)
def test_each_prompt_matches_sentence_transformers(
    engine: str, written: Written, graphs: Path
) -> None:
    """Under each of the repo's named prompts (search_query: , search_document: , ...), every
    vector equals encode(texts, prompt_name=...)."""
    texts = TEXTS[:60]
    ours = embedded_by(engine, written.case.spec, written.folder, texts, graphs)
    model = reference_model(written.folder)
    assert written.case.prompts.items() <= dict(ours.tokenizer.prompts).items()
    assert dict(ours.tokenizer.prompts) == model.prompts
    for name, prompt in model.prompts.items():
        theirs = np.asarray(model.encode(texts, prompt_name=name), dtype=np.float32)
        vectors = _embed_with_prompt(ours.tokenizer, ours.encoder, texts, prompt)
        assert_matches(vectors, theirs, texts)


@pytest.mark.reference
@pytest.mark.parametrize("engine", GRAPH_ENGINES)
def test_the_engines_parity_gate_passes(engine: str, written: Written, graphs: Path) -> None:
    """Loaded as the server loads it, the graph engine passes the gate and is the one used."""
    chosen = gate(engine, written.case.spec, written.folder, graphs)
    assert chosen.engine == engine
    assert chosen.parity is not None
    assert chosen.parity.passed


@pytest.mark.parametrize("engine", ENGINES)
def test_text_alone_equals_text_in_mixed_length_batch(
    engine: str, written: Written, graphs: Path
) -> None:
    """Rotary positions count from each row's start, so right padding moves nothing: each text
    alone equals it inside one padded batch."""
    ours = embedded_by(engine, written.case.spec, written.folder, TEXTS, graphs)
    rows = [ours.encoded[n].ids for n in range(0, len(TEXTS), 11)]
    assert len({len(r) for r in rows}) > 3
    together = ours.encoder.embed(*pad(rows))
    alone = np.concatenate([ours.encoder.embed(*pad([row])) for row in rows])
    assert np.abs(alone - together).max() < BATCH_INVARIANCE
