"""The request fields that choose a prompt and normalisation, shared by both dialects.

Neither OpenAI's nor Ollama's API has them; they are spelled as the servers that do spell them:
`prompt_name` and `prompt` as sentence-transformers' encode() and TEI, `input_type` as Cohere
(`search_query`, `search_document`, `classification`, `clustering`) and Voyage (`query`,
`document`), `normalize` as vLLM. How a choice finds the model's prompt: domain/prompts.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from msgspec import Meta

from domain.errors import InvalidInput
from domain.prompts import InputType, LiteralPrompt, PromptChoice, PromptName

__all__ = [
    "InputTypeField",
    "NormalizeField",
    "PromptField",
    "PromptNameField",
    "prompt_choice",
]

WireInputType = Literal[
    "search_query", "query", "search_document", "document", "classification", "clustering"
]
_INPUT_TYPES: Mapping[str, InputType] = {
    "search_query": InputType.QUERY,
    "query": InputType.QUERY,
    "search_document": InputType.DOCUMENT,
    "document": InputType.DOCUMENT,
    "classification": InputType.CLASSIFICATION,
    "clustering": InputType.CLUSTERING,
}

PromptNameField = Annotated[
    str | None,
    Meta(
        description="embedserve's own field, as sentence-transformers and TEI spell it: the "
        "name of one of the model's prompts (config_sentence_transformers.json), put before "
        "each text input as sentence-transformers does. A name the model does not define is a "
        "400 that lists its names. At most one of prompt_name, prompt and input_type. None of "
        "them: the server's --default-prompt-name where the model defines it, else no prompt."
    ),
]
PromptField = Annotated[
    str | None,
    Meta(
        description="embedserve's own field: a literal text put before each text input (as "
        "sentence-transformers' encode(prompt=...)). At most one of prompt_name, prompt and "
        "input_type."
    ),
]
InputTypeField = Annotated[
    WireInputType | None,
    Meta(
        description="embedserve's own field, as Cohere and Voyage spell it: what the inputs "
        "are. search_query / query take the model's query prompt (named query, search_query "
        "or Retrieval-query), search_document / document its document prompt (document, "
        "passage, search_document, Retrieval-document or corpus), classification and "
        "clustering the prompt of that name; a model without such a prompt gets none. At most "
        "one of prompt_name, prompt and input_type."
    ),
]
NormalizeField = Annotated[
    bool | None,
    Meta(
        description="embedserve's own field, as vLLM spells it: false returns the model's own "
        "output (sentence-transformers' encode), which is a unit vector only where the model "
        "ends in a Normalize module; `dimensions` then only cuts. Absent or true: unit vectors, "
        "as OpenAI, TEI, infinity, vLLM and Ollama return."
    ),
]


def prompt_choice(
    prompt_name: str | None, prompt: str | None, input_type: str | None
) -> PromptChoice | InvalidInput | None:
    """The request's prompt fields as one choice; None where it makes none."""
    given = [
        (field, value)
        for field, value in (
            ("prompt_name", prompt_name),
            ("prompt", prompt),
            ("input_type", input_type),
        )
        if value is not None
    ]
    if len(given) > 1:
        names = " and ".join(field for field, _ in given)
        return InvalidInput(
            f"give at most one of prompt_name, prompt and input_type, not {names}",
            param=given[1][0],
        )
    if prompt_name is not None:
        return PromptName(prompt_name)
    if prompt is not None:
        return LiteralPrompt(prompt)
    return None if input_type is None else _INPUT_TYPES[input_type]
