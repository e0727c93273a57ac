"""Which prompt a request's text gets: sentence-transformers' named prompts, chosen per request.

A model's config_sentence_transformers.json names its prompts (`{"query": "query: ", ...}`);
the text sentence-transformers embeds is exactly `prompt + text`. A request names one of them
(`prompt_name`), gives one literally (`prompt`), or says what its texts are (`input_type`, as
Cohere and Voyage spell it), and these are mutually exclusive. With none, the server's
--default-prompt-name applies where the model defines that name, else no prompt (as TEI and
Ollama do): a model's own `default_prompt_name` is not applied.

`input_type` finds the model's prompt for that role under the names real repos use for it, the
first the model has: query under "query" (mxbai-embed-large, snowflake-arctic-embed, Qwen3,
embeddinggemma, nomic), "search_query" or "Retrieval-query"; document under "document",
"passage" (e5-style repos), "search_document", "Retrieval-document" or "corpus". A model with
none of them gets no prompt for that role: the input type is a hint, and a repo that names no
document prompt (many do not) embeds documents bare.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from domain.errors import InvalidInput

__all__ = ["InputType", "LiteralPrompt", "PromptChoice", "PromptName", "choose_prompt"]


class InputType(enum.StrEnum):
    """What a request's texts are; the wire's spellings map here (Cohere's and Voyage's)."""

    QUERY = "query"
    DOCUMENT = "document"
    CLASSIFICATION = "classification"
    CLUSTERING = "clustering"


# the prompt names that serve each input type, most common first
_NAMES_FOR: Mapping[InputType, tuple[str, ...]] = {
    InputType.QUERY: ("query", "search_query", "Retrieval-query"),
    InputType.DOCUMENT: ("document", "passage", "search_document", "Retrieval-document", "corpus"),
    InputType.CLASSIFICATION: ("classification", "Classification"),
    InputType.CLUSTERING: ("clustering", "Clustering"),
}


@dataclass(frozen=True, slots=True)
class PromptName:
    name: str


@dataclass(frozen=True, slots=True)
class LiteralPrompt:
    text: str


PromptChoice = PromptName | LiteralPrompt | InputType


def choose_prompt(
    choice: PromptChoice | None, prompts: Mapping[str, str], default_name: str | None = None
) -> str | InvalidInput:
    """The text to put before each input ("" for none), or why the request's choice is wrong."""
    match choice:
        case None:
            return prompts.get(default_name, "") if default_name is not None else ""
        case LiteralPrompt(text=text):
            return text
        case PromptName(name=name):
            if name in prompts:
                return prompts[name]
            known = ", ".join(repr(n) for n in sorted(prompts)) or "none"
            return InvalidInput(
                f"prompt_name {name!r} is not one of the model's prompts ({known})",
                param="prompt_name",
            )
        case InputType():
            found = next((n for n in _NAMES_FOR[choice] if n in prompts), None)
            return "" if found is None else prompts[found]
