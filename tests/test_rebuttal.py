"""The rebuttal round: both rounds stored, reviewers anonymised, flips in the record and pages,
inconsistent answers re-asked, resume, the cache, and round 1 vs round 2 in `panel agreement`."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from panel.backends.base import Request
from panel.backends.fake import FakeBackend
from panel.catalog import load_catalog
from panel.errors import UnreachableError
from panel.personas import Persona, load_personas
from panel.report.load import load_record
from panel.report.render import render_html, render_markdown
from panel.run.cells import Member
from panel.run.plan import Plan, RunOptions, run_plan
from panel.run.retry import RetryPolicy
from panel.store import Store
from panel.testing.schema_fill import fill

from .conftest import EXAMPLE_CATALOG
from .html_tables import tables

# Names a careless prompt would leak: none is a word a fake reply or the catalog could hold.
PERSONAS = {
    "zorblax": "Zorblax Prime",
    "quindle": "Quindle Vane",
    "marrowit": "Marrowit Seer",
}
MODELS = ("vortex-omega", "nimbus-kappa")

Answer = Callable[[Request, str], str]


def _persona_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "personas"
    folder.mkdir(exist_ok=True)
    for k, (pid, name) in enumerate(PERSONAS.items()):
        (folder / f"{pid}.yaml").write_text(
            f"id: {pid}\nname: {name}\norder: {k}\nlens: one angle\nvoice: plain and short\n"
            "questions:\n  - key: angle\n    question: What matters most?\n"
            "decision: Ship when it holds up.\n"
        )
    return folder


def _personas(tmp_path: Path) -> list[Persona]:
    found = load_personas(_persona_dir(tmp_path))
    return [found[p] for p in PERSONAS]


def _first(request: Request, verdict: str, text: str = "A plain sentence about the tool.") -> str:
    data = fill(request.schema, "r1")
    data["verdict"], data["review"] = verdict, text
    return json.dumps(data)


def _round1_verdict(request: Request, model: str) -> str:
    # zorblax says skip on vortex-omega, everyone else ship
    return "skip" if request.schema_name.startswith("zorblax") and model == MODELS[0] else "ship"


def _keep_or_flip(request: Request, model: str) -> str:
    """Round 2: zorblax on vortex-omega changes skip -> ship, everyone else keeps."""
    if request.schema_name.startswith("zorblax") and model == MODELS[0]:
        return json.dumps(
            {"decision": "change", "why": "<script>alert(1)</script> Reviewer B is right.", "verdict": "ship"}
        )
    return json.dumps({"decision": "keep", "why": "Nothing new.", "verdict": "ship"})


def _responder(
    model: str, second: Answer = _keep_or_flip, first: Answer | None = None
) -> Callable[[Request, int], str]:
    def answer(request: Request, n: int) -> str:
        if request.schema_name.endswith("_rebuttal"):
            return second(request, model)
        if first is not None:
            return first(request, model)
        # each cell's text its own (a hash of its prompt), and naming no one
        mark = hashlib.sha256(json.dumps([request.messages, model]).encode()).hexdigest()[:8]
        return _first(request, _round1_verdict(request, model), f"Plain sentence {mark}.")

    return answer


def _plan(
    tmp_path: Path, backends: list[FakeBackend], rebuttal: bool = True, tools: tuple[str, ...] = ("ollama",)
) -> Plan:
    catalog = load_catalog(EXAMPLE_CATALOG)
    return Plan(
        [catalog.get(t) for t in tools],
        _personas(tmp_path),
        [Member(b, 1) for b in backends],
        [],
        None,
        rebuttal=rebuttal,
    )


def _backends(**kwargs: Answer) -> list[FakeBackend]:
    return [FakeBackend(model=m, responder=_responder(m, **kwargs)) for m in MODELS]


def _run(store: Store, plan: Plan, run_id: str | None = None) -> str:
    rid, _ = asyncio.run(run_plan(plan, store, "panel compare --rebuttal", run_id=run_id))
    return rid


def _round2_requests(store: Store, run_id: str) -> list[tuple[tuple[str, str, str], list[dict[str, str]]]]:
    rows = store.db.execute(
        "SELECT tool_id, persona_id, member, messages FROM requests "
        "WHERE run_id = ? AND round = 2 ORDER BY id",
        (run_id,),
    )
    return [((r[0], r[1], r[2]), json.loads(r[3])) for r in rows]


def test_a_rebuttal_run_stores_both_rounds_and_counts_round_two_apart(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs")
    run_id = _run(store, _plan(tmp_path, _backends()))
    reviews = store.reviews(run_id)
    answers = store.rebuttals(run_id)
    assert len(reviews) == 6 and len(answers) == 6  # 3 personas x 2 members, both rounds
    flipped = [a for a in answers if a.changed]
    assert [(a.persona_id, a.member, a.verdict_before, a.verdict_after) for a in flipped] == [
        ("zorblax", "fake:vortex-omega", "skip", "ship")
    ]
    assert all(a.others == 5 and a.valid and a.asks == 1 and a.input_tokens > 0 for a in answers)
    # round 1 stays as the model wrote it, and counts only its own requests' tokens
    (z,) = [r for r in reviews if r.persona_id == "zorblax" and r.member == "fake:vortex-omega"]
    assert z.verdict == "skip"
    one = store.db.execute(
        "SELECT SUM(rp.input_tokens) FROM requests rq JOIN replies rp ON rp.request_id = rq.id "
        "WHERE rq.run_id = ? AND rq.round = 1 AND rq.persona_id = 'zorblax' "
        "AND rq.member = 'fake:vortex-omega'",
        (run_id,),
    ).fetchone()[0]
    assert z.input_tokens == one
    assert store.get_run(run_id).config["rebuttal"] is True  # type: ignore[union-attr]
    store.close()


def test_rebuttal_prompts_name_no_other_reviewer(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs")
    run_id = _run(store, _plan(tmp_path, _backends(), tools=("ollama", "vllm")))
    requests = _round2_requests(store, run_id)
    assert len(requests) == 12
    for (_tool, persona, _member), messages in requests:
        system, user = messages[0]["content"], messages[1]["content"]
        # the user message names no persona and no model, its own included
        for pid, name in PERSONAS.items():
            assert pid not in user.lower() and name.lower() not in user.lower()
            if pid != persona:  # the system message is the reader's own voice, nobody else's
                assert pid not in system.lower() and name.lower() not in system.lower()
        for model in MODELS:
            assert model not in system and model not in user
        assert PERSONAS[persona] in system
        assert "REVIEWER A START" in user and "REVIEWER E START" in user
        assert "REVIEWER F" not in user  # five others
    # the order of the others is the reader's own: two readers see the ones they share in
    # different orders
    orders = []
    for (tool, _, _), messages in requests:
        if tool == "ollama":
            texts = re.findall(r"Plain sentence \w+", messages[1]["content"])[1:]  # the first is its own
            assert len(texts) == 5
            orders.append(texts)
    differ = 0
    for a, b in itertools.combinations(orders, 2):
        shared = set(a) & set(b)
        differ += [t for t in a if t in shared] != [t for t in b if t in shared]
    assert differ > 0
    store.close()


def test_an_answer_whose_decision_disagrees_with_its_verdict_is_reasked_once(tmp_path: Path) -> None:
    asked: list[Request] = []

    def second(request: Request, model: str) -> str:
        asked.append(request)
        if len(asked) == 1:
            return json.dumps(
                {"decision": "keep", "why": "Still fine.", "verdict": "skip"}
            )  # round 1 said ship
        return json.dumps({"decision": "keep", "why": "Still fine.", "verdict": "ship"})

    backend = FakeBackend(model=MODELS[1], responder=_responder(MODELS[1], second=second))
    plan = _plan(tmp_path, [backend])
    plan.personas = plan.personas[1:]  # quindle and marrowit, both ship in round 1
    store = Store(tmp_path / "runs")
    run_id = _run(store, plan)
    answers = {a.persona_id: a for a in store.rebuttals(run_id)}
    assert answers["quindle"].valid and answers["quindle"].asks == 2
    note = asked[1].messages[-1]["content"]
    assert '"decision" is "keep" but "verdict" is "skip"' in note and '"ship"' in note
    assert asked[1].messages[-2] == {
        "role": "assistant",
        "content": json.dumps({"decision": "keep", "why": "Still fine.", "verdict": "skip"}),
    }
    store.close()


def test_an_answer_still_inconsistent_after_the_reask_fails_and_round_one_stands(tmp_path: Path) -> None:
    def second(request: Request, model: str) -> str:
        return json.dumps({"decision": "change", "why": "Hmm.", "verdict": "ship"})  # ship was round 1's

    store = Store(tmp_path / "runs")
    run_id = _run(store, _plan(tmp_path, _backends(second=second)))
    record = load_record(store, run_id)
    (entry,) = [
        e for e in record.tools[0].scorecard if e.persona_id == "quindle" and e.member.endswith("omega")
    ]
    assert entry.rebuttal is not None and not entry.rebuttal.valid and entry.rebuttal.asks == 2
    assert entry.verdict == "ship" and "invalid after re-ask" in (entry.rebuttal.error or "")
    store.close()


def test_the_record_and_both_pages_show_the_flip_and_both_rounds(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs")
    run_id = _run(store, _plan(tmp_path, _backends()))
    record = load_record(store, run_id)
    card = record.tools[0]
    (z,) = [e for e in card.scorecard if e.persona_id == "zorblax" and e.member == "fake:vortex-omega"]
    assert z.verdict == "ship" and z.rebuttal is not None and z.rebuttal.changed
    assert (z.rebuttal.verdict_before, z.rebuttal.verdict_after, z.rebuttal.decision) == (
        "skip",
        "ship",
        "change",
    )
    assert card.panel.display == "100%" and card.panel.first_round is not None
    assert card.panel.first_round.display == "83%" and card.panel.changed_after_rebuttal == 1
    assert record.rebuttal is not None and record.rebuttal.changed == 1 and record.version == "1.9"
    md, html = render_markdown(record), render_html(record)
    assert "*(changed after rebuttal: skip → ship)*" in md
    assert "Changed after rebuttal: skip → ship." in html
    assert "round 1: 83%" in md and "round 1: 83%" in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in md
    store.close()


def test_a_run_without_a_rebuttal_round_keeps_the_record_as_it_was(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs")
    run_id = _run(store, _plan(tmp_path, _backends(), rebuttal=False))
    data = json.loads(load_record(store, run_id).model_dump_json())
    assert "rebuttal" not in data and "first_round" not in data["tools"][0]["panel"]
    assert all("rebuttal" not in e and "names_itself" not in e for e in data["tools"][0]["scorecard"])
    assert store.rebuttals(run_id) == []
    store.close()


def test_a_review_that_names_its_own_persona_or_model_is_flagged(tmp_path: Path) -> None:
    def first(request: Request, model: str) -> str:
        if request.schema_name.startswith("quindle"):
            return _first(request, "ship", f"Speaking as Quindle Vane, on {model}, I like it.")
        return _first(request, "ship")

    store = Store(tmp_path / "runs")
    run_id = _run(store, _plan(tmp_path, _backends(first=first)))
    record = load_record(store, run_id)
    flagged = {(e.persona_id, e.member): e.names_itself for e in record.tools[0].scorecard if e.names_itself}
    assert flagged == {
        ("quindle", "fake:vortex-omega"): ["quindle", "Quindle Vane", "vortex-omega"],
        ("quindle", "fake:nimbus-kappa"): ["quindle", "Quindle Vane", "nimbus-kappa"],
    }
    assert record.rebuttal is not None and record.rebuttal.names_itself == 2
    # an internal of the rebuttal round: in the page's "how it was made", not in the reader's text
    assert "could tell who wrote it" not in render_markdown(record) + render_html(record)
    made = render_markdown(record, how_made=True) + render_html(record, how_made=True)
    assert made.count("could tell who wrote it") == 4
    store.close()


def test_resume_after_round_one_and_mid_round_two_sends_only_the_missing_answers(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs")
    # round 1 only, as if the process had stopped there
    run_id = _run(store, _plan(tmp_path, _backends(), rebuttal=False))
    store.db.execute(
        "UPDATE runs SET config = json_set(config, '$.rebuttal', json('true')) WHERE id = ?", (run_id,)
    )

    calls: list[str] = []
    count = [0]

    def cut(request: Request, model: str) -> str:
        calls.append(request.schema_name)
        count[0] += 1
        if count[0] == 4:
            raise KeyboardInterrupt  # the process dies with this request out
        return _keep_or_flip(request, model)

    plan = _plan(tmp_path, _backends(second=cut))
    with pytest.raises(KeyboardInterrupt):
        _run(store, plan, run_id)
    stored = len(store.rebuttals(run_id))
    assert stored == 3 and len(calls) == 4  # no round-1 request was sent again
    store.close()

    store = Store(tmp_path / "runs")
    calls.clear()
    again = _plan(
        tmp_path, _backends(second=lambda r, m: (calls.append(r.schema_name), _keep_or_flip(r, m))[1])
    )
    _run(store, again, run_id)
    assert len(calls) == 6 - stored and all(c.endswith("_rebuttal") for c in calls)
    assert len(store.rebuttals(run_id)) == 6
    # each member's worker had one request out when the process died: charged, then sent again
    lost = store.db.execute("SELECT COUNT(*) FROM requests WHERE run_id = ? AND status = 'lost'", (run_id,))
    assert lost.fetchone()[0] == len(MODELS)
    store.close()


def test_a_second_run_of_the_same_requests_answers_round_two_from_the_cache(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs")
    _run(store, _plan(tmp_path, _backends()))
    backends = _backends()
    second = _run(store, _plan(tmp_path, backends))
    assert sum(b.sent for b in backends) == 0
    assert len(store.rebuttals(second)) == 6
    store.close()


def test_agreement_sets_round_one_beside_round_two_with_the_flip_rate(
    tmp_path: Path, cli: Callable[..., object]
) -> None:
    store = Store(tmp_path / "runs")
    run_id = _run(store, _plan(tmp_path, _backends(), tools=("ollama", "vllm")))
    store.close()
    labels = tmp_path / "labels.csv"
    labels.write_text("tool,verdict\nollama,ship\nvllm,ship\n")
    out = tmp_path / "runs"
    result = cli(
        "agreement",
        run_id,
        "--out",
        str(out),
        "--format",
        "json",
        "--resamples",
        "20",
        "--reference",
        str(labels),
    )
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    rounds = json.loads(result.out)["rounds"]  # type: ignore[attr-defined]
    overall = rounds["flips"][-1]
    assert (overall["answered"], overall["changed"], overall["to_reference"], overall["from_reference"]) == (
        12,
        2,
        2,
        0,
    )
    assert overall["to_majority"] == 2
    z = next(f for f in rounds["flips"] if f["name"] == "zorblax")
    assert (z["answered"], z["changed"], z["rate"]) == (4, 2, 0.5)
    panel = next(a for a in rounds["accuracy"] if a["kind"] == "panel")
    assert panel["round1"]["accuracy"]["point"] == pytest.approx(10 / 12)
    assert panel["round2"]["accuracy"]["point"] == 1.0
    assert (
        rounds["round1"]["percent_agreement"]["point"] < rounds["round2"]["percent_agreement"]["point"] == 1.0
    )

    table = cli("agreement", run_id, "--out", str(out), "--resamples", "20")
    assert "Flip rate in the rebuttal round" in table.out and "round 1 vs round 2" in table.out  # type: ignore[attr-defined]
    csv = cli("agreement", run_id, "--out", str(out), "--format", "csv")
    lines = csv.out.splitlines()  # type: ignore[attr-defined]
    assert lines[0].endswith(",round") and len(lines) == 1 + 2 * 12


def test_the_agreement_page_has_the_rebuttal_section(tmp_path: Path, cli: Callable[..., object]) -> None:
    pytest.importorskip("matplotlib")
    store = Store(tmp_path / "runs")
    run_id = _run(store, _plan(tmp_path, _backends(), tools=("ollama", "vllm")))
    store.close()
    page = tmp_path / "report.html"
    result = cli(
        "agreement", run_id, "--out", str(tmp_path / "runs"), "--resamples", "20", "--report", str(page)
    )
    assert result.code == 0, result.err  # type: ignore[attr-defined]
    html = page.read_text()
    assert "Does debate help or herd?" in html
    section = html[html.index('<section class="section" id="rebuttal"') :]
    found = tables(section[: section.index("</section>")])
    # the figures of `panel agreement --format json` for this run (the test above), as a reader sees them
    assert found["Flip rate in the rebuttal round"] == [
        ["Group", "Answers", "Changed", "Flip rate", "To the majority"],
        ["persona: zorblax", "4", "2", "50%", "2"],
        ["persona: quindle", "4", "0", "0%", "0"],
        ["persona: marrowit", "4", "0", "0%", "0"],
        ["member: fake:vortex-omega", "6", "2", "33%", "2"],
        ["member: fake:nimbus-kappa", "6", "0", "0%", "0"],
        ["all reviewers", "12", "2", "17%", "2"],
    ]
    agreement = found["Inter-rater agreement, round 1 vs after the rebuttal round"]
    assert agreement[0] == ["Statistic", "Round 1", "After rebuttal"]
    one_point = "one point: not a meaningful interval"  # two tools: resampling never moves them
    assert agreement[1] == [
        "Percent agreement",
        f"0.667 [0.667, 0.667] {one_point}",
        f"1.000 [1.000, 1.000] {one_point}",
    ]


def test_a_rebuttal_prompt_shows_answers_as_one_text_so_their_count_names_no_persona(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs")
    run_id = _run(store, _plan(tmp_path, _backends()))
    (_, messages), *_ = _round2_requests(store, run_id)
    blocks = re.findall(
        r"REVIEWER [A-Z]+ START\n`{3,}json\n(.*?)\n`{3,}\nREVIEWER", messages[-1]["content"], re.S
    )
    assert len(blocks) == 5
    for block in blocks:
        read = json.loads(block)
        assert isinstance(read["points"], str) and "answers" not in read


def test_setting_a_review_aside_drops_its_rebuttal_so_a_resume_answers_anew(tmp_path: Path) -> None:
    from panel.store import CellKey

    store = Store(tmp_path / "runs")
    run_id = _run(store, _plan(tmp_path, _backends()))
    key = CellKey("ollama", "zorblax", "fake:vortex-omega", 0)
    assert store.has_rebuttal(run_id, key)
    store.archive_review(run_id, key, "too thin")
    assert not store.has_rebuttal(run_id, key)
    assert len(store.rebuttals(run_id)) == 5


def test_round_two_keeps_within_a_members_own_reply_limit(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs")
    plan = _plan(tmp_path, _backends())
    plan.members = [replace(m, max_tokens=64) for m in plan.members]
    run_id = _run(store, plan)
    limits = {
        json.loads(r[0])["max_tokens"]
        for r in store.db.execute("SELECT settings FROM requests WHERE run_id = ? AND round = 2", (run_id,))
    }
    assert limits == {64}


def test_a_server_gone_in_round_two_stops_its_member_and_a_resume_answers_the_rest(tmp_path: Path) -> None:
    # One member's server refuses every connection once round 1 is done: as in round 1, the
    # member stops and its answers wait for --resume; stored as failed (as they were, each
    # after its four tries), a resume never asked them again.
    def gone(request: Request, model: str) -> str:
        raise UnreachableError(f"fake:{model}: Cannot connect to host")

    backends = [
        FakeBackend(model=MODELS[0], responder=_responder(MODELS[0], second=gone)),
        FakeBackend(model=MODELS[1], responder=_responder(MODELS[1])),
    ]
    options = RunOptions(retry=RetryPolicy(base_wait=0.0, max_wait=0.0))
    store = Store(tmp_path / "runs")
    run_id, stats = asyncio.run(run_plan(_plan(tmp_path, backends), store, "test", options=options))
    assert list(stats.members_stopped) == [f"fake:{MODELS[0]}"]
    assert [(r.member, r.valid) for r in store.rebuttals(run_id)] == [(f"fake:{MODELS[1]}", True)] * 3
    run = store.get_run(run_id)
    assert run is not None and run.status == "stopped"
    store.close()

    store = Store(tmp_path / "runs")
    _, stats = asyncio.run(
        run_plan(_plan(tmp_path, _backends()), store, "test", options=options, run_id=run_id)
    )
    assert not stats.members_stopped
    assert len(store.rebuttals(run_id)) == 6 and all(r.valid for r in store.rebuttals(run_id))
    store.close()
