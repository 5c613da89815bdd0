"""Whole panels of cloud members, through the real SDKs, against the loopback fake provider."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from panel.depth import BUDGETS
from panel.testing.fake_provider import FakeProvider

from .cloud import KEYS, MEMBERS, files_containing, write_config

#: the SDK each member's backend sends through
_SDKS = {"openai": "openai", "anthropic": "anthropic", "mistral": "mistralai", "hf": "huggingface_hub"}


def needs(*providers: str) -> pytest.MarkDecorator:
    """Skip a test whose members' SDKs are not installed (the others run without them)."""
    missing = [_SDKS[p] for p in providers if importlib.util.find_spec(_SDKS[p]) is None]
    return pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)}")


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider(history=500) as provider:
        yield provider


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    return KEYS


@needs("openai", "anthropic", "mistral")
def test_three_backends_give_24_reviews_and_per_backend_shares(
    cli: Any, fake: FakeProvider, keys: dict[str, str], tmp_path: Path, runs_dir: Path
) -> None:
    cfg = write_config(tmp_path / "panel.toml", fake, ["openai", "anthropic", "mistral"])
    args = ["compare", "ollama", "vllm", "--config", str(cfg), "--out", str(runs_dir), "--json"]
    for provider in ("openai", "anthropic", "mistral"):
        args += ["--backend", MEMBERS[provider]]
    result = cli(*args)
    assert result.code == 0, result.err
    record = json.loads(result.out)
    assert record["counts"]["reviews"] == 24
    assert record["panel"]["members"] == [MEMBERS[p] for p in ("openai", "anthropic", "mistral")]
    for card in record["tools"]:
        assert len(card["scorecard"]) == 12
        shares = card["panel_by_member"]
        assert set(shares) == set(record["panel"]["members"])
        assert sum(s["ship"] for s in shares.values()) == card["panel"]["ship"]
        assert sum(s["valid"] for s in shares.values()) == card["panel"]["valid"]
    # The split lists exactly the (tool, persona) pairs where the backends' verdicts differ.
    disagreements = {(d["tool_id"], d["persona_id"]) for d in record["split"]["between_members"]}
    for card in record["tools"]:
        for persona in record["panel"]["personas"]:
            verdicts = {e["verdict"] for e in card["scorecard"] if e["persona_id"] == persona["id"]}
            assert ((card["id"], persona["id"]) in disagreements) == (len(verdicts) > 1)
    stats = fake.stats()
    assert stats["by_provider"] == {"openai": 8, "anthropic": 8, "mistral": 8}


@needs("openai", "anthropic", "mistral", "hf")
def test_keys_never_reach_the_store_files_or_output(
    cli: Any, fake: FakeProvider, keys: dict[str, str], tmp_path: Path, runs_dir: Path
) -> None:
    cfg = write_config(tmp_path / "panel.toml", fake, ["openai", "anthropic", "mistral", "hf"])
    result = cli("compare", "ollama", "vllm", "--config", str(cfg), "--out", str(runs_dir))
    assert result.code == 0, result.err
    # A fatal error echoing request details must not leak them either.
    fake.configure(fault_rate=1.0, faults=["500"])
    failing = cli("compare", "tesseract", "vllm", "--config", str(cfg), "--out", str(runs_dir))
    assert failing.code == 0
    listed = cli("backends", "--config", str(cfg))
    checked = cli("backends", "check", "--config", str(cfg))
    assert checked.code == 1
    assert list(runs_dir.rglob("panel.db"))
    for value in keys.values():
        assert files_containing(runs_dir, value) == []
        for output in (result, failing, listed, checked):
            assert value not in output.out + output.err
    # The right key did go to each provider, as a hash in the fake's records.
    import hashlib

    sent = {(r["provider"], r["auth_key_sha256"]) for r in fake.stats()["recent"]}
    for provider, var in (("openai", "OPENAI_API_KEY"), ("anthropic", "ANTHROPIC_API_KEY")):
        assert (provider, hashlib.sha256(keys[var].encode()).hexdigest()) in sent


def test_backends_lists_extras_and_keys_without_values(
    cli: Any, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MISTRAL_API_KEY")
    result = cli("backends")
    assert result.code == 0
    rows = {line.split("│")[1].strip(): line for line in result.out.splitlines() if line.count("│") > 4}
    assert "OPENAI_API_KEY" in rows["openai"] and "yes" in rows["openai"]
    assert "MISTRAL_API_KEY" in rows["mistral"] and "no" in rows["mistral"].split("│")[5]
    assert "pip install 'toolpanel[anthropic]'" in rows["anthropic"]


@needs("openai", "mistral")
def test_backends_check_reports_latency_or_the_exact_error(
    cli: Any, fake: FakeProvider, keys: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write_config(tmp_path / "panel.toml", fake, ["openai", "mistral"])
    ok = cli("backends", "check", "--config", str(cfg))
    assert ok.code == 0, ok.out
    assert ok.out.count("ok ") == 2 and " s " in ok.out
    monkeypatch.delenv("MISTRAL_API_KEY")
    missing = cli("backends", "check", "--config", str(cfg))
    assert missing.code == 1
    assert "set the environment variable MISTRAL_API_KEY" in missing.out


@needs("anthropic")
def test_missing_key_is_one_line_naming_the_variable(
    cli: Any, fake: FakeProvider, tmp_path: Path, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    result = cli("compare", "ollama", "vllm", "-b", "anthropic:claude-haiku-4-5", "--out", str(runs_dir))
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        "error: backend 'anthropic' needs an API key: set the environment variable ANTHROPIC_API_KEY"
    ]
    assert not runs_dir.exists()


@needs("openai")
def test_openai_token_param_from_panel_toml_reaches_the_wire(
    cli: Any, fake: FakeProvider, keys: dict[str, str], tmp_path: Path
) -> None:
    # A base URL means a compatible server, which gets `max_tokens` unless the config says.
    extra = 'token_param = "max_completion_tokens"\n'
    cfg = write_config(tmp_path / "panel.toml", fake, ["openai"], extra=extra)
    result = cli("backends", "check", "--config", str(cfg))
    assert result.code == 0, result.out
    body = fake.stats()["recent"][-1]["body"]
    # The check asks for a review as a run would: the full depth's limit.
    assert body["max_completion_tokens"] == BUDGETS["full"].max_tokens and "max_tokens" not in body


@needs("openai", "mistral")
def test_backends_check_labels_each_line_by_member_name(
    cli: Any, fake: FakeProvider, keys: dict[str, str], tmp_path: Path
) -> None:
    cfg = tmp_path / "panel.toml"
    cfg.write_text(
        f'[[members]]\nspec = "openai:m"\nname = "first"\nbase_url = "{fake.base_url("openai")}"\n'
        f'[[members]]\nspec = "mistral:m"\nname = "broken"\nbase_url = "{fake.base_url("mistral")}"\n'
        'api_key_env = "PANEL_UNSET_KEY"\n'
        '[[members]]\nspec = "fake"\n'
    )
    result = cli("backends", "check", "--config", str(cfg))
    assert result.code == 1
    labels = [line.split()[:2] for line in result.out.splitlines()]
    assert labels == [["ok", "first"], ["fail", "broken"], ["ok", "fake:schema"]], result.out
