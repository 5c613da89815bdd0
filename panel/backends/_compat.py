"""What OpenAI-style servers (llama.cpp, llama-cpp-python, vLLM, TGI) need beyond the OpenAI
API: the `structured` setting, sampling extras, and string caps in a schema they compile.

Nothing here imports a provider SDK.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from .base import BackendOptions
from .structured import Structured

__all__ = ["RESERVED", "STANDARD_SAMPLING", "ServerOptions", "fit_for_grammar", "split_sampling"]

#: Request fields the backend sets itself; a sampling extra may not replace them.
RESERVED = frozenset(
    {
        "model",
        "messages",
        "response_format",
        "tools",
        "tool_choice",
        "stream",
        "temperature",
        "top_p",
        "seed",
        "max_tokens",
        "max_completion_tokens",
    }
)
#: Sampling settings the OpenAI API itself names; any other goes in the request body as is.
STANDARD_SAMPLING = frozenset({"frequency_penalty", "presence_penalty"})

SamplingValue = float | int | bool | str


class ServerOptions(BackendOptions):
    #: how the review is held to its schema (see `panel.backends.structured`)
    structured: Structured = "auto"
    #: sampling settings beyond temperature, top_p and seed, as the server names them:
    #: `frequency_penalty`, `presence_penalty`, or a server's own such as `repeat_penalty`
    sampling: dict[str, SamplingValue] = Field(default_factory=dict)
    #: cap free-text fields by the token budget when the server compiles the schema to a
    #: grammar, so a small model reaches the closing brace; unset: on with a `base_url`
    fit_strings: bool | None = None

    @field_validator("sampling")
    @classmethod
    def _not_reserved(cls, value: dict[str, SamplingValue]) -> dict[str, SamplingValue]:
        taken = sorted(set(value) & RESERVED)
        if taken:
            raise ValueError(
                f"sampling cannot set {', '.join(taken)}: the panel sets it (temperature, top_p and "
                "seed come from the run's sampling settings)"
            )
        return value


def split_sampling(extras: dict[str, SamplingValue]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(settings the SDK takes as keywords, settings that go in the body as they are)."""
    named = {k: v for k, v in extras.items() if k in STANDARD_SAMPLING}
    body = {k: v for k, v in extras.items() if k not in STANDARD_SAMPLING}
    return named, body


def fit_for_grammar(schema: dict[str, Any], max_tokens: int) -> dict[str, Any]:
    """The schema with the same free-text caps the embedded backend puts in its grammar."""
    from .local import fit_schema

    return fit_schema(schema, max_tokens)
