"""Helpers for tests that run whole panels against the loopback fake provider."""

from __future__ import annotations

from pathlib import Path

from panel.testing.fake_provider import FakeProvider

KEYS = {
    "OPENAI_API_KEY": "sk-test-OPENAI-5f1d2c9a8e7b6d4c3b2a1f0e",
    "ANTHROPIC_API_KEY": "sk-ant-test-ANTHROPIC-0a9b8c7d6e5f4a3b2c1d",
    "MISTRAL_API_KEY": "mistral-test-KEY-7e6d5c4b3a2f1e0d9c8b",
    "HF_TOKEN": "hf_test_TOKEN_1a2b3c4d5e6f7a8b9c0d1e2f",
}

MEMBERS = {
    "openai": "openai:gpt-4.1-mini",
    "anthropic": "anthropic:claude-haiku-4-5",
    "mistral": "mistral:mistral-small-latest",
    "hf": "hf:HuggingFaceTB/SmolLM3-3B",
}


def write_config(
    path: Path,
    fake: FakeProvider,
    providers: list[str],
    *,
    timeout: float = 5.0,
    concurrency: int = 4,
    extra: str = "",
    retry: str = "attempts = 4\nbase_wait = 0.01\nmax_wait = 0.05\nmax_hint = 0.2\n",
) -> Path:
    """A panel.toml whose members are the given providers, all pointed at the fake."""
    parts = [f"[retry]\n{retry}"]
    for provider in providers:
        parts.append(
            "[[members]]\n"
            f'spec = "{MEMBERS[provider]}"\n'
            f'base_url = "{fake.base_url(provider)}"\n'  # type: ignore[arg-type]
            f"timeout = {timeout}\nconcurrency = {concurrency}\n{extra}"
        )
    path.write_text("\n".join(parts))
    return path


def files_containing(root: Path, needle: str) -> list[Path]:
    """Every file under root whose bytes contain needle (SQLite pages and WAL included)."""
    raw = needle.encode()
    return [p for p in root.rglob("*") if p.is_file() and raw in p.read_bytes()]
