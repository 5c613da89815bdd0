"""A server address with a user name and password (`http://alice:secret@host/v1`) is refused
wherever it comes from, in one line that says to use api_key_env, with the password masked:
it never reaches the run store, a report or the terminal."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest

from panel.backends.urls import redacted
from panel.testing.fake_provider import FakeProvider

SECRET = "s3cret-Pa55word"


def _with_credentials(url: str) -> str:
    return url.replace("http://", f"http://alice:{SECRET}@", 1)


def _refused(result: Any, runs: Path) -> str:
    """The one line of a clean refusal; checks the secret is nowhere: output, store, files."""
    assert result.code == 2, result.out + result.err
    assert SECRET not in result.out + result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    assert "name it with api_key_env" in lines[0] and "***@127.0.0.1" in lines[0]
    for file in runs.rglob("*") if runs.exists() else ():
        assert file.is_dir() or SECRET.encode() not in file.read_bytes(), file  # runs.config among them
    return lines[0]


def _config(tmp_path: Path, members: str = "") -> Path:
    """panel.toml with `members`, one attempt a review and no wait: were an address with
    credentials taken (as it was), its failing reviews would not take minutes."""
    path = tmp_path / "panel.toml"
    path.write_text("[retry]\nattempts = 1\nbase_wait = 0\nmax_rate_wait = 0\n" + members, encoding="utf-8")
    return path


def _compare(cli: Any, runs: Path, config: Path, *members: str) -> Any:
    backends = [arg for member in members for arg in ("-b", member)]
    return cli("compare", "ollama", "vllm", *backends, "--config", str(config), "--out", str(runs))


@pytest.mark.parametrize(
    ("spec", "provider"),
    [("openai:gpt-4.1-mini", "openai"), ("anthropic:claude-haiku-4-5", "anthropic"), ("mistral:m", "mistral"),
     ("hf:some/model", "openai")],
)  # fmt: skip
def test_a_base_url_with_credentials_in_panel_toml_is_refused_at_load(
    cli: Any, fake: FakeProvider, tmp_path: Path, runs_dir: Path, spec: str, provider: Any
) -> None:
    url = _with_credentials(fake.base_url(provider))
    config = _config(tmp_path, f'[[members]]\nspec = "{spec}"\nbase_url = "{url}"\n')
    line = _refused(_compare(cli, runs_dir, config), runs_dir)
    assert line.startswith(f"error: {config}: members[0].base_url: http://***@127.0.0.1:")
    assert fake.stats()["requests"] == 0


def test_a_model_url_with_credentials_given_with_b_is_refused(
    cli: Any, fake: FakeProvider, tmp_path: Path, runs_dir: Path
) -> None:
    spec = f"hf:{_with_credentials(fake.base_url('openai'))}"
    line = _refused(_compare(cli, runs_dir, _config(tmp_path), spec), runs_dir)
    assert line.startswith("error: backend 'hf': http://***@127.0.0.1:")


@pytest.mark.parametrize(
    ("spec", "variable", "provider"),
    [("openai:gpt-4.1-mini", "OPENAI_BASE_URL", "openai"),
     ("anthropic:claude-haiku-4-5", "ANTHROPIC_BASE_URL", "anthropic")],
)  # fmt: skip
def test_a_base_url_variable_with_credentials_is_refused(
    cli: Any,
    fake: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    runs_dir: Path,
    spec: str,
    variable: str,
    provider: Any,
) -> None:
    monkeypatch.setenv(variable, _with_credentials(fake.base_url(provider)))
    line = _refused(_compare(cli, runs_dir, _config(tmp_path), spec), runs_dir)
    assert line.startswith(f"error: {variable}: http://***@127.0.0.1:")
    assert fake.stats()["requests"] == 0


@pytest.mark.parametrize("query", ["api-key", "key", "Token", "sig"])
@pytest.mark.parametrize("where", ["panel.toml", "OPENAI_BASE_URL"])
def test_a_base_url_with_a_key_in_its_query_is_refused(
    cli: Any,
    fake: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    runs_dir: Path,
    query: str,
    where: str,
) -> None:
    # A gateway that takes its key in the query (`?api-key=...`) would have it recorded with
    # the run's members, as a password in the address would be.
    url = f"{fake.base_url('openai')}?route=a&{query}={SECRET}"
    if where == "panel.toml":
        config = _config(tmp_path, f'[[members]]\nspec = "openai:gpt-4.1-mini"\nbase_url = "{url}"\n')
        named = f"{config}: members[0].base_url"
    else:
        monkeypatch.setenv(where, url)
        config = _config(tmp_path)
        named = where
    result = _compare(cli, runs_dir, config, "openai:gpt-4.1-mini")
    assert result.code == 2, result.out + result.err
    (line,) = result.err.strip().splitlines()
    assert line.startswith(f"error: {named}: http://127.0.0.1:")
    assert f"?route=a&{query}=*** carries a key in its query" in line and "api_key_env" in line
    assert SECRET not in result.out + result.err and not runs_dir.exists()
    assert fake.stats()["requests"] == 0


def test_panel_view_refuses_such_a_config_before_serving(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = importlib.import_module("panel.cli.view")  # the module, not the command
    monkeypatch.setattr(view, "_serve", lambda *a: pytest.fail("served"))
    url = _with_credentials("http://127.0.0.1:9/v1")
    config = _config(tmp_path, f'[[members]]\nspec = "openai:m"\nbase_url = "{url}"\n')
    line = _refused(cli("view", "--runs", str(tmp_path / "runs"), "--config", str(config)), tmp_path / "runs")
    assert "members[0].base_url" in line


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://alice:secret@host/v1", "http://***@host/v1"),
        ("https://token@host:8443", "https://***@host:8443"),
        ("http://a@b:c@host/v1?x=y@z", "http://***@host/v1?x=y@z"),
        ("alice:secret@host/v1", "***@host/v1"),
        ("http://host/v1?user=a@b", "http://host/v1?user=a@b"),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
        # what a lenient parser still reads as a user and password
        (" http://alice:secret@host/v1", " http://***@host/v1"),
        ("http:/alice:secret@host/v1", "http:/***@host/v1"),
        ("http:\\\\alice:secret@host/v1", "http:\\\\***@host/v1"),
        ("http://alice:sec ret@host/v1", "http://***@host/v1"),
        ("http://alice:sec\tret@host/v1", "http://***@host/v1"),
    ],
)
def test_what_stands_before_the_hosts_at_sign_is_masked(url: str, shown: str) -> None:
    assert redacted(url) == shown


@pytest.mark.parametrize(
    "template",
    [" http://alice:{secret}@127.0.0.1:9/v1", "http://alice:{secret} x@127.0.0.1:9/v1",
     "http:/alice:{secret}@127.0.0.1:9/v1"],
)  # fmt: skip
def test_an_address_a_lenient_parser_reads_credentials_in_is_refused_too(
    cli: Any, tmp_path: Path, runs_dir: Path, template: str
) -> None:
    # pydantic's HttpUrl takes each of these (it strips the space, adds the slash), and an
    # HTTP client sends the password with a space in it: each was stored in runs.config.
    url = template.format(secret=SECRET)
    config = _config(tmp_path, f'[[members]]\nspec = "openai:m"\nbase_url = "{url}"\n')
    line = _refused(_compare(cli, runs_dir, config), runs_dir)
    assert line.startswith(f"error: {config}: members[0].base_url: ")
