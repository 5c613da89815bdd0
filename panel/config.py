"""Panel configuration: `panel.toml`, or `[tool.panel]` in pyproject.toml.

    [[members]]
    spec = "openai:gpt-4.1-mini"       # backend:model
    concurrency = 8
    rpm = 500                            # requests per minute
    tpm = 200000                         # tokens per minute
    headroom = 0.98                      # fraction of the limit used (lower it where the
                                         # provider counts per second); no rpm/tpm: the
                                         # limit is learned from the provider
    price_input = 0.40                   # USD per million tokens
    price_output = 1.60
    depth = "full"                       # "brief": a sentence an answer, a few for the
                                         # review; "full": a reviewer's paragraph. Unset:
                                         # brief for a local model file under 1 GB (the
                                         # bundled one), full for every other member
    max_tokens = 1600                    # a reply's token limit (unset: 700 brief, 1600 full)

    [[members]]
    spec = "openai:qwen2.5:7b"
    name = "ollama"                      # how --backend may refer to it; names are unique
    base_url = "http://127.0.0.1:11434/v1"
    token_param = "max_tokens"           # any other key is the backend's own option

    [retry]                              # one policy for every backend
    attempts = 4
    max_wait = 30                        # longest backoff between tries, seconds
    max_hint = 60                        # longest provider-requested wait honoured, seconds
    max_rate_wait = 600                  # 429s cost no attempts: a request waits them out this long

Keys are never in this file: each backend reads its key from an environment variable
(`api_key_env` names another variable than the conventional one).

A member's options are validated here, once, into its backend's options model (the fields
every member takes are `panel.backends.options.MemberOptions`; each backend's model adds its
own, e.g. `OpenAIOptions`), and carried typed from then on.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from .backends.base import MemberSpec, OptionError
from .backends.registry import parse_member
from .errors import BackendSpecError, ConfigError
from .run.retry import RetryPolicy

__all__ = ["MemberConfig", "PanelConfig", "RetryConfig", "load_config", "resolve_members"]

_SECRET_FIELDS = {"api_key", "key", "token", "secret", "password", "auth_token"}
# TOML allows tabs and newlines; any other control character is a damaged or hostile file.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _shown(value: object, limit: int = 80) -> str:
    """A bad value quoted in an error, cut to a readable length."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


class MemberConfig(BaseModel):
    """One `[[members]]` table: its spec and name; every other key is an option, validated
    into the backend's options model (`panel.backends.options`) when the file is read."""

    model_config = ConfigDict(extra="allow")

    spec: str = Field(description="backend:model, as on the command line.")
    name: str | None = Field(default=None, description="A short name for --backend.")
    _member: MemberSpec | None = PrivateAttr(default=None)

    @property
    def key(self) -> str:
        """What the member is known by: its name, else its spec."""
        return self.name or self.spec

    def member(self) -> MemberSpec:
        """The member with its options typed; a `BackendSpecError` (an `OptionError` naming
        the option) when the spec or an option is bad."""
        if self._member is None:
            self._member = parse_member(self.spec, self.model_extra, self.name)
        return self._member


class RetryConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attempts: int = Field(default=4, ge=1, le=20, description="Tries of one request, the first included.")
    base_wait: float = Field(
        default=0.5, ge=0, description="First backoff between tries, seconds (it grows each try, jittered)."
    )
    max_wait: float = Field(default=30.0, ge=0, description="Longest backoff between tries, seconds.")
    max_hint: float = Field(
        default=60.0, ge=0, description="Longest Retry-After a provider asks for that is honoured, seconds."
    )
    max_rate_wait: float = Field(
        default=600.0,
        ge=0,
        description="How long a request waits out 429s, seconds; they cost no attempts.",
    )

    def policy(self) -> RetryPolicy:
        return RetryPolicy(self.attempts, self.base_wait, self.max_wait, self.max_hint, self.max_rate_wait)


class PanelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    members: list[MemberConfig] = Field(default_factory=list)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    recuse: Literal["maker"] | None = Field(
        default=None,
        description='"maker": every member leaves out the tools its own maker made (a member\'s '
        "own `recuse` is kept).",
    )
    path: Path | None = Field(default=None, exclude=True)

    def find(self, text: str) -> MemberConfig | None:
        """The member named `text`, else the first whose spec it is."""
        by_name = (m for m in self.members if m.name == text)
        by_spec = (m for m in self.members if m.spec == text)
        return next(by_name, None) or next(by_spec, None)


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
            data = tomllib.loads(_read_text(candidate))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{candidate}: TOML syntax error: {exc}") from None
        if candidate.name == "pyproject.toml":
            data = data.get("tool", {}).get("panel")
            if data is None:
                continue
        return _parse(candidate, data)
    return PanelConfig()


def _read_text(path: Path) -> str:
    """The file as text, or one line naming the path and what is wrong with its bytes."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}: line {line}: not UTF-8 text (byte {raw[exc.start]:#04x})") from None
    bad = _CONTROL.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        raise ConfigError(f"{path}: line {line}: control character U+{ord(bad.group()):04X} in the file")
    return text


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
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"]).lstrip(".")
        raise ConfigError(f"{path}: {field}: {first['msg'].removeprefix('Value error, ')}") from None
    config.path = path
    seen: dict[str, int] = {}
    for i, m in enumerate(config.members):
        try:
            m.member()
        except OptionError as exc:
            raise ConfigError(f"{path}: members[{i}].{exc.option}: {exc.reason}") from None
        except BackendSpecError as exc:  # an unknown backend
            raise ConfigError(f"{path}: members[{i}].spec: {exc}") from None
        if m.key in seen:
            raise ConfigError(
                f"{path}: members[{seen[m.key]}] and members[{i}] are both named {_shown(m.key)}: "
                "give each member its own name"
            )
        seen[m.key] = i
    return config


def resolve_members(specs: list[str], config: PanelConfig) -> list[MemberSpec]:
    """Members for a run: the ones named (with their configured options), else the config's, else local."""
    if not specs:
        resolved = [m.member() for m in config.members] or [parse_member("local")]
    else:
        resolved = []
        for text in specs:
            configured = config.find(text)
            resolved.append(configured.member() if configured else parse_member(text))
    if config.recuse is None:
        return resolved
    # The panel's recusal, kept in each member's options (a resumed run reads it back).
    return [
        s
        if "recuse" in s.options.written()
        else replace(s, options=s.options.with_(s.backend, recuse=config.recuse))
        for s in resolved
    ]
