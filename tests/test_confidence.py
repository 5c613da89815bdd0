"""Each verdict's confidence and contested flags, on hand-built runs whose answers are known."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from panel.report.confidence import MIN_REVIEWS, doubt, run_confidence, wilson
from panel.report.files import write_review_outputs
from panel.report.load import load_record
from panel.report.render import render_html, render_markdown
from panel.resources import data_dir
from panel.store import CellKey, Store
from tests.factories import personas, store_verdicts, tool


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path)


def codes(store: Store, run_id: str, tool: str) -> list[str]:
    return [r.code for r in run_confidence(store, run_id)[tool].reasons]


def test_unanimous_panel_is_not_contested_and_ships(store: Store) -> None:
    store_verdicts(store, "r", {p: ["ship"] for p in "abcd"}, status="done")
    c = run_confidence(store, "r")["t0"]
    assert c.method == "vote-share" and c.ship == 1.0 and c.low is not None and c.low > 0.5
    assert not c.contested and c.reasons == []
    assert "1 tools are too few (< 20)" in c.basis and c.reviews == 4


def test_two_two_split_is_contested_as_split_and_a_coin_toss(store: Store) -> None:
    store_verdicts(store, "r", {"a": ["ship"], "b": ["ship"], "c": ["skip"], "d": ["skip"]}, status="done")
    c = run_confidence(store, "r")["t0"]
    # no margin: a Wilson interval on 4 reviews includes even odds whatever they say
    assert c.contested and [r.code for r in c.reasons] == ["split"]
    assert "2 ship, 2 skip" in c.reasons[0].text and c.doubt == 1.0


def test_a_flip_in_the_rebuttal_round_is_a_reason_and_its_verdict_counts(store: Store) -> None:
    store_verdicts(store, "r", {p: ["ship"] for p in "abcd"}, status="done")
    store.save_rebuttal("r", CellKey("t0", "a", "a:x"), "a", "x", verdict_before="ship", others=3,
                        data={"decision": "change", "why": "w", "verdict": "skip"}, error=None,
                        raw_reply=None, request_id=None, asks=1)  # fmt: skip
    c = run_confidence(store, "r")["t0"]
    assert "rebuttal_flip" in [r.code for r in c.reasons] and c.ship == 0.75


def test_an_editors_edit_does_not_enter_the_models_confidence(store: Store) -> None:
    store_verdicts(store, "r", {"a": ["ship"], "b": ["ship"], "c": ["skip"], "d": ["skip"]}, status="done")
    store.edit_review("r", CellKey("t0", "c", "a:x"), "verdict", "ship")
    c = run_confidence(store, "r")["t0"]
    assert c.ship == 0.5 and "split" in [r.code for r in c.reasons]  # what the models said


def test_a_failed_review_that_could_turn_the_majority_is_a_reason(store: Store) -> None:
    store_verdicts(store, "r", {"a": ["ship", "ship"], "b": ["ship", "ship"], "c": ["skip", "ship"],
                                "d": [None, "ship"], "e": [None, None]}, status="done")  # fmt: skip
    found = run_confidence(store, "r")
    assert "failed" in [r.code for r in found["t0"].reasons]  # 2-1 with two failed: could turn
    assert "failed" not in [r.code for r in found["t1"].reasons]  # 4-0: one more cannot turn it


def test_a_flip_since_the_previous_run_of_the_tool(store: Store) -> None:
    store_verdicts(store, "old", {p: ["ship", "ship"] for p in "abcd"}, status="done")
    time.sleep(0.01)
    store_verdicts(store, "unfinished", {p: ["skip", "skip"] for p in "abcd"}, status="stopped")
    time.sleep(0.01)
    store_verdicts(store, "new", {p: ["skip", "ship"] for p in "abcd"}, status="done")
    found = run_confidence(store, "new")
    (reason,) = [r for r in found["t0"].reasons if r.code == "flipped_since"]
    assert reason.text == "Run old said ship; this run says not ship."
    assert not found["t1"].contested
    assert not run_confidence(store, "old")["t0"].contested  # nothing earlier to flip from


def test_a_small_panel_says_its_confidence_cannot_be_estimated(store: Store) -> None:
    store_verdicts(store, "r", {"a": ["ship"], "b": ["ship"], "c": [None]}, status="done")
    c = run_confidence(store, "r")["t0"]
    assert c.method == "none" and c.ship is None and c.low is None and c.high is None
    assert c.basis == f"cannot be estimated from 2 valid reviews (the minimum is {MIN_REVIEWS})"
    assert c.doubt == 1.0


def planted(n: int = 40, seed: int = 3) -> dict[str, list[str | None]]:
    """Four good judges (accuracy 0.95) and a judge answering at random, on n tools; on the
    last tool the good judges split 2-2 and the random judge's ship decides."""
    rng = random.Random(seed)
    truth = [rng.random() < 0.5 for _ in range(n)]
    cols: dict[str, list[str | None]] = {}
    for p in "abcd":
        cols[p] = [("ship" if t == (rng.random() < 0.95) else "skip") for t in truth]
    cols["coin"] = [("ship" if rng.random() < 0.5 else "skip") for _ in truth]
    for p, v in zip("abcd", ["ship", "ship", "skip", "skip"], strict=True):
        cols[p][-1] = v
    cols["coin"][-1] = "ship"
    return cols


def test_judges_at_chance_give_every_tool_the_full_interval_and_say_why(store: Store) -> None:
    rng = random.Random(1)
    store_verdicts(store, "r", {p: [rng.choice(["ship", "skip"]) for _ in range(60)] for p in "abcde"},
                   status="done")  # fmt: skip
    found = run_confidence(store, "r")
    assert {c.method for c in found.values()} == {"dawid-skene"}
    assert all(c.low == 0.0 and c.high == 1.0 and c.doubt == 1.0 for c in found.values())
    basis = found["t0"].basis
    assert "did not settle in 200 iterations" in basis and "every interval is 0 to 1" in basis


def test_dawid_skene_finds_the_planted_weak_judge(store: Store) -> None:
    cols = planted()
    store_verdicts(store, "r", cols, status="done")
    found = run_confidence(store, "r")
    last = found[f"t{len(found) - 1}"]
    assert last.method == "dawid-skene" and last.tools == 40
    weak = [r for r in last.reasons if r.code == "weak_judge"]
    assert weak and "coin on a:x" in weak[0].text
    assert "Dawid–Skene on 40 tools and 5 judges" in last.basis
    # tools where the four good judges agree are confident whatever the random judge says
    agreed = [found[f"t{i}"] for i in range(40) if len({cols[p][i] for p in "abcd"}) == 1]
    assert len(agreed) > 20 and all(not c.contested and c.doubt < 0.01 for c in agreed)
    assert all(c.low is not None and c.high is not None and c.low <= c.ship <= c.high for c in found.values()
               if c.ship is not None)  # fmt: skip


def test_editor_reliabilities_weigh_each_judge(store: Store) -> None:
    store_verdicts(store, "r", {"a": ["ship"], "b": ["skip"], "c": ["skip"]}, status="done")
    trusted = {
        ("a", "a:x"): [[50, 0], [0, 50]],
        ("b", "a:x"): [[5, 5], [5, 5]],
        ("c", "a:x"): [[5, 5], [5, 5]],
    }
    c = run_confidence(store, "r", reliabilities=trusted)["t0"]
    assert c.method == "editors" and c.labels == 100 and c.ship is not None and c.ship > 0.9
    assert run_confidence(store, "r")["t0"].ship == pytest.approx(1 / 3, abs=1e-4)
    elsewhere = run_confidence(store, "r", reliabilities={("z", "a:x"): [[9, 1], [1, 9]]})["t0"]
    assert elsewhere.method == "vote-share" and "none of its judges has editor labels" in elsewhere.basis
    assert elsewhere.labels == 0


def test_wilson_and_doubt_by_hand() -> None:
    low, high = wilson(2, 4)
    assert (round(low, 4), round(high, 4)) == (0.15, 0.85)
    assert doubt(0.9, 0.8, 0.95) == pytest.approx(0.4)  # the weak end 0.8 is 0.3 from even odds
    assert doubt(0.2, 0.1, 0.6) == 1.0 and doubt(None, None, None) == 1.0


def store_planted(store: Store, cols: dict[str, list[str | None]], run_id: str = "r") -> None:
    """A done run of ``cols`` with whole tools and personas, so its record can be built."""
    store_verdicts(store, run_id, cols, status="done")
    shape = personas()[0].model_dump(mode="json")
    n = len(next(iter(cols.values())))
    with store.transaction() as db:
        for i in range(n):
            db.execute("UPDATE run_tools SET data = ? WHERE run_id = ? AND tool_id = ?",
                       (json.dumps(tool(f"t{i}").model_dump(mode="json")), run_id, f"t{i}"))  # fmt: skip
        for p in cols:
            db.execute("UPDATE run_personas SET data = ? WHERE run_id = ? AND persona_id = ?",
                       (json.dumps({**shape, "id": p}), run_id, p))  # fmt: skip


def test_each_tools_record_carries_its_confidence_and_validates(store: Store) -> None:
    store_planted(store, planted())
    folder = write_review_outputs(store, "r")
    schema = json.loads((data_dir("schema") / "comparison.schema.json").read_text())
    last = json.loads((folder / "tools" / "t39.json").read_text())
    jsonschema.validate(last, schema)
    assert last["version"] == "1.9"
    confidence = last["tools"][0]["confidence"]
    assert confidence["method"] == "dawid-skene" and confidence["tools"] == 40
    assert {r["code"] for r in confidence["reasons"]} >= {"split", "weak_judge"}


def test_the_page_shows_the_confidence_in_one_line_and_escapes_it(store: Store) -> None:
    store_planted(store, planted())
    html = render_html(load_record(store, "r", tool_id="t39"))
    (line,) = re.findall(r'<p class="confidence">(.*?)</p>', html, re.S)
    assert line.startswith("Panel&#39;s ship probability ")  # escaped, as all text is
    assert ", Dawid–Skene on 40 tools." in line
    assert '<strong class="contested">Contested:</strong>' in line and "The panel is split" in line
    assert "judges of low estimated accuracy: coin on a:x" in line
    md = render_markdown(load_record(store, "r", tool_id="t39"))
    assert "| Confidence | Panel's ship probability" in md and "**contested**" in md


def test_without_numpy_the_vote_share_stands_in_and_says_what_to_install(tmp_path: Path) -> None:
    script = (
        "import sys, json\n"
        "sys.modules['numpy'] = None  # as if the analysis extra were not installed\n"
        "from panel.store import Store\n"
        "from panel.report.confidence import run_confidence\n"
        "from tests.factories import store_verdicts\n"
        "store = Store(sys.argv[1])\n"
        "store_verdicts(store, 'r', {p: ['ship'] * 25 for p in 'abcd'}, status='done')\n"
        "c = run_confidence(store, 'r')['t0']\n"
        "print(json.dumps([c.method, c.basis, sys.modules.get('numpy') is not None]))\n"
    )
    root = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=False, env=env
    )
    assert done.returncode == 0, done.stderr
    method, basis, loaded = json.loads(done.stdout)
    assert method == "vote-share" and not loaded
    assert "numpy is not installed" in basis and "pip install 'toolpanel[analysis]'" in basis


def test_split_is_ship_against_not_ship_not_between_other_verdicts(store: Store) -> None:
    store_verdicts(store, "r", {"a": ["skip"], "b": ["skip"], "c": ["skip"],
                                "d": ["maybe"], "e": ["maybe"], "f": ["maybe"]}, status="done")  # fmt: skip
    c = run_confidence(store, "r")["t0"]
    assert c.ship == 0.0 and not c.contested and c.reasons == []


def test_a_split_names_the_verdicts_but_counts_ship_against_the_rest(store: Store) -> None:
    store_verdicts(store, "r", {"a": ["ship"], "b": ["ship"], "c": ["skip"], "d": ["maybe"]}, status="done")
    (split,) = [r for r in run_confidence(store, "r")["t0"].reasons if r.code == "split"]
    assert split.text == "The panel is split: 2 ship, 2 not ship (1 skip, 1 maybe)."


def test_a_unanimous_small_panel_is_not_contested_and_reads_as_a_ship_share(store: Store) -> None:
    from panel.report.ranking import confidence_line

    store_verdicts(store, "r", {p: ["ship"] for p in "abc"}, status="done")
    c = run_confidence(store, "r")["t0"]
    assert not c.contested and c.doubt == pytest.approx(0.4)  # (3 + 1) / (3 + 2) = 0.8
    assert c.basis.startswith("ship share of 3 reviews") and "probability" not in confidence_line(c)
    assert confidence_line(c).startswith("Ship share 1.00 of 3 reviews")


def test_a_two_two_split_ranks_above_a_four_nil_panel(store: Store) -> None:
    from panel.report.ranking import ranked

    store_verdicts(store, "r", {"a": ["ship", "ship"], "b": ["ship", "ship"],
                                "c": ["ship", "skip"], "d": ["ship", "skip"]}, status="done")  # fmt: skip
    found = run_confidence(store, "r")
    assert found["t0"].doubt < 0.5 and found["t1"].doubt == 1.0  # 4-0 is fairly sure, 2-2 a coin toss
    assert [t for t, _ in ranked(found)] == ["t1", "t0"]


def test_a_wide_model_interval_is_printed_first_and_called_uncertain() -> None:
    from panel.report.record import Confidence

    c = Confidence(ship=0.98, low=0.0, high=1.0, method="dawid-skene", basis="b", reviews=4, tools=40,
                   labels=0, contested=True, reasons=[], doubt=1.0)  # fmt: skip
    assert c.summary.startswith("Panel's ship probability uncertain: 0.00–1.00 (point 0.98)")


def test_editor_reliabilities_over_three_verdicts_collapse_to_ship_or_not(store: Store) -> None:
    store_verdicts(store, "r", {"a": ["ship"], "b": ["skip"], "c": ["maybe"]}, status="done")
    three = {  # rows: labelled ship, skip, maybe; columns: the judge said ship, skip, maybe
        ("a", "a:x"): [[50, 0, 0], [0, 25, 0], [0, 0, 25]],
        ("b", "a:x"): [[3, 2, 0], [2, 2, 1], [1, 1, 2]],
        ("c", "a:x"): [[3, 1, 1], [2, 2, 1], [1, 1, 2]],
    }
    c = run_confidence(store, "r", reliabilities=three, categories=["ship", "skip", "maybe"])["t0"]
    two = {j: [[m[0][0], sum(m[0][1:])], [sum(r[0] for r in m[1:]), sum(sum(r[1:]) for r in m[1:])]]
           for j, m in three.items()}  # fmt: skip
    assert c.method == "editors" and c.ship == run_confidence(store, "r", reliabilities=two)["t0"].ship


def test_the_fitted_methods_read_public_names_only() -> None:
    import ast

    source = (Path(__file__).resolve().parent.parent / "panel" / "report" / "confidence_fit.py").read_text()
    imported = [a.name for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom)
                for a in n.names]  # fmt: skip
    assert not [name for name in imported if name.startswith("_")]


def test_a_run_ranked_on_two_methods_says_so(store: Store) -> None:
    from panel.report.ranking import ranked, ranking_note

    # t0: judge a (labelled, trusted) says ship; t1: a failed, so t1 rests on the ship share 2-1
    store_verdicts(store, "r", {"a": ["ship", None], "b": ["skip", "ship"], "c": ["skip", "ship"],
                                "d": ["skip", "skip"]}, status="done")  # fmt: skip
    found = run_confidence(store, "r", reliabilities={("a", "a:x"): [[50, 0], [0, 50]]})
    assert (found["t0"].method, found["t1"].method) == ("editors", "vote-share")
    note = ranking_note(found)
    assert note is not None and "1 by probability from editors' reliabilities, 1 by ship share" in note
    assert ranking_note(run_confidence(store, "r")) is None
    assert [t for t, _ in ranked(found)] == sorted(found, key=lambda t: -found[t].doubt)


def test_the_page_says_apart_that_editors_changes_are_not_in_the_confidence(store: Store) -> None:
    store_planted(store, {"a": ["ship"], "b": ["ship"], "c": ["ship"], "d": ["skip"]})
    store.edit_review("r", CellKey("t0", "d", "a:x"), "verdict", "ship")
    html = render_html(load_record(store, "r", tool_id="t0"), marks=True)  # the editors' app
    (line,) = re.findall(r'<p class="confidence">(.*?)</p>', html, re.S)
    assert line.startswith("Ship share 0.75 of 4 reviews")  # the models' 3 of 4, not the edited 4 of 4
    assert "not editors' changes (1 verdict changed by an editor)" in line
