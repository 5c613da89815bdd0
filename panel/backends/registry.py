"""Backend names to lazily imported classes, and the one parser of `backend:model` specs."""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from dataclasses import dataclass, field
from typing import Any

from ..errors import BackendSpecError, MissingDependencyError
from .base import Backend

__all__ = ["BACKENDS", "MemberSpec", "backend_class", "create_backend", "parse_member"]

# name -> (module, class, the SDK module whose absence means the extra is missing)
BACKENDS: dict[str, tuple[str, str, str | None]] = {
    "local": ("panel.backends.local", "LocalBackend", "llama_cpp"),
    "fake": ("panel.backends.fake", "FakeBackend", None),
    "openai": ("panel.backends.openai_backend", "OpenAIBackend", "openai"),
    "anthropic": ("panel.backends.anthropic_backend", "AnthropicBackend", "anthropic"),
    "mistral": ("panel.backends.mistral_backend", "MistralBackend", "mistralai"),
    "hf": ("panel.backends.hf_backend", "HFBackend", "huggingface_hub"),
}


@dataclass(frozen=True)
class MemberSpec:
    """One panel member as the user wrote it, plus its configured options."""

    backend: str
    model: str | None = None
    options: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def text(self) -> str:
        return f"{self.backend}:{self.model}" if self.model else self.backend


def parse_member(spec: str, options: dict[str, Any] | None = None) -> MemberSpec:
    """Parse `backend[:model]`. Only the first colon splits, so URLs and paths survive."""
    name, _, model = spec.strip().partition(":")
    name = name.strip().lower()
    if not name:
        raise BackendSpecError(f"empty backend spec '{spec}': write backend or backend:model")
    if name not in BACKENDS:
        close = difflib.get_close_matches(name, list(BACKENDS), n=2, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise BackendSpecError(
            f"unknown backend '{name}' in '{spec}' (known: {', '.join(sorted(BACKENDS))}){hint}"
        )
    return MemberSpec(name, model.strip() or None, dict(options or {}))


def backend_class(name: str) -> type[Backend]:
    module_name, class_name, sdk = BACKENDS[name]
    module = importlib.import_module(module_name)
    cls: type[Backend] = getattr(module, class_name)
    if sdk is not None and importlib.util.find_spec(sdk) is None:
        raise MissingDependencyError(name, cls.extra or name, sdk)
    return cls


def create_backend(spec: MemberSpec) -> Backend:
    """Build the backend for a member; bad specs raise a UserError before any work starts."""
    cls = backend_class(spec.backend)
    return cls.from_spec(spec)
