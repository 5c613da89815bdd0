"""A reply is data: each malformed reply the hostile provider serves costs one review at most,
with its reason stored, never the run, the store or the budget (live route)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from panel.backends.registry import parse_member
from panel.catalog import load_catalog
from panel.personas import load_personas
from panel.resources import data_dir
from panel.run.plan import Plan, RunOptions, build_members, run_plan
from panel.run.retry import RetryPolicy
from panel.store import Store
from panel.testing.fake_provider import FakeProvider

from .cloud import KEYS, MEMBERS, write_config
from .conftest import EXAMPLE_CATALOG, CliResult

PROVIDERS = ["openai", "anthropic", "mistral", "hf"]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeProvider]:
    for variable, value in KEYS.items():
        monkeypatch.setenv(variable, value)
    with FakeProvider() as server:
        yield server


async def _no_sleep(seconds: float) -> None:
    return None


def _run(fake: FakeProvider, provider: str, out: Path, **options: Any) -> tuple[Any, Store, str]:
    """One tool read by one persona on one member pointed at the fake; the store is left open."""
    spec = parse_member(MEMBERS[provider], {"base_url": fake.base_url(provider), "timeout": 5, **options})  # type: ignore[arg-type]
    plan = Plan(
        tools=list(load_catalog(EXAMPLE_CATALOG))[:1],
        personas=[load_personas(data_dir("personas"))["builder"]],
        members=build_members([spec]),
        specs=[spec],
        catalog_path=EXAMPLE_CATALOG,
    )
    store = Store(out)
    opts = RunOptions(retry=RetryPolicy(attempts=2, sleep=_no_sleep))
    run_id, stats = asyncio.run(run_plan(plan, store, "test", options=opts))
    return stats, store, run_id


#: what a poisoned reply to the OpenAI-compatible backend leaves in the store: the review's
#: failure, or (for usage that cannot be believed) a valid review whose usage is unknown
OPENAI_OUTCOMES = {
    "deep_content": (
        "failed",
        "invalid after re-ask: the reply is not a review's JSON: it nests more than 64",
    ),
    "deep_body": ("failed", "the reply was not read: it nests more than 64 levels deep"),
    "message_string": ("failed", "the reply's first choice carries no message"),
    "not_json": ("failed", "the reply was not JSON: '<html><body>502 Bad Gateway"),
    "invalid_utf8": ("failed", "the reply was not JSON"),
    "long_number": (
        "failed",
        "invalid after re-ask: the reply is not a review's JSON: it holds a number of more than 4,300 digits",
    ),
    "usage_string": ("unknown", "usage is 'n/a'"),
    "usage_list": ("unknown", "usage is [1, 2]"),
    "details_string": ("unknown", "usage.prompt_tokens_details is 'x'"),
    "usage_huge": ("unknown", "usage.prompt_tokens is 1000000000000000000000000000000"),
    "usage_negative": ("unknown", "usage.prompt_tokens is -1000000000.0"),
    "usage_float": ("unknown", "usage.completion_tokens is 12.5"),
}


@pytest.mark.parametrize("kind", sorted(OPENAI_OUTCOMES))
def test_each_malformed_reply_costs_its_review_with_the_reason(
    fake: FakeProvider, tmp_path: Path, kind: str
) -> None:
    fake.configure(poison=kind)
    stats, store, run_id = _run(fake, "openai", tmp_path / "runs")
    outcome, reason = OPENAI_OUTCOMES[kind]
    (review,) = store.reviews(run_id)
    assert stats.stopped is None and store.get_run(run_id).status == "done"  # type: ignore[union-attr]
    if outcome == "failed":
        assert not review.valid and reason in (review.error or "")
        assert "\n" not in (review.error or "")
    else:
        assert review.valid
        meta, cost, reserved, tokens = store.db.execute(
            """SELECT rp.meta, rp.cost_usd, rq.reserved_usd, rp.input_tokens FROM replies rp
               JOIN requests rq ON rq.id = rp.request_id"""
        ).fetchone()
        assert reason in json.loads(meta)["usage_unknown"]
        # Charged at the worst case reserved before it was sent: never more, never a refund.
        assert cost == pytest.approx(reserved) and cost > 0
        assert tokens == 0
    store.close()


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "kind", ["deep_content", "deep_body", "message_string", "usage_string", "usage_huge", "usage_negative"]
)
def test_no_backend_calls_a_malformed_reply_a_bug_in_panel(
    fake: FakeProvider, tmp_path: Path, provider: str, kind: str
) -> None:
    """Every backend reads its provider's envelope leniently: the review fails with a one-line
    reason or is kept with its usage unknown; never exit 70, never a stopped run."""
    fake.configure(poison=kind)
    stats, store, run_id = _run(fake, provider, tmp_path / "runs")
    (review,) = store.reviews(run_id)
    assert store.get_run(run_id).status == "done" and stats.done == 1  # type: ignore[union-attr]
    if review.valid:
        (meta,) = store.db.execute("SELECT meta FROM replies").fetchone()
        assert kind.startswith("usage") and json.loads(meta)["usage_unknown"]
    else:
        assert review.error and "\n" not in review.error and "bug in panel" not in review.error
    store.close()


@pytest.mark.parametrize("kind", ["deep_content", "deep_body", "message_string"])
def test_a_nine_tool_review_with_one_poisoned_reply_finishes_with_eight_valid(
    fake: FakeProvider, tmp_path: Path, cli: Any, kind: str
) -> None:
    fake.configure(poison=kind, poison_match="Amazon Textract")
    cfg = write_config(tmp_path / "panel.toml", fake, ["openai"])
    out = tmp_path / "runs"
    args = ("review", str(EXAMPLE_CATALOG), "--persona", "builder", "--config", str(cfg), "--out", str(out))
    result: CliResult = cli(*args)
    assert result.code == 0, result.err
    with Store(out) as store:
        run_id = store.latest_run()
        assert run_id is not None
        reviews = store.reviews(run_id)
    assert len(reviews) == 9 and sum(r.valid for r in reviews) == 8
    (failed,) = [r for r in reviews if not r.valid]
    assert failed.tool_id == "amazon-textract" and failed.error
    # The stored reply is read again by a resume and served by the cache to a new run: both
    # finish, the resume with nothing left to do, the new run from the cache.
    assert cli("review", "--resume", run_id, "--config", str(cfg), "--out", str(out)).code == 0
    again = cli(*args)
    assert again.code == 0, again.err


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_lone_surrogate_in_a_reply_is_stored_as_a_replacement_character(
    fake: FakeProvider, tmp_path: Path, provider: str
) -> None:
    """JSON may escape half a surrogate pair (`\\ud800`), which no UTF-8 text holds: the review
    is kept with U+FFFD in its place (the store refused the reply, which stopped the run)."""
    fake.configure(poison="lone_surrogate")
    _, store, run_id = _run(fake, provider, tmp_path / "runs")
    (review,) = store.reviews(run_id)
    assert store.get_run(run_id).status == "done" and review.valid, review.error  # type: ignore[union-attr]
    assert "\ufffd" in json.dumps(review.data, ensure_ascii=False) and "\ufffd" in (review.raw_reply or "")
    store.close()


@pytest.mark.parametrize("kind", ["usage_negative", "usage_huge", "usage_inflated"])
def test_the_budget_stays_a_ceiling_whatever_usage_a_reply_claims(
    fake: FakeProvider, tmp_path: Path, cli: Any, kind: str
) -> None:
    fake.configure(poison=kind)
    # A price that makes each request's worst case about a dollar.
    cfg = write_config(
        tmp_path / "panel.toml", fake, ["openai"], extra="price_input = 300.0\nprice_output = 300.0\n"
    )
    out = tmp_path / "runs"
    result = cli(
        "review",
        str(EXAMPLE_CATALOG),
        "--config",
        str(cfg),
        "--out",
        str(out),
        "--max-cost",
        "5",
        "--no-cache",
    )
    assert result.code == 3, result.err  # stopped at the budget
    with Store(out) as store:
        run_id = store.latest_run("stopped")
        assert run_id is not None
        spent = store.spent(run_id)
        sent = store.db.execute("SELECT COUNT(*) FROM replies WHERE cost_usd > 0").fetchone()[0]
        charges = store.db.execute(
            "SELECT rp.cost_usd, rq.reserved_usd FROM replies rp JOIN requests rq ON rq.id = rp.request_id"
        ).fetchall()
    assert 0 < spent <= 5.0
    # No reply is charged more than was reserved for it before it was sent.
    assert all(c <= r + 1e-9 for c, r in charges), [tuple(c) for c in charges]
    assert sent >= 2  # it did spend, at the worst case each, and stopped before the ceiling


def test_a_raw_line_break_inside_a_string_is_read_not_refused() -> None:
    """Some grammars let a model write a raw control character inside a JSON string; the
    review keeps it as text (pages and terminals escape or strip it where they show it)."""
    from panel.run.validate import parse_review

    persona = load_personas(data_dir("personas"))["builder"]
    answers = {q.key: "first line\nsecond\tline" for q in persona.questions}
    text = json.dumps({"answers": answers, "review": "A\x01B", "verdict_note": "n", "verdict": "ship"})
    raw = text.replace("\\n", "\n").replace("\\t", "\t").replace("\\u0001", "\x01")
    review = parse_review(persona.review_model, raw)
    assert review.model_dump()["answers"][persona.questions[0].key] == "first line\nsecond\tline"


def test_the_reservation_covers_a_prompt_in_a_dense_script() -> None:
    """A prompt in a script of about one token a character (here 3,000 CJK characters) is
    reserved at least that many tokens, so its honest count is charged in full; counted by
    characters (a third of them) it was reserved a third, and the charge capped below the bill."""
    from panel.run.pricing import input_tokens

    assert input_tokens([{"role": "user", "content": "漢" * 3000}], {}) >= 3000
    assert input_tokens([{"role": "user", "content": "a" * 3000}], {}) == (3000 + len("{}")) // 3 + 16
