"""The cache key is the request as it goes on the wire: a member that changes how it sends
(its structured form, its string caps) asks again; one that changes nothing sent is served
from the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from panel.backends.registry import create_backend, parse_member
from panel.run.cache_key import cache_key
from panel.testing.fake_provider import FakeProvider

from .test_backends_cloud import PERSONA, REQUEST


def _config(path: Path, fake: FakeProvider, **options: Any) -> Path:
    extra = "".join(
        f"{k} = {v!r}\n".replace("'", '"').replace("True", "true").replace("False", "false")
        for k, v in options.items()
    )
    path.write_text(
        "[retry]\nattempts = 2\nbase_wait = 0.01\nmax_wait = 0.05\n"
        f'[[members]]\nspec = "openai:smollm2"\nbase_url = "{fake.base_url("openai")}"\n'
        f"timeout = 5\nprice_input = 0\nprice_output = 0\n{extra}"
    )
    return path


def _compare(cli: Any, cfg: Path, runs_dir: Path, code: int = 0) -> None:
    result = cli("compare", "ollama", "vllm", "--config", str(cfg), "--out", str(runs_dir))
    assert result.code == code, result.err


def test_switching_the_form_sends_a_new_request_and_an_unchanged_member_hits_the_cache(
    cli: Any, fake: FakeProvider, tmp_path: Path, runs_dir: Path
) -> None:
    cfg = tmp_path / "panel.toml"
    _compare(cli, _config(cfg, fake, structured="json_schema"), runs_dir)
    assert fake.stats()["by_form"] == {"json_schema": 8}
    # The prompt form rewrites the system message: the replies stored are for another request.
    # (The loopback provider answers a schema-less request with prose: invalid, asked again.)
    _compare(cli, _config(cfg, fake, structured="prompt"), runs_dir, code=1)
    assert fake.stats()["by_form"] == {"json_schema": 8, "none": 16}
    # Unchanged, each member is served from the store, in either form.
    _compare(cli, _config(cfg, fake, structured="prompt"), runs_dir, code=1)
    _compare(cli, _config(cfg, fake, structured="json_schema"), runs_dir)
    assert fake.stats()["by_form"] == {"json_schema": 8, "none": 16}


def test_string_caps_are_part_of_the_request_sent(
    cli: Any, fake: FakeProvider, tmp_path: Path, runs_dir: Path
) -> None:
    cfg = tmp_path / "panel.toml"
    _compare(cli, _config(cfg, fake, structured="json_object", fit_strings=True), runs_dir)
    _compare(cli, _config(cfg, fake, structured="json_object", fit_strings=False), runs_dir)
    assert fake.stats()["by_form"] == {"json_object": 16}


def test_options_that_change_no_reply_leave_the_key_alone(monkeypatch: Any) -> None:
    monkeypatch.setenv("OTHER_KEY", "sk-other")
    url = "http://127.0.0.1:9/v1"

    def key(**options: Any) -> str:
        backend = create_backend(parse_member("openai:smollm2", {"base_url": url, **options}))
        return cache_key(backend, REQUEST, PERSONA.version)

    plain = key()
    assert plain == key(timeout=7, concurrency=3, rpm=10, tpm=5000, headroom=0.5, route="batch")
    assert plain == key(api_key_env="OTHER_KEY", price_input=1.0, price_output=2.0)
    # What is sent, or where, is another request.
    assert plain != key(token_param="max_completion_tokens")
    assert plain != key(sampling={"repeat_penalty": 1.1})
    assert plain != key(structured="tools")
    assert plain != key(base_url="http://127.0.0.1:8/v1")
