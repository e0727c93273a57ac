from __future__ import annotations

import numpy as np
import pytest

from application.embedding import EmbeddingService, Limits
from application.lifecycle import ModelRegistry
from domain.errors import (
    FamilyNotSupported,
    InputTooLong,
    InvalidDimensions,
    ModelNotFound,
    TokenIdOutOfRange,
    TooManyInputs,
    TooManyTokens,
)
from domain.requests import EmbeddingRequest, EmbeddingResult, Normalization, TokenIds, Truncation
from tests.fakes import BOS, EOS, FakeStore


def _ok(result: object) -> EmbeddingResult:
    assert isinstance(result, EmbeddingResult), result
    return result


async def test_vectors_come_back_in_input_order(service: EmbeddingService) -> None:
    """Batching sorts by length; the result is still in the order the inputs were given."""
    texts = ["a bb ccc", "dddd", "", "ee f"]
    result = _ok(await service.embed(EmbeddingRequest("all-minilm", texts)))
    sums = result.vectors[:, 0].tolist()
    assert sums == [BOS + 1 + 2 + 3 + EOS, BOS + 4 + EOS, BOS + EOS, BOS + 2 + 1 + EOS]
    assert result.token_counts == (5, 3, 2, 4)
    assert result.prompt_tokens == 14


async def test_result_names_the_catalogue_entry(service: EmbeddingService) -> None:
    """An alias is resolved; the result says which entry served it."""
    result = _ok(await service.embed(EmbeddingRequest("all-minilm", ["x"])))
    assert result.model == "all-MiniLM-L6-v2:latest"


async def test_unknown_model_is_model_not_found(service: EmbeddingService) -> None:
    """A name outside the catalogue is refused before anything is loaded."""
    assert await service.embed(EmbeddingRequest("nope", ["x"])) == ModelNotFound("nope")


async def test_family_without_engine_is_refused_before_download(
    service: EmbeddingService, store: FakeStore
) -> None:
    """A CLIP name answers FamilyNotSupported, and the store is never asked to fetch it."""
    result = await service.embed(EmbeddingRequest("clip-vit-base-patch32", ["x"]))
    assert isinstance(result, FamilyNotSupported)
    assert store.fetches == []


async def test_long_input_is_cut_at_the_limit_keeping_special_tokens(
    service: EmbeddingService,
) -> None:
    """With truncation on, the model sees max_tokens tokens, BOS first and EOS last."""
    result = _ok(await service.embed(EmbeddingRequest("all-minilm", ["a " * 20])))
    assert result.token_counts == (8,)
    assert result.vectors[0, 0] == BOS + 6 * 1 + EOS


async def test_long_input_without_truncation_is_input_too_long(service: EmbeddingService) -> None:
    """Truncation.REFUSE refuses the input, naming which one and its full length."""
    request = EmbeddingRequest("all-minilm", ["ok", "a " * 20], truncate=Truncation.REFUSE)
    assert await service.embed(request) == InputTooLong(index=1, tokens=22, limit=8)


async def test_more_inputs_than_the_limit_are_refused(registry: object) -> None:
    """The per-request item cap applies before the model is touched."""
    from application.catalogue import CATALOGUE, Catalogue

    service = EmbeddingService(Catalogue(CATALOGUE), registry, None, Limits(max_inputs=3))  # type: ignore[arg-type]
    result = await service.embed(EmbeddingRequest("all-minilm", ["a"] * 4))
    assert result == TooManyInputs(4, 3)


async def test_more_tokens_than_the_request_budget_are_refused(registry: object) -> None:
    """The summed-token cap counts what the model would see."""
    from application.catalogue import CATALOGUE, Catalogue

    limits = Limits(max_total_tokens=5)
    service = EmbeddingService(Catalogue(CATALOGUE), registry, None, limits)  # type: ignore[arg-type]
    result = await service.embed(EmbeddingRequest("all-minilm", ["a b", "c d"]))
    assert result == TooManyTokens(8, 5)


@pytest.mark.parametrize("d", [0, 5, 100])
async def test_dimensions_out_of_range_are_refused(service: EmbeddingService, d: int) -> None:
    """OpenAI semantics: d must lie in 1..dimensions."""
    result = await service.embed(EmbeddingRequest("all-minilm", ["x"], dimensions=d))
    assert result == InvalidDimensions(d, 4)


async def test_lenient_dimensions_out_of_range_are_ignored(service: EmbeddingService) -> None:
    """Ollama semantics: an out-of-range d leaves the vector whole."""
    request = EmbeddingRequest(
        "all-minilm",
        ["x"],
        dimensions=9,
        lenient_dimensions=True,
        normalization=Normalization.MODEL,
    )
    result = _ok(await service.embed(request))
    assert result.vectors.shape == (1, 4)


async def test_dimensions_cut_then_renormalise(service: EmbeddingService) -> None:
    """dimensions=2 keeps the first two components, scaled to unit length."""
    request = EmbeddingRequest(
        "all-minilm", ["abc"], dimensions=2, normalization=Normalization.ALWAYS
    )
    result = _ok(await service.embed(request))
    raw = np.array([BOS + 3 + EOS, 3.0])
    np.testing.assert_allclose(result.vectors[0], raw / np.linalg.norm(raw), rtol=1e-6)


async def test_dimensions_without_normalisation_only_cut(service: EmbeddingService) -> None:
    """With the model's own output asked for (`"normalize": false`), dimensions=2 only cuts."""
    request = EmbeddingRequest("all-minilm", ["abc"], dimensions=2)
    result = _ok(await service.embed(request))
    assert result.vectors[0].tolist() == [BOS + 3 + EOS, 3.0]


async def test_always_normalization_gives_unit_rows(service: EmbeddingService) -> None:
    """Ollama's /api/embed asks for unit-length vectors whatever the model does."""
    request = EmbeddingRequest("all-minilm", ["a", "bb cc"], normalization=Normalization.ALWAYS)
    result = _ok(await service.embed(request))
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1.0, rtol=1e-6)


async def test_model_normalization_leaves_the_model_output_alone(service: EmbeddingService) -> None:
    """OpenAI dialect: the model's own pipeline decides (the fake does not normalise)."""
    result = _ok(await service.embed(EmbeddingRequest("all-minilm", ["a"])))
    assert result.vectors[0].tolist() == [BOS + 1 + EOS, 3.0, 3.0, 4.0]


async def test_token_ids_are_decoded_then_tokenized_by_the_model(service: EmbeddingService) -> None:
    """OpenAI ids go through the decoder to text, then the model's own tokenizer."""
    result = _ok(await service.embed(EmbeddingRequest("all-minilm", [TokenIds((3, 1))])))
    assert result.vectors[0, 0] == BOS + 3 + 1 + EOS


async def test_token_id_outside_the_decoder_vocabulary_is_refused(
    service: EmbeddingService,
) -> None:
    """An id the decoder does not know is a client error, named."""
    result = await service.embed(EmbeddingRequest("all-minilm", [TokenIds((3, 77))]))
    assert result == TokenIdOutOfRange(77, "fake")


async def test_model_vocabulary_ids_are_wrapped_in_special_tokens(registry: object) -> None:
    """Without a decoder, ids are the model's own: wrapped in BOS/EOS and range-checked."""
    from application.catalogue import CATALOGUE, Catalogue

    service = EmbeddingService(Catalogue(CATALOGUE), registry, None)  # type: ignore[arg-type]
    result = _ok(await service.embed(EmbeddingRequest("all-minilm", [TokenIds((5, 6))])))
    assert result.vectors[0, 0] == BOS + 5 + 6 + EOS
    refused = await service.embed(EmbeddingRequest("all-minilm", [TokenIds((5, 100))]))
    assert refused == TokenIdOutOfRange(100, "model's own")


async def test_empty_input_list_loads_the_model_and_embeds_nothing(
    service: EmbeddingService, registry: ModelRegistry
) -> None:
    """Ollama's preload idiom: no inputs, a loaded model, an empty result."""
    result = _ok(await service.embed(EmbeddingRequest("all-minilm", [])))
    assert result.vectors.shape == (0, 4)
    assert [m.spec.name for m in registry.resident()] == ["all-MiniLM-L6-v2"]
