"""panel.toml: each bad file gets one line naming the path and the field, and exit code 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from panel.config import load_config, resolve_members


def _check(cli: Any, config: Path) -> str:
    """The one line `panel backends check` prints for a config it refuses."""
    result = cli("backends", "check", "--config", str(config))
    assert result.code == 2, result.out + result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.err, result.err
    return lines[0]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "panel.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.1/v1", "127.0.0.1:11434/v1", "http://", "file:///etc/passwd", "not a url"],
)
def test_base_url_must_be_an_http_url(cli: Any, tmp_path: Path, url: str) -> None:
    path = _write(tmp_path, f'[[members]]\nspec = "openai:m"\nbase_url = "{url}"\n')
    assert _check(cli, path) == (
        f"error: {path}: members[0].base_url: must be an http:// or https:// URL, not {url!r}"
    )


def test_a_long_bad_url_is_cut_in_the_message(cli: Any, tmp_path: Path) -> None:
    path = _write(tmp_path, f'[[members]]\nspec = "openai:m"\nbase_url = "{"x" * 100_000}"\n')
    assert len(_check(cli, path)) < 250


def test_https_and_loopback_urls_are_kept_as_written(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[[members]]\nspec = "openai:a"\nbase_url = "http://127.0.0.1:11434/v1"\n'
        '[[members]]\nspec = "openai:b"\nbase_url = "https://api.example.com"\n',
    )
    urls = [m.options.base_url for m in resolve_members([], load_config(path))]
    assert urls == ["http://127.0.0.1:11434/v1", "https://api.example.com"]


def test_two_members_with_one_name_are_refused(cli: Any, tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[[members]]\nspec = "openai:qwen"\nname = "ollama"\n'
        '[[members]]\nspec = "fake"\n'
        '[[members]]\nspec = "openai:llama"\nname = "ollama"\n',
    )
    assert _check(cli, path) == (
        f"error: {path}: members[0] and members[2] are both named 'ollama': give each member its own name"
    )


def test_an_unnamed_member_is_known_by_its_spec(cli: Any, tmp_path: Path) -> None:
    path = _write(tmp_path, '[[members]]\nspec = "fake"\n[[members]]\nspec = "fake"\n')
    assert "members[0] and members[1] are both named 'fake'" in _check(cli, path)


def test_the_same_model_twice_under_two_names_resolves_by_name(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[[members]]\nspec = "fake"\nname = "one"\nconcurrency = 1\n'
        '[[members]]\nspec = "fake"\nname = "two"\nconcurrency = 2\n',
    )
    (member,) = resolve_members(["two"], load_config(path))
    assert (member.key, member.options.concurrency) == ("two", 2)


def test_an_option_the_backend_does_not_take_names_member_and_backend(cli: Any, tmp_path: Path) -> None:
    path = _write(tmp_path, '[[members]]\nspec = "fake"\n[[members]]\nspec = "openai:m"\ntokens_param = 5\n')
    assert _check(cli, path) == (
        f"error: {path}: members[1].tokens_param: backend 'openai' has no such option "
        "(its own options are: api_version, azure, fit_strings, headers, organization, project, "
        "sampling, structured, token_param)"
    )


def test_another_backends_option_is_refused(cli: Any, tmp_path: Path) -> None:
    path = _write(tmp_path, '[[members]]\nspec = "anthropic:c"\nn_ctx = 8192\n')
    assert _check(cli, path) == (
        f"error: {path}: members[0].n_ctx: backend 'anthropic' has no such option "
        "(its own options are: structured)"
    )
    path = _write(tmp_path, '[[members]]\nspec = "fake"\nstructured = "tools"\n')
    assert "backend 'fake' has no such option (it has no options of its own)" in _check(cli, path)


def test_mistral_names_the_one_structured_form_it_takes(cli: Any, tmp_path: Path) -> None:
    path = _write(tmp_path, '[[members]]\nspec = "mistral:m"\nstructured = "tools"\n')
    assert _check(cli, path) == (
        f'error: {path}: members[0].structured: structured takes "auto", "json_schema", '
        "not 'tools' (backend 'mistral')"
    )
    path = _write(tmp_path, '[[members]]\nspec = "mistral:m"\nstructured = "json_schema"\n')
    (member,) = resolve_members([], load_config(path))
    assert member.options.structured == "json_schema"  # type: ignore[attr-defined]


def test_a_bad_value_of_a_backend_option_names_it(cli: Any, tmp_path: Path) -> None:
    path = _write(tmp_path, '[[members]]\nspec = "anthropic:c"\nstructured = "json"\n')
    line = _check(cli, path)
    assert line == (
        f"error: {path}: members[0].structured: structured takes "
        '"auto", "json_schema", "tools", "prompt", not \'json\' (backend \'anthropic\')'
    )
    path = _write(tmp_path, '[[members]]\nspec = "local"\nn_ctx = 16\n')
    assert _check(cli, path).startswith(f"error: {path}: members[0].n_ctx: Input should be greater than")


def test_backend_options_reach_the_member(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        '[[members]]\nspec = "anthropic:c"\nstructured = "tool"\nrpm = 50\n'
        '[[members]]\nspec = "openai:m"\ntoken_param = "max_tokens"\n'
        '[[members]]\nspec = "local"\nn_ctx = 8192\nn_threads = 2\n',
    )
    anthropic, openai, local = (m.options for m in resolve_members([], load_config(path)))
    # Each member's options are its backend's model, typed; `tool` is the shared `tools`.
    assert (type(anthropic).__name__, anthropic.structured, anthropic.rpm) == (  # type: ignore[attr-defined]
        "AnthropicOptions",
        "tools",
        50,
    )
    assert (type(openai).__name__, openai.token_param) == ("OpenAIOptions", "max_tokens")  # type: ignore[attr-defined]
    assert (local.n_ctx, local.n_threads) == (8192, 2)  # type: ignore[attr-defined]
    assert [m.options.written() for m in resolve_members([], load_config(path))] == [
        {"structured": "tools", "rpm": 50},
        {"token_param": "max_tokens"},
        {"n_ctx": 8192, "n_threads": 2},
    ]


def test_an_unknown_backend_names_the_member(cli: Any, tmp_path: Path) -> None:
    path = _write(tmp_path, '[[members]]\nspec = "fake"\n[[members]]\nspec = "opnai:m"\n')
    assert _check(cli, path).startswith(f"error: {path}: members[1].spec: unknown backend 'opnai'")


def test_a_config_that_is_not_utf8_names_the_path_and_line(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "panel.toml"
    path.write_bytes(b'[[members]]\nspec = "fake"\nname = "caf\xe9"\n')
    assert _check(cli, path) == f"error: {path}: line 3: not UTF-8 text (byte 0xe9)"


def test_control_characters_in_a_config_are_refused(cli: Any, tmp_path: Path) -> None:
    path = _write(tmp_path, '[[members]]\n# \x1b]0;owned\x07\nspec = "fake"\n')
    assert _check(cli, path) == f"error: {path}: line 2: control character U+001B in the file"


def test_a_config_that_cannot_be_read_names_the_path(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "panel.toml"
    path.symlink_to(path)  # a loop: it is a file to nobody, and reading it fails
    assert _check(cli, path).startswith(f"error: {path}: ")


@pytest.mark.parametrize("name", ["api_key", "Token", "x-auth-token", "password"])
def test_a_sampling_extra_that_carries_a_key_is_refused_and_not_echoed(
    cli: Any, tmp_path: Path, name: str
) -> None:
    # A sampling extra goes in the request body and is recorded with the run's options: a key
    # written there (a proxy takes `api_key` in the body) would reach the store on disk.
    secret = "sk-in-the-body-5e4d3c2b1a"
    path = _write(
        tmp_path,
        f'[[members]]\nspec = "openai:m"\nbase_url = "http://127.0.0.1:9/v1"\n'
        f'sampling = {{ repeat_penalty = 1.1, "{name}" = "{secret}" }}\n',
    )
    line = _check(cli, path)
    assert line.startswith(f"error: {path}: members[0].sampling: sampling cannot set '{name}'")
    assert "api_key_env" in line and secret not in line
