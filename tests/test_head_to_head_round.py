"""Head-to-head asks sent through the engine with the fake backend: both orders of every pair
for every persona and member stored, a judge that picks by position found out, an answer that
never fits stored as failed, and a second pass (a resume) sending nothing again."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from panel.backends.base import Request
from panel.backends.fake import FakeBackend
from panel.catalog import Tool, load_catalog
from panel.personas import Persona, load_personas
from panel.prompts import PromptSet
from panel.report.head_to_head import answers_from_store, judge_bias, pair_results
from panel.run.cells import Member
from panel.run.engine import Engine
from panel.run.head_to_head_round import run_head_to_head
from panel.store import Store

from .conftest import EXAMPLE_CATALOG, ROOT

_DATA = re.compile(r"TOOL ([AB]) START\n(`{3,})json\n(.*?)\n\2\nTOOL \1 END", re.S)


def _shown(request: Request) -> dict[str, str]:
    """The tools the ask shows, read from its first user message (a re-ask adds messages after it)."""
    user = request.messages[1]["content"]
    return {label: json.loads(body)["id"] for label, _, body in _DATA.findall(user)}


def _first_shown(request: Request, sent: int) -> str:
    assert set(_shown(request)) == {"A", "B"}
    return json.dumps({"ship_with": "A", "reason": "It was shown first."})


def _setup(tmp_path: Path, backends: list[FakeBackend]) -> tuple[Engine, list[Tool], list[Persona]]:
    store = Store(tmp_path / "runs")
    store.create_run("r", "panel compare --head-to-head", None, {}, [], [])
    members = [Member(b, concurrency=2) for b in backends]
    engine = Engine(store=store, run_id="r", prompts=PromptSet(), members=members, use_cache=False)
    tools = list(load_catalog(EXAMPLE_CATALOG).tools.values())[:3]
    personas = list(load_personas(ROOT / "personas").values())[:2]
    return engine, tools, personas


def test_a_first_shown_judge_through_the_engine_ties_every_pair(tmp_path: Path) -> None:
    backends = [FakeBackend(model=m, responder=_first_shown) for m in ("one", "two")]
    engine, tools, personas = _setup(tmp_path, backends)
    stats = asyncio.run(run_head_to_head(engine, tools, personas))
    asked = 3 * 2 * 2 * 2  # pairs, orders, personas, members
    assert (stats.planned, stats.valid, stats.failed) == (asked, asked, 0)
    rows = engine.store.head_to_heads("r")
    assert len(rows) == asked and all(r.input_tokens > 0 for r in rows)
    requests = engine.store.db.execute("SELECT COUNT(*) FROM requests WHERE round = 3 AND rival IS NOT NULL")
    assert requests.fetchone()[0] == asked
    results = pair_results(answers_from_store(rows))
    assert len(results) == asked // 2 and {r.outcome for r in results} == {"first-shown"}
    judges = judge_bias(results)
    assert len(judges) == 4 and all(j.position_bias.value == 1.0 for j in judges)
    # A second pass (a resume) finds every answer stored and sends nothing.
    again = asyncio.run(run_head_to_head(engine, tools, personas))
    assert again.skipped == asked and sum(b.sent for b in backends) == asked
    engine.store.close()


def test_an_answer_that_never_fits_is_stored_failed_after_one_reask(tmp_path: Path) -> None:
    def judge(request: Request, sent: int) -> str:
        shown = _shown(request)
        if shown["A"] == "smolvlm2-2b":  # every ask that shows this tool first
            return '{"ship_with": "both", "reason": "cannot choose"}'
        return json.dumps({"ship_with": "A", "reason": "first"})

    engine, tools, personas = _setup(tmp_path, [FakeBackend(model="one", responder=judge)])
    stats = asyncio.run(run_head_to_head(engine, tools, personas[:1]))
    assert (stats.planned, stats.valid, stats.failed) == (6, 4, 2)
    failed = [r for r in engine.store.head_to_heads("r") if not r.valid]
    assert [r.first_tool for r in failed] == ["smolvlm2-2b"] * 2
    assert all(r.asks == 2 and r.error and r.error.startswith("invalid after re-ask") for r in failed)
    results = pair_results(answers_from_store(engine.store.head_to_heads("r")))
    assert sorted(r.outcome for r in results) == ["failed", "failed", "first-shown"]
    engine.store.close()


def test_compare_head_to_head_asks_both_orders_and_prints_each_judge(cli: Any, runs_dir: Path) -> None:
    out = cli("compare", "ollama", "vllm", "-b", "fake", "-p", "builder", "-p", "skeptic", "--head-to-head",
              "--out", str(runs_dir), "--progress", "quiet")  # fmt: skip
    assert out.code == 0, out.err
    with Store(runs_dir, readonly=True) as store:
        ((run, _, _),) = store.list_runs()
        rows = store.head_to_heads(run.id)
        assert run.config["head_to_head"] is True  # a resume asks them too
    shown = sorted((r.persona_id, r.first_tool, r.second_tool) for r in rows)
    assert shown == [
        ("builder", "ollama", "vllm"),
        ("builder", "vllm", "ollama"),
        ("skeptic", "ollama", "vllm"),
        ("skeptic", "vllm", "ollama"),
    ]
    assert "Head-to-head" in out.out
    assert re.search(r"ollama vs vllm: ollama \d, vllm \d, ties \d, failed 0", out.out)
    for persona in ("builder", "skeptic"):
        assert f"{persona} on fake" in out.out
    # One pair per judge: the rates say they rest on too few pairs rather than give a number.
    assert len(re.findall(r"consistent under swap too few: [01] of 1 pairs \(10 needed\)", out.out)) == 2


def test_compare_without_head_to_head_asks_none(cli: Any, runs_dir: Path) -> None:
    out = cli("compare", "ollama", "vllm", "-b", "fake", "-p", "builder", "--out", str(runs_dir),
              "--progress", "quiet")  # fmt: skip
    assert out.code == 0, out.err
    with Store(runs_dir, readonly=True) as store:
        ((run, _, _),) = store.list_runs()
        assert store.head_to_heads(run.id) == []
    assert "Head-to-head" not in out.out


def _compare_recusing(cli: Any, tmp_path: Path) -> Any:
    """`panel compare --head-to-head` of three tools, one Acme's, by `a` (Acme's, recusing)
    and `b` (no maker), one persona."""
    from .test_makers import _catalog, _toml

    catalog = _catalog(tmp_path, {"acme-one": "Acme", "other": "Other", "third": None})
    config = _toml(
        tmp_path,
        '[[members]]\nspec = "fake"\nname = "a"\nmaker = "Acme"\nrecuse = "maker"\n'
        '[[members]]\nspec = "fake"\nname = "b"\n',
    )
    out = cli("compare", "acme-one", "other", "third", "--catalog", str(catalog), "--config", str(config),
              "-p", "builder", "--head-to-head", "--out", str(tmp_path / "runs"))  # fmt: skip
    assert out.code == 0, out.err
    return out


def test_a_recused_member_judges_no_pair_with_its_makers_tool(cli: Any, tmp_path: Path) -> None:
    out = _compare_recusing(cli, tmp_path)
    with Store(tmp_path / "runs", readonly=True) as store:
        ((run, _, _),) = store.list_runs()
        judged = {(r.member, r.first_tool, r.second_tool) for r in store.head_to_heads(run.id)}
    # `a` judges only the pair without Acme's tool, in both orders; `b` judges every pair.
    assert {j for j in judged if j[0] == "a"} == {("a", "other", "third"), ("a", "third", "other")}
    assert len(judged) == 2 + 3 * 2
    lines = out.out.splitlines()
    assert any(x.strip().startswith("acme-one vs other:") and x.endswith("; recused: a") for x in lines)
    assert any(x.strip().startswith("other vs third:") and "recused" not in x for x in lines)


def _priced_plan(tmp_path: Path, toml: str, *, head_to_head: bool, pairs: tuple[str, ...] = ()) -> Any:
    from panel.config import load_config
    from panel.run.plan import plan_run

    from .test_makers import _catalog, _toml

    return plan_run(
        None,
        catalog=_catalog(tmp_path, {"acme-one": "Acme", "other": "Other", "third": None}),
        persona_ids=["builder"],
        config=load_config(_toml(tmp_path, toml)),
        head_to_head=head_to_head,
        head_to_head_pairs=pairs,
    )


def test_the_estimate_counts_and_prices_the_head_to_head_asks(tmp_path: Path) -> None:
    from panel.run.head_to_head import head_to_head_asks
    from panel.run.pricing import estimate_cost

    priced = '[[members]]\nspec = "fake"\nname = "a"\nmaker = "Acme"\nprice_input = 1\nprice_output = 1\n'
    without = estimate_cost(_priced_plan(tmp_path, priced, head_to_head=False))
    plan = _priced_plan(tmp_path, priced, head_to_head=True)
    with_h2h = estimate_cost(plan)
    # 3 pairs, 2 orders, 1 persona, 1 member: six more paid asks, a short reply each
    assert head_to_head_asks(plan) == with_h2h.head_to_head == 6
    assert with_h2h.requests == without.requests + 6
    per_ask, per_review = (with_h2h.worst_usd - without.worst_usd) / 6, without.worst_usd / 3
    assert 0 < per_ask < per_review  # two entries in, but a letter and a sentence out
    recusing = priced + 'recuse = "maker"\n[[members]]\nspec = "fake"\nname = "b"\n'
    # `a` leaves out the two pairs with acme-one (both orders); `b` judges all three
    assert head_to_head_asks(_priced_plan(tmp_path, recusing, head_to_head=True)) == 2 + 6


def test_the_estimate_counts_the_named_pairs_of_a_review(tmp_path: Path) -> None:
    from panel.run.pricing import estimate_cost

    priced = '[[members]]\nspec = "fake"\nname = "a"\nprice_input = 1\nprice_output = 1\n'
    without = estimate_cost(_priced_plan(tmp_path, priced, head_to_head=False))
    named = estimate_cost(_priced_plan(tmp_path, priced, head_to_head=False, pairs=("other:third",)))
    # `panel review --head-to-head other:third`: one pair, both orders, one persona, one member
    assert named.head_to_head == 2 and named.requests == without.requests + 2
    assert named.worst_usd > without.worst_usd


def test_the_plan_line_names_the_head_to_head_asks(cli: Any, tmp_path: Path) -> None:
    result = _compare_recusing(cli, tmp_path)
    (line,) = [x for x in (result.out + result.err).splitlines() if x.startswith("plan:")]
    assert line.startswith("plan: 5 reviews = 3 tools x 1 personas x 2 members, less 1 recused"), line
    assert ", then 8 head-to-head asks = 3 pairs x 2 orders x 1 personas x 2 members, less 4 recused" in line


def test_the_head_to_head_asks_are_told_as_progress(cli: Any, tmp_path: Path) -> None:
    result = cli(
        "compare", "ollama", "vllm", "llama-cpp", "-b", "fake", "-p", "builder", "--head-to-head",
        "--out", str(tmp_path / "runs"), "--progress", "jsonl", "--no-cache",
    )  # fmt: skip
    assert result.code == 0, result.err
    events = [json.loads(line) for line in result.err.splitlines() if line.startswith("{")]
    told = [e for e in events if e["event"] == "head_to_head"]
    # 3 pairs x 2 orders: told before the first ask (none answered) and at the last
    assert told[0] | {"total": 6, "done": 0} == told[0] and told[-1]["done"] == told[-1]["valid"] == 6
    assert events.index(told[0]) > max(i for i, e in enumerate(events) if e["event"] == "progress")
    done = events[-1]
    assert done["event"] == "done" and done["sent"] == 9  # 3 reviews + 6 head-to-head asks


def test_the_head_to_head_progress_in_plain_lines(cli: Any, tmp_path: Path) -> None:
    # a bar asked for where stderr is no terminal: plain lines, and the round in the summary
    result = cli("compare", "ollama", "vllm", "-b", "fake", "-p", "builder", "--head-to-head",
                 "--out", str(tmp_path / "runs"), "--no-cache")  # fmt: skip
    assert result.code == 0, result.err
    lines = result.err.splitlines()
    assert "head-to-head 0/2 (0%), 0 failed" in lines and "head-to-head 2/2 (100%), 0 failed" in lines, lines


def test_the_summary_line_says_the_head_to_head_round() -> None:
    from panel.cli.progress import summary_line
    from panel.run.stats import RoundStats, RunStats

    stats = RunStats(total=2, done=2, valid=2, head_to_head=RoundStats(6, 6, 5, 1))
    assert "head-to-head 6/6 answered, 1 failed" in summary_line(stats, 1.0).split(" · ")


def test_a_resumed_head_to_head_run_says_its_reviews_to_go_apart_from_the_asks(
    cli: Any, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    first = cli("compare", "ollama", "vllm", "-b", "fake", "-p", "builder", "--head-to-head",
                "--out", str(runs), "--progress", "quiet")  # fmt: skip
    assert first.code == 0, first.err
    with Store(runs) as store:
        ((run, _, _),) = store.list_runs()
        store.db.execute("DELETE FROM reviews WHERE run_id = ? AND tool_id = 'vllm'", (run.id,))
        store.finish_run(run.id, "interrupted")
        store.commit()
    again = cli("review", "--resume", run.id, "--out", str(runs))
    assert again.code == 0, again.err
    (line,) = [x for x in again.err.splitlines() if x.startswith("plan:")]
    assert line.startswith(f"plan: resuming run {run.id}: 1 of 2 reviews done, 1 to go"), line
    assert ", then up to 2 head-to-head asks = 1 pairs x 2 orders" in line, line
