"""The existing families on the layouts of the repos issue 14 adds, on every engine, against
sentence-transformers: CLS pooling with and without Normalize, BERT's lower-casing, and
XLM-RoBERTa with 8,194 position rows read to 8,192 tokens (BAAI/bge-m3).

Each case is one repo's layout, small and random (tests/model_factory_repos.py states the facts
each follows). The texts are the shared corpus plus one text of about 1,500 tokens, which
bge-m3 reads whole (positions far past 512) and the others cut at 512; a text past 8,192 tokens
is compared by its token ids alone (embedding it would take gigabytes of attention scores).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from adapters.tokenizers.by_family import load_tokenizer
from domain.errors import ModelUnavailable
from domain.models import Family, ModelSpec, PoolingMode
from tests.corpus import VARIED_TEXTS
from tests.model_factory import reference_model
from tests.model_factory_repos import write_repo_layout
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
from tests.parity.test_bert_parity import reference_token_ids

if TYPE_CHECKING:
    from pathlib import Path

LONG = " ".join(f"word{n % 97} and more" for n in range(500))  # ~1,500 tokens
PAST_8192 = "token " * 9000
TEXTS = [*VARIED_TEXTS, LONG]


@dataclass(frozen=True)
class Case:
    repo_id: str
    family: Family
    max_tokens: int  # what sentence-transformers reads the repo to
    seed: int

    @property
    def spec(self) -> ModelSpec:
        name = self.repo_id.rsplit("/", 1)[-1]
        return ModelSpec(name, self.repo_id, self.family, 0, self.max_tokens, PoolingMode.CLS)


CASES = [
    Case("BAAI/bge-m3", Family.XLM_ROBERTA, 8192, 81),
    Case("ibm-granite/granite-embedding-30m-english", Family.ROBERTA, 512, 82),
    Case("BAAI/bge-small-en-v1.5", Family.BERT, 512, 83),
    Case("mixedbread-ai/mxbai-embed-large-v1", Family.BERT, 512, 84),
    Case("Snowflake/snowflake-arctic-embed-m", Family.BERT, 512, 85),
]


@dataclass(frozen=True)
class Written:
    case: Case
    folder: Path
    reference: Reference


@pytest.fixture(scope="module", params=CASES, ids=[c.repo_id for c in CASES])
def written(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Written:
    case: Case = request.param
    folder = write_repo_layout(case.repo_id, tmp_path_factory.mktemp("repo"), seed=case.seed)
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
    """The ids sentence-transformers feeds its model, cut at the repo's limit: 8,192 tokens for
    bge-m3, whose long text is read whole; 512 for the others."""
    ours = embedded_by("numpy", written.case.spec, written.folder, TEXTS, graphs)
    assert not mismatched_texts(ours, written.reference, TEXTS)
    limit = written.case.max_tokens
    assert ours.tokenizer.max_tokens == written.reference.max_seq_length == limit
    longest = max(len(e.ids) for e in ours.encoded)
    assert longest > 1000 if limit > 1000 else longest == limit


@pytest.mark.reference
def test_a_text_past_the_limit_is_cut_as_sentence_transformers_cuts_it(written: Written) -> None:
    """Past 8,192 tokens too: the same ids, kept to the limit."""
    tokenizer = load_tokenizer(written.case.spec, written.folder)
    assert not isinstance(tokenizer, ModelUnavailable), tokenizer
    (ours,) = tokenizer.encode([PAST_8192])
    (theirs,) = reference_token_ids(reference_model(written.folder), [PAST_8192])
    assert ours.ids == theirs
    assert len(ours.ids) == written.case.max_tokens


@pytest.mark.reference
@pytest.mark.parametrize("engine", GRAPH_ENGINES)
def test_the_engines_parity_gate_passes(engine: str, written: Written, graphs: Path) -> None:
    """Loaded as the server loads it, the graph engine passes the gate and is the one used."""
    chosen = gate(engine, written.case.spec, written.folder, graphs)
    assert chosen.engine == engine
    assert chosen.parity is not None
    assert chosen.parity.passed
