"""What OpenAI-style servers (llama.cpp, llama-cpp-python, vLLM, TGI) need beyond the OpenAI
API: the `structured` setting, sampling extras, and string caps in a schema they compile.

Nothing here imports a provider SDK.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from ..depth import BUDGETS, Depth
from ..memo import ByIdentity
from ._provider import json_schema_format
from .base import Backend, Reply, Request
from .options import StructuredOptions
from .structured import FORMS, Form, Negotiator, json_object_format, schema_in_prompt, tool_params
from .urls import names_a_credential

__all__ = [
    "RESERVED",
    "STANDARD_SAMPLING",
    "NegotiatingBackend",
    "ServerBackend",
    "ServerOptions",
    "fit_for_grammar",
    "split_sampling",
]

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


class ServerOptions(StructuredOptions):
    #: sampling settings beyond temperature, top_p and seed, as the server names them:
    #: `frequency_penalty`, `presence_penalty`, or a server's own such as `repeat_penalty`
    sampling: dict[str, SamplingValue] = Field(default_factory=dict)
    #: cap free-text fields by the token budget when the server compiles the schema to a
    #: grammar, so a small model reaches the closing brace; unset: on with a `base_url`
    fit_strings: bool | None = None

    @field_validator("sampling")
    @classmethod
    def _not_reserved(cls, value: dict[str, SamplingValue]) -> dict[str, SamplingValue]:
        secret = next((name for name in value if names_a_credential(name)), None)
        if secret is not None:
            raise ValueError(
                f"sampling cannot set {secret!r}: it carries a key, and keys are read from the "
                "environment only; name the variable with api_key_env"
            )
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


def fit_schema(
    schema: dict[str, Any], max_tokens: int, depth: Depth = "brief", max_length: int | None = None
) -> dict[str, Any]:
    """Cap the length of free-text fields so a whole reply fits in `max_tokens`.

    A grammar makes the model write valid JSON, but only if it gets to the closing brace;
    caps sized from the token budget keep it from running out mid-string. No field gets more
    than the depth allows it (`panel.depth`), however large the budget, nor more than
    `max_length` characters beyond its `minLength`: the most the converter that compiles the
    schema takes (`panel.backends.structured.MAX_LENGTH`).
    """
    budget = BUDGETS[depth]
    fields: list[tuple[dict[str, Any], str]] = []
    key_chars = 0

    def walk(node: Any, name: str) -> Any:
        nonlocal key_chars
        if not isinstance(node, dict):
            return node
        out = {k: (walk(v, k) if k == "items" else v) for k, v in node.items()}
        if "properties" in node:
            out["properties"] = {k: walk(v, k) for k, v in node["properties"].items()}
            key_chars += sum(len(k) + 6 for k in node["properties"])
        if out.get("type") == "string" and "enum" not in out:
            if "maxLength" not in out:
                fields.append((out, name))
            elif max_length is not None:
                out["maxLength"] = min(out["maxLength"], out.get("minLength", 0) + max_length)
        return out

    fitted: dict[str, Any] = walk(schema, "")
    # About 3 characters a token for English prose: cautious, so the cap is rarely hit.
    structure_tokens = key_chars // 3 + 16
    room = max(len(fields), (max_tokens - structure_tokens) * 3)
    weights = [budget.weight(name) for _, name in fields]
    total = sum(weights) or 1
    for (node, name), w in zip(fields, weights, strict=True):
        ceiling = budget.ceiling(name)
        if max_length is not None:
            ceiling = min(ceiling, node.get("minLength", 0) + max_length)
        node["maxLength"] = max(node.get("minLength", 1), min(ceiling, room * w // total))
    return fitted


#: every request of a persona carries the same schema and budget: fit it once
_fitted: ByIdentity[dict[str, Any]] = ByIdentity(fit_schema)


def fit_for_grammar(
    schema: dict[str, Any], max_tokens: int, depth: Depth = "brief", max_length: int | None = None
) -> dict[str, Any]:
    """The schema with the same free-text caps the embedded backend puts in its grammar,
    none longer than `max_length` (the form's bound, `structured.MAX_LENGTH`).

    The result is shared between requests: never change it in place.
    """
    return _fitted(schema, max_tokens, depth, max_length)


class NegotiatingBackend(Backend):
    """A backend that sends the schema in one of the shared structured forms, fixed by its
    `structured` setting or found under `auto` by its `Negotiator`."""

    negotiator: Negotiator

    def negotiated_form(self) -> str | None:
        return self.negotiator.negotiated

    def adopt_form(self, form: str, max_length: int | None = None) -> None:
        self.negotiator.adopt(form, max_length)

    async def generate(self, request: Request) -> Reply:
        return await self.negotiator.send(lambda form: self._call(request, form))

    async def _call(self, request: Request, form: Form) -> Reply:
        raise NotImplementedError

    def wire(self, request: Request) -> dict[str, Any]:
        return self.body(request, self.negotiator.current)

    def body(self, request: Request, form: Form) -> dict[str, Any]:
        """The request body as it goes on the wire in `form` (the batch route sends the same)."""
        body = self._params(request, form)
        body.update(body.pop("extra_body", {}))
        return body

    def _params(self, request: Request, form: Form) -> dict[str, Any]:
        """The request as the SDK's keywords; what the SDK does not name in `extra_body`."""
        raise NotImplementedError


class ServerBackend(NegotiatingBackend):
    """What the OpenAI-style backends share: the negotiated structured form, the sampling
    extras, and the string caps, set up once and sent the same way."""

    sampling: dict[str, SamplingValue]
    fit_strings: bool

    def _serve(
        self,
        structured: str,
        order: tuple[Form, ...],
        sampling: dict[str, SamplingValue] | None,
        fit_strings: bool | None,
        base_url: str | None,
    ) -> None:
        self.negotiator = Negotiator(structured, order, FORMS)
        self.sampling = dict(sampling or {})
        # Servers behind a base_url compile the schema to a grammar; OpenAI's strict mode
        # would refuse the length caps.
        self.fit_strings = base_url is not None if fit_strings is None else fit_strings

    def identity(self) -> dict[str, Any]:
        found = super().identity()
        if self.sampling:
            found["sampling"] = self.sampling  # they change what the model says
        return found

    def string_cap(self) -> int | None:
        form = self.negotiator.form
        return None if form is None or not self.fit_strings else self.negotiator.max_length(form)

    def _fitted(self, request: Request, form: Form) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """(the schema as this form sends it, sampling keywords, sampling body fields)."""
        schema = request.schema
        if self.fit_strings and form != "prompt":
            cap = self.negotiator.max_length(form)
            schema = fit_for_grammar(schema, request.sampling.max_tokens, request.depth, cap)
        named, body = split_sampling(self.sampling)
        return schema, named, body

    def _shape(
        self, params: dict[str, Any], request: Request, form: Form, schema: dict[str, Any], *, strict: bool
    ) -> None:
        """Put the schema into `params` the way `form` asks for it."""
        if form == "json_schema":
            params["response_format"] = json_schema_format(request.schema_name, schema, strict=strict)
        elif form == "json_object":
            params["response_format"] = json_object_format(schema)
        elif form == "tools":
            params.update(tool_params(request.schema_name, schema))
        else:
            params["messages"] = schema_in_prompt(request.messages, schema)
