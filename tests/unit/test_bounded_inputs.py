"""An input far past what the model embeds costs what the model embeds: the pipeline asks the
tokenizer for no more tokens, and the decoder for no more ids, than the cut, a refusal's count or
the request's token budget needs (application/prepared_inputs.py), against the fakes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from adapters.tokenizers.word_level import NO_LIMIT
from application.catalogue import CATALOGUE, Catalogue
from application.embedding import EmbeddingService, Limits
from application.lifecycle import ModelRegistry
from domain.errors import InputTooLong, ModelUnavailable, TokenIdOutOfRange, TooManyTokens
from domain.models import ModelSpec
from domain.ports import Tokenizer
from domain.requests import EmbeddingRequest, EmbeddingResult, TokenIds, Truncation
from tests.fakes import BOS, EOS, FakeDecoder, FakeEngine, FakeStore, FakeTokenizer

HUGE = "a " * 500_000  # a million characters, 500,000 one-letter words
MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def _service(
    tmp_path: Path, tokenizer: FakeTokenizer, decoder: FakeDecoder | None, budget: int = 300_000
) -> EmbeddingService:
    def loader(spec: ModelSpec, folder: Path) -> Tokenizer | ModelUnavailable:
        return tokenizer

    registry = ModelRegistry(
        FakeStore({MINILM: tmp_path}), FakeEngine(), loader, ThreadPoolExecutor(max_workers=1)
    )
    limits = Limits(max_total_tokens=budget)
    return EmbeddingService(Catalogue(CATALOGUE), registry, decoder, limits, chunk_overlap=0)


@pytest.fixture
def tokenizer() -> FakeTokenizer:
    return FakeTokenizer()  # 8 tokens: BOS, 6 words, EOS


@pytest.fixture
def decoder() -> FakeDecoder:
    return FakeDecoder()


async def test_a_cut_input_embeds_what_the_cut_keeps(
    tmp_path: Path, tokenizer: FakeTokenizer, decoder: FakeDecoder
) -> None:
    """1,000 words within the budget: 6 are embedded, and usage counts those."""
    service = _service(tmp_path, tokenizer, decoder)
    result = await service.embed(EmbeddingRequest("all-minilm", ["a " * 1000]))
    assert isinstance(result, EmbeddingResult)
    assert result.token_counts == (8,)
    assert result.vectors[0, 0] == BOS + 6 * 1 + EOS


async def test_the_budget_counts_a_cut_input_before_the_cut(
    tmp_path: Path, tokenizer: FakeTokenizer, decoder: FakeDecoder
) -> None:
    """As OpenAI counts them: 20 words and BOS and EOS are 22 tokens, past a budget of 10,
    though the cut would embed 8 of them. Counting stops one token past the budget."""
    service = _service(tmp_path, tokenizer, decoder, budget=10)
    refused = await service.embed(EmbeddingRequest("all-minilm", ["a " * 20]))
    assert refused == TooManyTokens(11, 10, exact=False)
    assert refused.message == "Requested more than 10 tokens, max 10 tokens per request"


async def test_the_budget_counts_every_input_before_its_cut(
    tmp_path: Path, tokenizer: FakeTokenizer, decoder: FakeDecoder
) -> None:
    """Three inputs of 12 tokens each are 36, past 30, though each embeds 8: the first two
    are counted whole (24), the third only to one token past what is left (7)."""
    service = _service(tmp_path, tokenizer, decoder, budget=30)
    refused = await service.embed(EmbeddingRequest("all-minilm", ["a " * 10] * 3))
    assert refused == TooManyTokens(31, 30, exact=False)
    assert tokenizer.limits == [30 - 2, 18 - 2, 6 - 2]


async def test_a_cut_input_past_the_budget_is_read_only_to_the_budget(
    tmp_path: Path, tokenizer: FakeTokenizer, decoder: FakeDecoder
) -> None:
    """500,000 words against 300,000: counting stops one token past the budget."""
    service = _service(tmp_path, tokenizer, decoder)
    refused = await service.embed(EmbeddingRequest("all-minilm", [HUGE]))
    assert isinstance(refused, TooManyTokens)
    assert not refused.exact
    assert tokenizer.limits == [300_000 - 2]  # the text's own tokens, BOS and EOS aside
    assert max(tokenizer.reads) <= 2 * 300_000


async def test_a_refusal_counts_a_short_excess_exactly(
    tmp_path: Path, tokenizer: FakeTokenizer, decoder: FakeDecoder
) -> None:
    """Up to 4 x the model's limit, the refusal says how many tokens the input has."""
    service = _service(tmp_path, tokenizer, decoder)
    request = EmbeddingRequest("all-minilm", ["a " * 20], truncate=Truncation.REFUSE)
    refused = await service.embed(request)
    assert refused == InputTooLong(0, 22, 8)
    assert "has 22 tokens" in refused.message


async def test_a_refusal_of_a_huge_input_reads_only_a_few_times_the_limit(
    tmp_path: Path, tokenizer: FakeTokenizer, decoder: FakeDecoder
) -> None:
    """Past 4 x the limit it says "more than", having read 4 x 6 + 1 words."""
    service = _service(tmp_path, tokenizer, decoder)
    request = EmbeddingRequest("all-minilm", [HUGE], truncate=Truncation.REFUSE)
    refused = await service.embed(request)
    assert refused == InputTooLong(0, 4 * 6 + 1 + 2, 8, exact=False)
    assert "has more than 26 tokens" in refused.message
    assert max(tokenizer.reads) <= 2 * 25


async def test_a_chunked_input_past_the_budget_is_refused_having_read_the_budget(
    tmp_path: Path, tokenizer: FakeTokenizer, decoder: FakeDecoder
) -> None:
    """truncate "chunk" reads the whole text, so the request's budget bounds how much: counted
    before any window, as OpenAI counts them, and no further than one token past it."""
    service = _service(tmp_path, tokenizer, decoder, budget=100)
    request = EmbeddingRequest("all-minilm", [HUGE], truncate=Truncation.CHUNK)
    refused = await service.embed(request)
    assert isinstance(refused, TooManyTokens)
    assert not refused.exact
    assert refused.message == "Requested more than 100 tokens, max 100 tokens per request"
    assert max(tokenizer.reads) <= 2 * 100
    assert tokenizer.limits == [100 - 2]  # the text's own tokens, its special tokens aside


async def test_a_chunked_input_within_the_budget_is_embedded_whole(
    tmp_path: Path, tokenizer: FakeTokenizer, decoder: FakeDecoder
) -> None:
    """Within the budget the windows cover every token, as before."""
    service = _service(tmp_path, tokenizer, decoder, budget=100)
    request = EmbeddingRequest("all-minilm", ["a " * 30], truncate=Truncation.CHUNK)
    result = await service.embed(request)
    assert isinstance(result, EmbeddingResult)
    assert result.token_counts == (5 * 8,)  # five windows of 6 words


async def test_token_ids_count_as_many_as_they_are_and_none_is_decoded_past_the_budget(
    tmp_path: Path, tokenizer: FakeTokenizer, decoder: FakeDecoder
) -> None:
    """500,000 OpenAI ids against the 300,000 budget: they count as OpenAI counts them (with
    BOS and EOS), and the request is refused before any is decoded."""
    service = _service(tmp_path, tokenizer, decoder)
    ids = TokenIds((1,) * 500_000)
    refused = await service.embed(EmbeddingRequest("all-minilm", [ids]))
    assert refused == TooManyTokens(500_002, 300_000)
    assert decoder.decoded == []


async def test_token_ids_within_the_budget_are_decoded_only_as_far_as_the_cut(
    tmp_path: Path, tokenizer: FakeTokenizer, decoder: FakeDecoder
) -> None:
    """200,000 OpenAI ids cut to 6 words: a few dozen are decoded, and usage counts those."""
    service = _service(tmp_path, tokenizer, decoder)
    result = await service.embed(EmbeddingRequest("all-minilm", [TokenIds((1,) * 200_000)]))
    assert isinstance(result, EmbeddingResult)
    assert result.token_counts == (8,)
    assert max(decoder.decoded) <= 4 * 7


async def test_token_ids_within_the_budget_embed_as_the_cut_text(
    tmp_path: Path, tokenizer: FakeTokenizer, decoder: FakeDecoder
) -> None:
    """The row is the one the whole decoded text gives, cut to 6 words."""
    service = _service(tmp_path, tokenizer, decoder)
    result = await service.embed(EmbeddingRequest("all-minilm", [TokenIds((1,) * 1000)]))
    assert isinstance(result, EmbeddingResult)
    assert result.vectors[0, 0] == BOS + 6 * 1 + EOS


async def test_every_token_id_is_checked_though_few_are_decoded(
    tmp_path: Path, tokenizer: FakeTokenizer, decoder: FakeDecoder
) -> None:
    """An unknown id past the cut is still refused."""
    service = _service(tmp_path, tokenizer, decoder)
    ids = TokenIds((1,) * 10_000 + (99,))
    assert await service.embed(EmbeddingRequest("all-minilm", [ids])) == TokenIdOutOfRange(
        99, "fake"
    )


async def test_own_vocabulary_ids_past_the_cut_are_checked_too(
    tmp_path: Path, tokenizer: FakeTokenizer
) -> None:
    """Without a decoder, ids are the model's own: cut, but every one checked."""
    service = _service(tmp_path, tokenizer, None)
    ids = TokenIds((5,) * 10_000 + (100,))
    refused = await service.embed(EmbeddingRequest("all-minilm", [ids]))
    assert refused == TokenIdOutOfRange(100, "model's own")


async def test_a_model_without_a_limit_reads_no_further_than_the_budget(
    tmp_path: Path, decoder: FakeDecoder
) -> None:
    """Word vectors cut nothing: the request's budget is what bounds the reading."""
    unlimited = FakeTokenizer(max_tokens=NO_LIMIT)
    service = _service(tmp_path, unlimited, decoder, budget=100)
    refused = await service.embed(EmbeddingRequest("all-minilm", [HUGE]))
    assert isinstance(refused, TooManyTokens)
    assert not refused.exact  # it says "more than 100", not the 103 tokens it read
    assert max(unlimited.reads) <= 2 * 101
