"""panel.toml for limits: `headroom` per member, `max_rate_wait` in [retry]."""

from __future__ import annotations

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
