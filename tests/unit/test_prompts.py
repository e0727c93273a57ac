"""Prompts: which one a request gets, and what the pipeline does with it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np
import pytest

from application.catalogue import CATALOGUE, Catalogue
from application.embedding import EmbeddingService
from application.embedding_cache import EmbeddingCache
from application.lifecycle import ModelRegistry
from domain.chunking import pool_windows
from domain.errors import InvalidInput
from domain.prompts import InputType, LiteralPrompt, PromptName, choose_prompt
from domain.requests import EmbeddingRequest, EmbeddingResult, Truncation
from tests.fakes import BOS, EOS, FakeDecoder, FakeTokenizer

if TYPE_CHECKING:
    from pathlib import Path

    from domain.models import ModelSpec
    from tests.fakes import FakeEngine, FakeStore

PROMPTS = {"query": "find this:", "passage": "doc:", "other": "x y z"}


# --- choosing ----------------------------------------------------------------------------------


def test_a_prompt_name_picks_the_models_prompt() -> None:
    """prompt_name gives the text the model names so."""
    assert choose_prompt(PromptName("passage"), PROMPTS) == "doc:"


def test_an_unknown_prompt_name_is_refused_with_the_models_names() -> None:
    """A name the model does not define is an InvalidInput on prompt_name listing its names."""
    refused = choose_prompt(PromptName("Query"), PROMPTS)
    assert isinstance(refused, InvalidInput)
    assert refused.param == "prompt_name"
    assert "'other', 'passage', 'query'" in refused.message


def test_a_literal_prompt_is_used_as_given() -> None:
    """prompt is the literal text, whatever the model names."""
    assert choose_prompt(LiteralPrompt("anything: "), PROMPTS) == "anything: "


def test_input_types_find_the_role_under_the_names_repos_use() -> None:
    """query finds "query"; document finds "passage" where the model has no "document"."""
    assert choose_prompt(InputType.QUERY, PROMPTS) == "find this:"
    assert choose_prompt(InputType.DOCUMENT, PROMPTS) == "doc:"
    assert choose_prompt(InputType.DOCUMENT, {"search_document": "sd: "}) == "sd: "


def test_an_input_type_the_model_has_no_prompt_for_gets_none() -> None:
    """A role the model names no prompt for embeds the text bare."""
    assert choose_prompt(InputType.CLUSTERING, PROMPTS) == ""
    assert choose_prompt(InputType.QUERY, {}) == ""


def test_the_default_prompt_name_applies_only_where_the_model_defines_it() -> None:
    """No choice: the server's default name where the model has it, else no prompt; a model's
    own default is not the server's."""
    assert choose_prompt(None, PROMPTS, "query") == "find this:"
    assert choose_prompt(None, {"document": "d: "}, "query") == ""
    assert choose_prompt(None, PROMPTS) == ""


# --- the pipeline ------------------------------------------------------------------------------


def _registry(store: FakeStore, engine: FakeEngine, *, pools_prompt: bool) -> ModelRegistry:
    def loader(spec: ModelSpec, folder: Path) -> FakeTokenizer:
        return FakeTokenizer(max_tokens=8, prompts=PROMPTS, pools_prompt=pools_prompt)

    return ModelRegistry(store, engine, loader, ThreadPoolExecutor(max_workers=1))


def _service(
    registry: ModelRegistry, *, cache: EmbeddingCache | None = None, default: str | None = None
) -> EmbeddingService:
    return EmbeddingService(
        Catalogue(CATALOGUE),
        registry,
        FakeDecoder(),
        cache=cache,
        chunk_overlap=0,
        default_prompt_name=default,
    )


def _ok(result: object) -> EmbeddingResult:
    assert isinstance(result, EmbeddingResult), result
    return result


@pytest.fixture
def pooled(store: FakeStore, engine: FakeEngine) -> EmbeddingService:
    return _service(_registry(store, engine, pools_prompt=True))


async def test_the_prompt_goes_before_the_text_and_counts_in_its_tokens(
    pooled: EmbeddingService,
) -> None:
    """The model sees prompt + text as one text; usage counts the prompt's tokens."""
    request = EmbeddingRequest("all-minilm", ["a bb"], prompt=PromptName("query"))
    result = _ok(await pooled.embed(request))
    # exactly prompt + text, "find this:a bb": words of 4, 6, 2 letters between BOS and EOS
    assert result.vectors[0].tolist() == [BOS + 4 + 6 + 2 + EOS, 5, 3, 4]
    assert result.token_counts == (5,)


async def test_a_cut_keeps_the_prompt_and_the_start_of_the_text(pooled: EmbeddingService) -> None:
    """prompt + text is cut as one: the prompt stays, the text's end goes."""
    request = EmbeddingRequest("all-minilm", ["a " * 20], prompt=LiteralPrompt("ccc "))
    result = _ok(await pooled.embed(request))
    assert result.vectors[0].tolist() == [BOS + 3 + 5 * 1 + EOS, 8, 3, 4]


async def test_every_window_of_a_chunked_input_starts_with_the_prompt(
    pooled: EmbeddingService, engine: FakeEngine
) -> None:
    """Chunking cuts the text into windows, each behind the prompt's tokens."""
    request = EmbeddingRequest(
        "all-minilm", ["a " * 8], prompt=LiteralPrompt("ccc "), truncate=Truncation.CHUNK
    )
    result = _ok(await pooled.embed(request))
    # 8 - 2 specials - 1 prompt token: windows of 5 words, then 3: both behind "ccc"
    windows = np.array(
        [[BOS + 3 + 5 + EOS, 8, 3, 4], [BOS + 3 + 3 + EOS, 6, 3, 4]], dtype=np.float32
    )
    np.testing.assert_allclose(result.vectors[0], pool_windows(windows, [8, 6]), rtol=1e-6)
    assert result.token_counts == (14,)
    assert engine.encoder.batches  # the windows ran


async def test_an_unknown_prompt_name_refuses_the_request(pooled: EmbeddingService) -> None:
    """The refusal comes before anything is embedded."""
    request = EmbeddingRequest("all-minilm", ["a"], prompt=PromptName("nope"))
    assert isinstance(await pooled.embed(request), InvalidInput)


async def test_the_servers_default_prompt_applies_when_a_request_chooses_none(
    store: FakeStore, engine: FakeEngine
) -> None:
    """--default-prompt-name query: a request without prompt fields gets the query prompt."""
    service = _service(_registry(store, engine, pools_prompt=True), default="passage")
    result = _ok(await service.embed(EmbeddingRequest("all-minilm", ["a"])))
    assert result.vectors[0].tolist() == [BOS + 5 + EOS, 3, 3, 4]  # "doc:a"


async def test_where_pooling_leaves_the_prompt_out_its_tokens_are_marked(
    store: FakeStore, engine: FakeEngine
) -> None:
    """include_prompt false: BOS and the prompt's words carry PROMPT_TOKEN (2) in the mask."""
    service = _service(_registry(store, engine, pools_prompt=False))
    request = EmbeddingRequest("all-minilm", ["a bb"], prompt=LiteralPrompt("ccc "))
    result = _ok(await service.embed(request))
    # mask [2, 2, 1, 1, 1]: the fake sums ids x mask and the mask itself
    assert result.vectors[0].tolist() == [2 * BOS + 2 * 3 + 1 + 2 + EOS, 7, 3, 4]


async def test_the_cache_tells_a_left_out_prompt_from_the_same_words_in_the_text(
    store: FakeStore, engine: FakeEngine
) -> None:
    """ "ccc" + "a" as prompt and text, and "ccc a" as text, have the same ids and other rows."""
    service = _service(_registry(store, engine, pools_prompt=False), cache=EmbeddingCache(1 << 20))
    prompted = EmbeddingRequest("all-minilm", ["a"], prompt=LiteralPrompt("ccc "))
    first = _ok(await service.embed(prompted))
    plain = _ok(await service.embed(EmbeddingRequest("all-minilm", ["ccc a"])))
    again = _ok(await service.embed(prompted))
    assert first.vectors[0].tolist() != plain.vectors[0].tolist()
    assert again.vectors[0].tolist() == first.vectors[0].tolist()
