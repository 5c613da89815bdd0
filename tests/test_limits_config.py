"""panel.toml for limits: `headroom` per member, `max_rate_wait` in [retry]."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from panel.config import load_config, resolve_members
from panel.run.plan import build_members


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "panel.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0", "Input should be greater than 0"),
        ("-0.5", "Input should be greater than 0"),
        ("1.5", "Input should be less than or equal to 1"),
        ('"most"', "Input should be a valid number, unable to parse string as a number"),
    ],
)
def test_headroom_must_be_a_fraction(cli: Any, tmp_path: Path, value: str, reason: str) -> None:
    path = _write(
        tmp_path, f'[[members]]\nspec = "fake"\n\n[[members]]\nspec = "fake:b"\nheadroom = {value}\n'
    )
    result = cli("backends", "check", "--config", str(path))
    assert result.code == 2
    assert result.err.strip().splitlines() == [f"error: {path}: members[1].headroom: {reason}"]


def test_headroom_and_max_rate_wait_reach_the_limiter_and_the_retry_policy(tmp_path: Path) -> None:
    text = '[[members]]\nspec = "fake"\nheadroom = 0.9\n\n[retry]\nmax_rate_wait = 120\n'
    config = load_config(_write(tmp_path, text))
    (member,) = build_members(resolve_members([], config))
    assert member.limiter.headroom == 0.9
    assert config.retry.policy().max_rate_wait == 120.0
    # Unset, the limiter keeps 2% free as before.
    (default,) = build_members(
        resolve_members([], load_config(_write(tmp_path, '[[members]]\nspec = "fake"\n')))
    )
    assert (
        default.limiter.headroom == 0.98 and load_config(tmp_path / "panel.toml").retry.max_rate_wait == 600
    )


def test_two_names_for_one_model_and_endpoint_draw_from_one_limiter(tmp_path: Path) -> None:
    text = (
        '[[members]]\nspec = "openai:qwen"\nname = "fast"\nbase_url = "http://127.0.0.1:9/v1"\nrpm = 60\n'
        '[[members]]\nspec = "openai:qwen"\nname = "slow"\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[[members]]\nspec = "openai:qwen"\nname = "other"\nbase_url = "http://127.0.0.1:8/v1"\nrpm = 60\n'
    )
    fast, slow, other = build_members(resolve_members([], load_config(_write(tmp_path, text))))
    assert fast.limiter is slow.limiter and fast.limiter is not other.limiter
    # The provider counts both names against one quota: what `fast` sends delays `slow`.
    for member in (fast, other):
        member.limiter.clock = lambda: 0.0  # a stopped clock: only what was sent counts
    assert slow.limiter.requests is not None and other.limiter.requests is not None
    assert slow.limiter.requests.delay(1, 0.0) == 0.0
    asyncio.run(fast.limiter.acquire())
    assert slow.limiter.requests.delay(1, 0.0) == pytest.approx(60 / (60 * 0.98))
    assert other.limiter.requests.delay(1, 0.0) == 0.0  # another endpoint: its own quota


def test_the_tightest_limit_stated_on_a_shared_connection_holds(tmp_path: Path) -> None:
    text = (
        '[[members]]\nspec = "fake"\nname = "a"\nrpm = 600\nheadroom = 0.9\n'
        '[[members]]\nspec = "fake"\nname = "b"\nrpm = 60\ntpm = 1000\n'
    )
    a, b = build_members(resolve_members([], load_config(_write(tmp_path, text))))
    assert a.limiter is b.limiter
    assert (a.limiter.rpm, a.limiter.headroom) == (60, 0.9)
    assert a.limiter.tokens is not None and a.limiter.tokens.stated == 1000
