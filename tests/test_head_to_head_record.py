"""Head-to-head judgements in the record, the headline and the pages, from runs made through the
engine with fake judges: a judge that always names the first-shown tool ties every pair and
its position bias is 1.0; a fair judge is consistent and its position bias rests on no pair;
the headline says when the verdict count and the head-to-head disagree; a model's reason is
data on the page; `panel review --head-to-head A:B` asks the named pairs, keeps them for a
resume, and refuses a bad pair before anything is written."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from panel.backends.base import Request
from panel.backends.fake import FakeBackend
from panel.backends.schema_fill import fill
from panel.catalog import load_catalog
from panel.config import load_config
from panel.personas import load_personas
from panel.report.load import load_record
from panel.report.record import ComparisonRecord
from panel.report.render import render_html, render_markdown
from panel.run.cells import Member
from panel.run.plan import Plan, RunOptions, plan_run, run_plan, start_run
from panel.store import Store

from .browser import chrome, full_page_screenshot, needs_browser
from .conftest import EXAMPLE_CATALOG, ROOT
from .test_makers import MAKERS, _catalog, _toml
from .test_phone_layout import SHOTS, _measure, _reads

_DUEL = re.compile(r"TOOL ([AB]) START\n(`{3,})json\n(.*?)\n\2\nTOOL \1 END", re.S)
_TOOL = re.compile(r'"id": "([^"]+)"')
#: five tools: ten pairs, enough for a judge's rates (10 pairs needed)
TOOLS = ["ollama", "vllm", "smolvlm2-2b", "moondream2", "mistral-large-3"]
#: the headline's head-to-head line when the one judge of one pair picked by position
ONE_TIE = (
    "no judge was consistent under swap (1 tied by a pick by position, 0 failed), "
    "so the head-to-head does not choose."
)
HOSTILE = "<script>alert('reason')</script> <img src=x onerror=alert(1)> | ]("


def _judge(duel: Any, ships: set[str]) -> Any:
    """A responder: reviews say ship on the tools in `ships`, skip on the others; a
    head-to-head ask is answered by `duel(tool A, tool B)`, which returns "A" or "B"."""

    def respond(request: Request, sent: int) -> str:
        user = request.messages[1]["content"]
        shown = {label: json.loads(body)["id"] for label, _, body in _DUEL.findall(user)}
        if shown:
            return json.dumps({"ship_with": duel(shown["A"], shown["B"]), "reason": HOSTILE})
        data = fill(request.schema, hashlib.sha256(user.encode()).hexdigest())
        match = _TOOL.search(user)
        assert match is not None
        data["verdict"] = "ship" if match.group(1) in ships else "skip"
        return json.dumps(data)

    return respond


def _record(
    tmp_path: Path, duel: Any, ships: set[str], tools: list[str] = TOOLS, members: int = 1
) -> ComparisonRecord:
    """A compare run of `tools` with the builder on fake members asked every pair head to head."""
    catalog = load_catalog(EXAMPLE_CATALOG)
    backends = [FakeBackend(model=f"judge-{i}", responder=_judge(duel, ships)) for i in range(members)]
    plan = Plan(
        [catalog.get(t) for t in tools],
        [load_personas(ROOT / "personas")["builder"]],
        [Member(backend, concurrency=2) for backend in backends],
        [],
        None,
        head_to_head=True,
    )
    with Store(tmp_path / "runs") as store:
        run_id, _ = asyncio.run(run_plan(plan, store, "panel compare", options=RunOptions(kind="compare")))
        return load_record(store, run_id)


def test_a_judge_that_names_the_first_shown_ties_every_pair_with_position_bias_one(tmp_path: Path) -> None:
    record = _record(tmp_path, lambda a, b: "A", ships={"ollama"})
    duels = record.head_to_head
    assert duels is not None and len(duels.pairs) == 10
    for pair in duels.pairs:
        assert (pair.wins, pair.ties, pair.failed, pair.leader) == ([0, 0], 1, 0, None)
        (j,) = pair.judgements
        assert j.outcome == "first-shown" and j.winner is None
        # Both orders' answers are kept: each names the tool it was shown first.
        assert j.forward is not None and j.swapped is not None
        assert (j.forward.shown_first, j.forward.picked) == (pair.tools[0], pair.tools[0])
        assert (j.swapped.shown_first, j.swapped.picked) == (pair.tools[1], pair.tools[1])
        assert j.forward.reason == HOSTILE and j.forward.error is None
    (judge,) = duels.judges
    assert (judge.pairs, judge.first_shown, judge.consistent) == (10, 10, 0)
    bias = judge.position_bias
    assert (bias.value, bias.count, bias.n, bias.note) == (1.0, 10, 10, None)
    assert bias.low is not None and 0.6 < bias.low < 0.75 and bias.high == pytest.approx(1.0)
    assert judge.consistency.value == 0.0
    # The verdict count backs Ollama; head to head every pair is a tie: no judgement consistent
    # under swap, so the head-to-head does not choose, and cannot disagree with the count.
    assert record.headline.pick == "ollama" and record.headline.head_to_head_pick is None
    assert record.headline.disagreement is None
    assert record.headline.head_to_head == (
        "Head to head over 10 pairs (each judge asked twice, the order swapped): no judge was consistent "
        "under swap (10 tied by a pick by position, 0 failed), so the head-to-head does not choose."
    )
    # The JSON keeps it, and reads back as the same record.
    assert ComparisonRecord.model_validate_json(record.model_dump_json()) == record


def test_a_fair_judge_is_consistent_and_its_position_bias_rests_on_no_pair(tmp_path: Path) -> None:
    # It ships with the tool whose id sorts first, wherever it is shown.
    record = _record(tmp_path, lambda a, b: "A" if a < b else "B", ships={"vllm"})
    duels = record.head_to_head
    assert duels is not None
    assert {j.outcome for p in duels.pairs for j in p.judgements} == {"consistent"}
    assert all(p.ties == 0 and p.leader == min(p.tools) for p in duels.pairs)
    (judge,) = duels.judges
    assert judge.consistency.value == 1.0 and judge.consistency.n == 10
    bias = judge.position_bias
    assert (bias.value, bias.low, bias.high, bias.n) == (None, None, None, 0)
    assert bias.note == "too few: 0 of 0 pairs (10 needed)"
    # "mistral-large-3" sorts first: it wins all its four pairs; the verdicts back vLLM.
    assert record.headline.head_to_head_pick == "mistral-large-3"
    name = {t.id: t.name for t in record.tools}
    assert record.headline.disagreement == (
        f"The two disagree: the verdict count favours {name['vllm']}, "
        f"the head-to-head favours {name['mistral-large-3']}."
    )
    assert record.headline.head_to_head is not None
    assert record.headline.head_to_head.startswith("Head to head over 10 pairs")


def test_the_headline_says_nothing_of_disagreement_when_both_back_one_tool(tmp_path: Path) -> None:
    record = _record(tmp_path, lambda a, b: "A" if a == "ollama" else "B", {"ollama"}, ["ollama", "vllm"])
    assert record.headline.pick == record.headline.head_to_head_pick == "ollama"
    assert record.headline.disagreement is None
    assert "disagreement" not in json.loads(record.model_dump_json())["headline"]
    md = render_markdown(record)
    assert "consistent wins: Ollama 1, vLLM 0;" in md and "disagree" not in md


def test_a_record_without_head_to_head_has_neither_field(tmp_path: Path) -> None:
    catalog = load_catalog(EXAMPLE_CATALOG)
    plan = Plan([catalog.get("ollama"), catalog.get("vllm")], [load_personas(ROOT / "personas")["builder"]],
                [Member(FakeBackend(), concurrency=2)], [], None)  # fmt: skip
    with Store(tmp_path / "runs") as store:
        run_id, _ = asyncio.run(run_plan(plan, store, "panel compare", options=RunOptions(kind="compare")))
        data = json.loads(load_record(store, run_id).model_dump_json())
    assert "head_to_head" not in data and "head_to_head" not in data["headline"]
    assert data["version"] == "1.9"


def test_the_page_shows_each_pair_and_judge_and_escapes_a_hostile_reason(tmp_path: Path) -> None:
    record = _record(tmp_path, lambda a, b: "A", ships={"ollama"}, tools=["ollama", "vllm"])
    html = render_html(record)
    assert HOSTILE not in html and "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(" in html
    assert 'id="head-to-head"' in html and 'href="#head-to-head"' in html
    assert "picked the first-shown tool both times: a tie" in html
    assert ONE_TIE in html and "The two disagree" not in html
    # One pair: the judge's rates rest on too few pairs, and the page says so.
    assert "too few: 0 of 1 pairs (10 needed)" in html and "too few: 1 of 1 pairs (10 needed)" in html
    md = render_markdown(record)
    assert "<script>" not in md and "<img" not in md and "&lt;script&gt;" in md
    assert "## Head to head" in md and "Ollama 0 · vLLM 0 · 1 tie · 0 failed" in md
    assert ONE_TIE in md and "disagree" not in md


def test_a_failed_answer_is_shown_and_counted_never_dropped(tmp_path: Path) -> None:
    def duel(a: str, b: str) -> str:
        return "neither" if a == "vllm" else "A"  # the B-then-A order never fits

    record = _record(tmp_path, duel, ships={"ollama"}, tools=["ollama", "vllm"])
    assert record.head_to_head is not None
    (pair,) = record.head_to_head.pairs
    assert (pair.wins, pair.ties, pair.failed) == ([0, 0], 0, 1)
    (j,) = pair.judgements
    assert j.outcome == "failed" and j.swapped is not None and j.swapped.picked is None
    assert j.swapped.error and j.swapped.error.startswith("invalid after re-ask")
    # No answer of the pair came back in both orders: the head-to-head holds no judgement.
    assert record.headline.head_to_head == (
        "Head to head (each judge asked twice, the order swapped): every answer failed, "
        "so the head-to-head does not choose."
    )
    assert record.headline.pick == "ollama" and record.headline.disagreement is None
    html = render_html(record)
    assert "an answer failed: not counted" in html and "vLLM shown first: failed" in html


def test_a_head_to_head_that_all_failed_is_not_said_to_disagree(tmp_path: Path) -> None:
    # Every answer is unreadable: no judgement came back, so nothing "is level" with the count.
    record = _record(tmp_path, lambda a, b: "neither", ships={"ollama"}, tools=["ollama", "vllm"])
    assert record.head_to_head is not None
    (pair,) = record.head_to_head.pairs
    assert (pair.wins, pair.ties, pair.failed) == ([0, 0], 0, 1)
    assert record.headline.pick == "ollama" and record.headline.head_to_head_pick is None
    assert record.headline.disagreement is None
    assert record.headline.head_to_head is not None
    assert record.headline.head_to_head.endswith("every answer failed, so the head-to-head does not choose.")
    assert "is level" not in render_markdown(record)


def test_the_head_to_head_pick_leads_every_pair_not_the_most_wins(tmp_path: Path) -> None:
    from panel.report.head_to_head import Answer, section
    from panel.report.headline import headline

    # A compare of three tools, then the head-to-head of a panel where m1 and m2 recused from
    # Ollama's maker (so judged only vLLM v Moondream2), and m3 judged every pair: Ollama won
    # every judgement of its pairs, vLLM has more wins (3 over Moondream2) but lost to Ollama.
    record = _record(tmp_path, lambda a, b: "A", ships={"moondream2"}, tools=["ollama", "vllm", "moondream2"])

    def both(member: str, a: str, b: str, winner: str) -> list[Answer]:
        return [Answer("builder", member, a, b, winner), Answer("builder", member, b, a, winner)]

    answers = (
        both("m3", "ollama", "vllm", "ollama") + both("m3", "ollama", "moondream2", "ollama")
        + both("m3", "vllm", "moondream2", "vllm") + both("m1", "vllm", "moondream2", "vllm")
        + both("m2", "vllm", "moondream2", "vllm")
    )  # fmt: skip
    names = {t.id: t.name for t in record.tools}
    duels = section(answers, names, lambda p, m: f"{p} on {m}")
    assert duels is not None
    told = headline(record.tools, record.run, duels)
    assert told.head_to_head_pick == "ollama"
    assert told.head_to_head is not None and told.head_to_head.endswith(" Ollama leads every pair.")
    assert told.disagreement == (
        f"The two disagree: the verdict count favours {names['moondream2']}, the head-to-head favours Ollama."
    )
    # A cycle (Ollama > vLLM > Moondream2 > Ollama): no tool leads every pair, no pick.
    cycle = both("m3", "ollama", "vllm", "ollama") + both("m3", "vllm", "moondream2", "vllm")
    cycle += both("m3", "ollama", "moondream2", "moondream2")
    duels = section(cycle, names, lambda p, m: f"{p} on {m}")
    assert duels is not None
    told = headline(record.tools, record.run, duels)
    assert told.head_to_head_pick is None
    assert told.head_to_head is not None and told.head_to_head.endswith(" No tool leads every pair.")
    assert told.disagreement == (
        f"The two disagree: the verdict count favours {names['moondream2']}, "
        "the head-to-head has no tool that leads every pair."
    )


def test_panel_show_prints_the_head_to_head_beside_the_verdict_count(tmp_path: Path, cli: Any) -> None:
    record = _record(tmp_path, lambda a, b: "A", ships={"ollama"}, tools=["ollama", "vllm"])
    out = cli("show", record.run_id, "--out", str(tmp_path / "runs"))
    assert out.code == 0, out.err
    assert "Head to head (each judge asked twice, the order swapped)" in out.out
    assert ONE_TIE in out.out and "The two disagree" not in out.out


def test_the_apps_run_page_shows_the_headline_and_the_section(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from panel.view.app import create_app

    record = _record(tmp_path, lambda a, b: "A", ships={"ollama"}, tools=["ollama", "vllm"])
    app = create_app(tmp_path / "runs", token=None, port=8765)
    with TestClient(app, base_url="http://127.0.0.1:8765") as client:
        page = client.get(f"/runs/{record.run_id}")
    assert page.status_code == 200
    assert ONE_TIE in page.text and "The two disagree" not in page.text
    assert 'id="head-to-head"' in page.text and "picked the first-shown tool both times: a tie" in page.text
    assert "<script>alert" not in page.text and "&lt;script&gt;alert(" in page.text


# panel review --head-to-head A:B


def _review(cli: Any, runs: Path, *more: str) -> Any:
    return cli("review", str(EXAMPLE_CATALOG), "--tools", "ollama,vllm,moondream2", "-b", "fake",
               "-p", "builder", "--out", str(runs), "--progress", "quiet", *more)  # fmt: skip


def test_review_asks_the_named_pairs_and_each_tools_record_keeps_them(cli: Any, runs_dir: Path) -> None:
    out = _review(cli, runs_dir, "--head-to-head", "ollama:vllm", "--head-to-head", "vllm:moondream2")
    assert out.code == 0, out.err
    with Store(runs_dir, readonly=True) as store:
        ((run, _, _),) = store.list_runs()
        shown = sorted((r.first_tool, r.second_tool) for r in store.head_to_heads(run.id))
        assert run.config["head_to_head_pairs"] == [["ollama", "vllm"], ["vllm", "moondream2"]]
    assert shown == [("moondream2", "vllm"), ("ollama", "vllm"), ("vllm", "moondream2"), ("vllm", "ollama")]
    assert re.search(r"ollama vs vllm: ollama \d, vllm \d, ties \d, failed 0", out.out)
    assert "ollama vs moondream2" not in out.out
    shown_later = cli("show", run.id, "--out", str(runs_dir))  # the review's summary gives them too
    assert shown_later.code == 0 and re.search(r"vllm vs moondream2: vllm \d, moondream2 \d", shown_later.out)
    tools = runs_dir / run.id / "tools"
    pairs = {
        t: [p["tools"] for p in json.loads((tools / f"{t}.json").read_text())["head_to_head"]["pairs"]]
        for t in ("ollama", "vllm", "moondream2")
    }
    assert pairs == {
        "ollama": [["ollama", "vllm"]],
        "vllm": [["ollama", "vllm"], ["vllm", "moondream2"]],
        "moondream2": [["vllm", "moondream2"]],
    }
    # Each tool's record gives a judge's rates over the run's two pairs, not its own one.
    for t in ("ollama", "vllm", "moondream2"):
        judges = json.loads((tools / f"{t}.json").read_text())["head_to_head"]["judges"]
        assert [(j["pairs"], j["consistency"]["n"]) for j in judges] == [(2, 2)], (t, judges)


@pytest.mark.parametrize(
    ("pair", "says"),
    [
        ("ollama:ollama", "a tool cannot be judged against itself"),
        ("ollama:nope", "no tool with id 'nope'"),
        ("ollama:mistral-large-3", "'mistral-large-3' is not among the tools this run reviews"),
        ("ollama", "name a pair as TOOL_A:TOOL_B"),
    ],
)
def test_review_refuses_a_bad_pair_before_anything_is_asked(
    cli: Any, runs_dir: Path, pair: str, says: str
) -> None:
    out = _review(cli, runs_dir, "--head-to-head", pair)
    assert out.code == 2
    (line,) = out.err.strip().splitlines()
    assert line.startswith(f"error: --head-to-head '{pair}': ") and says in line
    assert "Traceback" not in out.err and not runs_dir.exists()


def test_review_refuses_a_pair_named_twice(cli: Any, runs_dir: Path) -> None:
    out = _review(cli, runs_dir, "--head-to-head", "ollama:vllm", "--head-to-head", "vllm:ollama")
    assert out.code == 2 and "this pair is named twice" in out.err and not runs_dir.exists()


def test_a_resumed_review_asks_the_named_pairs_it_had_not_asked_and_no_other(
    cli: Any, runs_dir: Path
) -> None:
    pairs = ["ollama:vllm", "vllm:moondream2"]
    plan = plan_run(["ollama", "vllm", "moondream2"], catalog=EXAMPLE_CATALOG, backends=["fake"],
                    persona_ids=["builder"], head_to_head_pairs=pairs)  # fmt: skip
    with Store(runs_dir) as store:
        run_id = start_run(plan, store, "panel review", RunOptions(kind="review"))
        # Interrupted after the reviews and the first pair's asks.
        partway = replace(plan, head_to_head_pairs=plan.head_to_head_pairs[:1])
        asyncio.run(run_plan(partway, store, "panel review", run_id=run_id))
        store.finish_run(run_id, "interrupted")
        assert len(store.head_to_heads(run_id)) == 2
    out = cli("review", "--resume", run_id, "--out", str(runs_dir), "--progress", "quiet")
    assert out.code == 0, out.err
    with Store(runs_dir, readonly=True) as store:
        rows = store.head_to_heads(run_id)
        sent = store.db.execute("SELECT COUNT(*) FROM requests WHERE run_id = ? AND round = 3", (run_id,))
        asked = sent.fetchone()[0]
    assert sorted((r.first_tool, r.second_tool) for r in rows) == [
        ("moondream2", "vllm"), ("ollama", "vllm"), ("vllm", "moondream2"), ("vllm", "ollama")
    ]  # fmt: skip
    assert asked == 4  # the first pair's two asks were not sent again


def test_resume_refuses_new_pairs(cli: Any, runs_dir: Path) -> None:
    assert _review(cli, runs_dir).code == 0
    out = cli("review", "--resume", "last", "--head-to-head", "ollama:vllm", "--out", str(runs_dir))
    assert (
        out.code == 2
        and "--resume finishes a run as it was planned" in out.err
        and "--head-to-head" in out.err
    )


@needs_browser
@pytest.mark.parametrize("width", [390, 1280])
def test_the_head_to_head_section_reads_at_this_width(tmp_path: Path, width: int) -> None:
    # Ten pairs on two members, every pair a tie, each answer with the long hostile reason.
    record = _record(tmp_path, lambda a, b: "A", ships={"ollama"}, members=2)
    page = tmp_path / "comparison.html"
    page.write_text(render_html(record), encoding="utf-8")
    with chrome(tmp_path / "chrome", width=width) as driver:
        measured = _measure(driver, page.as_uri())
        boxes = driver.execute_script(
            "return [...document.querySelectorAll('#head-to-head .duel, #head-to-head li')]"
            ".map((e) => e.getBoundingClientRect().right)"
        )
        if SHOTS:
            full_page_screenshot(driver, Path(SHOTS) / f"head_to_head_{width}.png")
    _reads(measured)  # the judges' table fits or scrolls in its box, with a cue
    assert len(boxes) == 10 + 10 * 2  # a box per pair, a line per judge of each
    assert all(right <= width + 0.5 for right in boxes), boxes


def test_a_recusing_member_judges_no_pair_with_its_makers_tool(tmp_path: Path) -> None:
    toml = (
        '[[members]]\nspec = "fake"\nname = "a"\nmaker = "Acme"\nrecuse = "maker"\n'
        '[[members]]\nspec = "fake"\nname = "b"\nmaker = "Acme"\n'
    )
    plan = plan_run(None, catalog=_catalog(tmp_path, MAKERS), persona_ids=["builder"],
                    config=load_config(_toml(tmp_path, toml)), head_to_head=True)  # fmt: skip
    with Store(tmp_path / "runs") as store:
        run_id, _ = asyncio.run(run_plan(plan, store, "panel compare", options=RunOptions(kind="compare")))
        asked = {(r.member, r.first_tool, r.second_tool) for r in store.head_to_heads(run_id)}
        record = load_record(store, run_id)
    # a: only the pair of the two tools Acme did not make, both orders; b: all six pairs.
    assert {(f, s) for m, f, s in asked if m == "a"} == {("other", "nobody"), ("nobody", "other")}
    assert len([1 for m, _, _ in asked if m == "b"]) == 12
    assert record.head_to_head is not None
    assert {j.member: j.pairs for j in record.head_to_head.judges} == {"a": 1, "b": 6}
