"""Panel configuration: `panel.toml`, or `[tool.panel]` in pyproject.toml.

    [[members]]
    spec = "openai:gpt-4.1-mini"       # backend:model
    concurrency = 8
    rpm = 500                            # requests per minute
    tpm = 200000                         # tokens per minute
    price_input = 0.40                   # USD per million tokens
    price_output = 1.60

    [[members]]
    spec = "openai:qwen2.5:7b"
    name = "ollama"                      # how --backend may refer to it
    base_url = "http://127.0.0.1:11434/v1"

    [retry]                              # one policy for every backend
    attempts = 4
    max_wait = 30                        # longest backoff between tries, seconds
    max_hint = 60                        # longest provider-requested wait honoured, seconds

Keys are never in this file: each backend reads its key from an environment variable
(`api_key_env` names another variable than the conventional one).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .backends.registry import MemberSpec, parse_member
from .errors import ConfigError
from .run.retry import RetryPolicy

__all__ = ["MemberConfig", "PanelConfig", "RetryConfig", "load_config", "resolve_members"]

_SECRET_FIELDS = {"api_key", "key", "token", "secret", "password", "auth_token"}


class MemberConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: str = Field(description="backend:model, as on the command line.")
    name: str | None = Field(default=None, description="A short name for --backend.")
    base_url: str | None = None
    api_key_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    timeout: float | None = Field(default=None, gt=0)
    concurrency: int | None = Field(default=None, ge=1)
    rpm: float | None = Field(default=None, gt=0)
    tpm: float | None = Field(default=None, gt=0)
    price_input: float | None = Field(default=None, ge=0)
    price_output: float | None = Field(default=None, ge=0)
    structured: Literal["auto", "native", "tool"] | None = None
    n_ctx: int | None = Field(default=None, ge=512)
    n_threads: int | None = Field(default=None, ge=1)

    def member(self) -> MemberSpec:
        options = self.model_dump(exclude={"spec", "name"}, exclude_none=True)
        return parse_member(self.spec, options)


class RetryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(default=4, ge=1, le=20)
    base_wait: float = Field(default=0.5, ge=0)
    max_wait: float = Field(default=30.0, ge=0)
    max_hint: float = Field(default=60.0, ge=0)

    def policy(self) -> RetryPolicy:
        return RetryPolicy(self.attempts, self.base_wait, self.max_wait, self.max_hint)


class PanelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    members: list[MemberConfig] = Field(default_factory=list)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    path: Path | None = Field(default=None, exclude=True)

    def find(self, text: str) -> MemberConfig | None:
        for m in self.members:
            if text in (m.spec, m.name):
                return m
        return None


def load_config(path: str | Path | None = None) -> PanelConfig:
    """The explicit file, else $PANEL_CONFIG, else ./panel.toml, else ./pyproject.toml's [tool.panel]."""
    candidates: list[tuple[Path, bool]] = []
    explicit = path or os.environ.get("PANEL_CONFIG")
    if explicit:
        candidates = [(Path(explicit), True)]
    else:
        candidates = [(Path("panel.toml"), False), (Path("pyproject.toml"), False)]
    for candidate, required in candidates:
        if not candidate.is_file():
            if required:
                raise ConfigError(f"{candidate}: config file not found")
            continue
        try:
            data = tomllib.loads(candidate.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{candidate}: TOML syntax error: {exc}") from None
        if candidate.name == "pyproject.toml":
            data = data.get("tool", {}).get("panel")
            if data is None:
                continue
        return _parse(candidate, data)
    return PanelConfig()


def _parse(path: Path, data: dict[str, Any]) -> PanelConfig:
    for i, member in enumerate(data.get("members", []) if isinstance(data, dict) else []):
        leaked = _SECRET_FIELDS & set(member if isinstance(member, dict) else {})
        if leaked:
            raise ConfigError(
                f"{path}: members[{i}].{sorted(leaked)[0]}: keys are read from the environment "
                "only; name the variable with api_key_env"
            )
    try:
        config = PanelConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {field}: {first['msg']}") from None
    config.path = path
    for m in config.members:
        m.member()  # an unknown backend in the file fails here, naming the spec
    return config


def resolve_members(specs: list[str], config: PanelConfig) -> list[MemberSpec]:
    """Members for a run: the ones named (with their configured options), else the config's, else local."""
    if not specs:
        return [m.member() for m in config.members] or [parse_member("local")]
    resolved = []
    for text in specs:
        configured = config.find(text)
        resolved.append(configured.member() if configured else parse_member(text))
    return resolved
