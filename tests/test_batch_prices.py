"""Batch prices: each provider's discount in prices.toml, and plans priced on the batch route."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from panel.backends.options import MemberOptions
from panel.cli.execute import announce_plan
from panel.cli.progress import Notices
from panel.run.plan import plan_run
from panel.run.pricing import Price, estimate_cost, load_prices, price_for

PRICED = '[batch.discount]\nfake = 0.5\n\n[prices."fake"]\ninput = 100.0\noutput = 400.0\n'


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prices.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_shipped_file_halves_the_three_providers_on_the_batch_route() -> None:
    prices = load_prices()
    for key in ("openai:gpt-4o-mini", "anthropic:claude-haiku-4-5", "mistral:mistral-small-latest"):
        live = prices[key]
        assert live.batch_discount == 0.5
        assert live.for_route("batch") == Price(live.input / 2, live.output / 2)
        assert live.for_route("live") == live
    assert prices["local"].for_route("batch") == prices["local"]  # costs nothing either way
    with pytest.raises(ValueError, match="unknown route"):
        prices["local"].for_route("bulk")


def test_a_model_discount_wins_and_a_member_price_takes_its_backend_discount(tmp_path: Path) -> None:
    text = (
        '[batch.discount]\nopenai = 0.5\n"openai:gpt-x" = 0.25\n\n'
        '[prices."openai:gpt-x"]\ninput = 4.0\noutput = 8.0\n\n[prices."openai"]\ninput = 1.0\noutput = 2.0\n'
    )
    prices = load_prices(_file(tmp_path, text))
    unset = MemberOptions()
    assert price_for("openai", "gpt-x", unset, prices) == Price(4.0, 8.0, 0.25)
    assert price_for("openai", "other", unset, prices) == Price(1.0, 2.0, 0.5)
    own = price_for("openai", "gpt-x", MemberOptions(price_input=2.0, price_output=6.0), prices)
    assert own is not None and own.for_route("batch") == Price(1.5, 4.5)
    # none known for mistral
    assert price_for("mistral", "m", MemberOptions(price_input=2.0), prices) == Price(2.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[batch.discount]\nopenai = 1.5\n",
            "batch.discount.openai: must be a share from 0 to 1 "
            "(0.5: half price on the batch route; got 1.5)",
        ),
        (
            '[batch.discount]\n"openai:gpt-4o" = -0.1\n',
            'batch.discount."openai:gpt-4o": must be a share from 0 to 1 '
            "(0.5: half price on the batch route; got -0.1)",
        ),
        (
            "[batch]\nopenai = 0.5\n",
            "batch.openai: unknown key ([batch] holds only 'discount', a table of shares by backend)",
        ),
    ],
)
def test_a_bad_batch_discount_is_one_line_naming_the_field(
    cli: Any, tmp_path: Path, runs_dir: Path, text: str, message: str
) -> None:
    prices = _file(tmp_path, text)
    result = cli("review", "-b", "fake", "--prices", str(prices), "--out", str(runs_dir))
    assert result.code == 2, result
    assert "Traceback" not in result.err + result.out
    assert result.err.strip().splitlines() == [f"error: {prices}: {message}"]
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_a_plan_on_the_batch_route_costs_half_and_says_what_live_would_cost(tmp_path: Path) -> None:
    plan = plan_run(["ollama", "vllm"], backends=["fake"], prices=_file(tmp_path, PRICED))
    label = plan.members[0].backend.label
    live = estimate_cost(plan)
    batch = estimate_cost(plan, routes={label: "batch"})
    assert (live.batch_requests, batch.batch_requests) == (0, plan.total)
    assert (live.live_expected_usd, live.live_worst_usd) == (live.expected_usd, live.worst_usd)
    assert (batch.live_expected_usd, batch.live_worst_usd) == (live.expected_usd, live.worst_usd)
    assert batch.expected_usd == pytest.approx(live.expected_usd / 2)
    assert batch.worst_usd == pytest.approx(live.worst_usd / 2)

    def plan_line(routes: dict[str, str] | None) -> str:
        out = io.StringIO()
        announce_plan(plan, Notices(Console(file=out, width=300)), routes)
        return out.getvalue().strip()

    assert plan_line(None) == (
        f"plan: 8 reviews = 2 tools x 4 personas x 1 members; "
        f"estimated ${live.expected_usd:.4f}, at most ${live.worst_usd:.4f}"
    )  # a live-only plan reads as before
    assert plan_line({label: "batch"}) == (
        f"plan: 8 reviews = 2 tools x 4 personas x 1 members; "
        f"estimated ${batch.expected_usd:.4f}, at most ${batch.worst_usd:.4f} "
        f"(live route: ${live.expected_usd:.4f}, at most ${live.worst_usd:.4f})"
    )
