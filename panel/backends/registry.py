"""Backend names to lazily imported classes, and the one parser of `backend:model` specs."""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..errors import BackendSpecError, ConfigError, MissingDependencyError
from .base import Backend, MemberSpec
from .options import MemberOptions, OptionError
from .urls import redacted, refuse_credentials

__all__ = [
    "BACKENDS",
    "MemberSpec",
    "backend_class",
    "create_backend",
    "options_model",
    "parse_member",
    "recorded_member",
]

# name -> (module, class, the SDK module whose absence means the extra is missing)
BACKENDS: dict[str, tuple[str, str, str | None]] = {
    # the local backend checks for its engine itself: either of two packages will do
    "local": ("panel.backends.local", "LocalBackend", None),
    "fake": ("panel.backends.fake", "FakeBackend", None),
    "openai": ("panel.backends.openai", "OpenAIBackend", "openai"),
    "anthropic": ("panel.backends.anthropic", "AnthropicBackend", "anthropic"),
    "mistral": ("panel.backends.mistral", "MistralBackend", "mistralai"),
    "hf": ("panel.backends.hf", "HFBackend", "huggingface_hub"),
}


def parse_member(
    spec: str, options: Mapping[str, Any] | MemberOptions | None = None, name: str | None = None
) -> MemberSpec:
    """Parse `backend[:model]` (only the first colon splits, so URLs and paths survive) and
    validate its options into the backend's options model: an `OptionError` names a bad one."""
    backend, _, model = spec.strip().partition(":")
    backend = backend.strip().lower()
    if not backend:
        raise BackendSpecError(f"empty backend spec '{spec}': write backend or backend:model")
    if backend not in BACKENDS:
        close = difflib.get_close_matches(backend, list(BACKENDS), n=2, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise BackendSpecError(
            f"unknown backend '{backend}' in '{redacted(spec)}' (known: {', '.join(sorted(BACKENDS))}){hint}"
        )
    # A model may be an endpoint's URL (hf:https://...): never one with a key in it.
    refuse_credentials(model.strip(), f"backend '{backend}'")
    return MemberSpec(backend, model.strip() or None, options_model(backend).of(backend, options), name)


def recorded_member(
    run_id: str, index: int, recorded: Mapping[str, Any], options: Mapping[str, Any] | None = None
) -> MemberSpec:
    """A member as a run recorded it (`--resume`, `panel batches cancel`), with `options`
    in place of the recorded ones when given; one line naming the run and the member when
    what it recorded no longer validates (a run of another panel version)."""
    try:
        return parse_member(
            recorded["spec"], recorded["options"] if options is None else options, recorded.get("name")
        )
    except OptionError as exc:
        raise ConfigError(f"run '{run_id}': members[{index}].{exc.option}: {exc.reason}") from None
    except BackendSpecError as exc:
        raise ConfigError(f"run '{run_id}': members[{index}].spec: {exc}") from None


def _load_class(name: str) -> type[Backend]:
    # Backend modules import their SDK only when they call it, so this works without it.
    module_name, class_name, _ = BACKENDS[name]
    cls: type[Backend] = getattr(importlib.import_module(module_name), class_name)
    return cls


def options_model(name: str) -> type[MemberOptions]:
    """The model of a backend's own options; needs no SDK, so a config checks without extras."""
    return _load_class(name).options_model


def backend_class(name: str) -> type[Backend]:
    cls = _load_class(name)
    sdk = BACKENDS[name][2]
    if sdk is not None and importlib.util.find_spec(sdk) is None:
        raise MissingDependencyError(name, cls.extra or name, sdk)
    return cls


def create_backend(spec: MemberSpec) -> Backend:
    """Build the backend for a member; bad specs raise a UserError before any work starts."""
    cls = backend_class(spec.backend)
    # Parsed specs hold the backend's model already; a spec made by hand may hold the base one.
    spec = replace(spec, options=cls.options_model.of(cls.name, spec.options))
    backend = cls.from_spec(spec)
    backend.member_name = spec.name
    backend.options = spec.options
    return backend
