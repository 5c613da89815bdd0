"""Why a verdict flipped between two runs: each flip names what changed among its inputs (the
tool's entry, the member's model or options, the persona or prompts, the depth or form, or
nothing), `panel diff` shows it with a summary line, and `--json` carries it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from panel.report.diff import RunDiff, diff_runs
from panel.store import Store

from .conftest import EXAMPLE_CATALOG
from .why_runs import Inputs, make_run

FLIP = {("t0", "builder"): "skip"}


@pytest.fixture
def store(runs_dir: Path) -> Iterator[Store]:
    runs_dir.mkdir()
    with Store(runs_dir) as opened:
        yield opened


def _diff(
    store: Store, change: Callable[[Inputs], None], verdicts: dict[tuple[str, str], str] = FLIP
) -> RunDiff:
    before = Inputs()
    after = before.copy()
    change(after)
    make_run(store, "A", before)
    make_run(store, "B", after, verdicts)
    return diff_runs(store, "A", "B")


def _reasons(result: RunDiff) -> list[tuple[str, ...]]:
    return [tuple(r.code for r in f.reasons) for f in result.flipped]


def _edit_tagline(i: Inputs) -> None:
    i.tools["t0"]["tagline"] = "a new tagline"


def _new_model(i: Inputs) -> None:
    i.members = {"openai:gpt-x": i.members["openai:gpt-y"]}


def test_a_catalog_edit_of_one_field_is_the_reason_and_names_the_field(store: Store) -> None:
    result = _diff(store, _edit_tagline)
    assert [(f.key.tool_id, f.key.persona_id, f.before, f.after) for f in result.flipped] == [
        ("t0", "builder", "ship", "skip")
    ]
    (reason,) = result.flipped[0].reasons
    assert (reason.code, reason.fields) == ("tool", ("tagline",))
    assert reason.text == "the tool's entry changed: tagline"


def test_a_nested_field_and_the_community_vote(store: Store) -> None:
    def change(i: Inputs) -> None:
        i.tools["t0"]["pricing"]["model"] = "paid"
        i.tools["t0"]["community"] = {"ship": 9, "skip": 1}  # not shown to reviewers: no cause

    (reason,) = _diff(store, change).flipped[0].reasons
    assert (reason.code, reason.fields) == ("tool", ("pricing.model",))


def test_a_replaced_model_is_paired_with_the_member_it_replaced(store: Store) -> None:
    result = _diff(store, _new_model)
    assert (result.same, result.only_a, result.only_b) == (3, 0, 0)
    (flip,) = result.flipped
    assert (flip.key.member, flip.member_after) == ("openai:gpt-y", "openai:gpt-x")
    (reason,) = flip.reasons
    assert (reason.code, reason.text) == ("model", "openai:gpt-x replaced openai:gpt-y")
    assert result.replaced == {"openai:gpt-y": "openai:gpt-x"}


def test_an_option_that_changes_replies_is_the_members_options(store: Store) -> None:
    def change(i: Inputs) -> None:
        i.members["openai:gpt-y"]["temperature"] = 1.0
        i.members["openai:gpt-y"]["rpm"] = 5  # a rate limit changes no reply: not a reason

    (reason,) = _diff(store, change).flipped[0].reasons
    assert (reason.code, reason.fields) == ("options", ("temperature",))


def test_a_persona_version_and_its_questions(store: Store) -> None:
    def change(i: Inputs) -> None:
        _, data = i.personas["builder"]
        i.personas["builder"] = ("2", {**data, "questions": [{"key": "q", "question": "How?"}]})

    (reason,) = _diff(store, change).flipped[0].reasons
    assert (reason.code, reason.fields, reason.before, reason.after) == ("persona", ("questions",), "1", "2")
    assert reason.text == "persona builder changed (version 1 → 2): questions"


def test_a_persona_that_did_not_change_is_no_reason_for_another_personas_flip(store: Store) -> None:
    def change(i: Inputs) -> None:
        i.personas["skeptic"] = ("2", i.personas["skeptic"][1])

    assert _reasons(_diff(store, change)) == [("noise",)]  # the flip is the builder's


def test_the_prompt_templates(store: Store) -> None:
    def change(i: Inputs) -> None:
        i.prompts = "p2"

    (reason,) = _diff(store, change).flipped[0].reasons
    assert (reason.code, reason.before, reason.after) == ("prompt", "p1", "p2")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda i: i.members["openai:gpt-y"].update(depth="full"), "member depth"),
        (lambda i: i.members["openai:gpt-y"].update(structured="tool"), "member structured"),
        (lambda i: i.sampling.update(max_tokens=900), "sampling max_tokens"),
        (lambda i: setattr(i, "enforced", "prompt"), "structured form (json_schema → prompt)"),
        (lambda i: setattr(i, "rebuttal", True), "rebuttal round"),
        (lambda i: setattr(i, "repeats", 3), "repeats"),
    ],
)
def test_the_depth_or_form(store: Store, change: Callable[[Inputs], None], field: str) -> None:
    (reason,) = _diff(store, change).flipped[0].reasons
    assert (reason.code, reason.fields) == ("form", (field,))


def test_nothing_changed_is_noise(store: Store) -> None:
    result = _diff(store, lambda i: None)
    assert _reasons(result) == [("noise",)]
    assert result.summary == "1 verdicts flipped: 1 with no change in inputs (noise)"


def test_the_summary_counts_each_flip_once_under_its_first_reason(store: Store) -> None:
    def change(i: Inputs) -> None:
        _edit_tagline(i)
        _new_model(i)

    verdicts = {("t0", "builder"): "skip", ("t0", "skeptic"): "skip", ("t1", "builder"): "skip"}
    result = _diff(store, change, verdicts)
    assert _reasons(result) == [("tool", "model"), ("tool", "model"), ("model",)]
    assert result.summary == (
        "3 verdicts flipped: 2 because the tool's entry changed, 1 because openai:gpt-x replaced "
        "openai:gpt-y (2 had several reasons, each counted under the first of: the tool's entry, "
        "the model, the member's options, the persona, the prompts, the depth or form)"
    )
    # Pooled by tool (ship or not): t0 went from ship to not ship (2 of 2), t1 to a tie.
    assert [(t.tool_id, t.before, t.after, tuple(r.code for r in t.reasons)) for t in result.tools] == [
        ("t0", "ship", "not ship", ("tool", "model")),
        ("t1", "ship", "a tie", ("model",)),
    ]
    assert result.tool_summary.startswith(
        "2 pooled tool verdicts flipped: 1 because the tool's entry changed, 1 because openai:gpt-x"
    )


def test_a_member_added_to_the_panel_is_a_reason_for_the_pooled_verdict(store: Store) -> None:
    before = Inputs()
    after = before.copy()
    after.members["anthropic:claude"] = {}
    make_run(store, "A", before)
    make_run(store, "B", after, {("t0", "builder"): "skip", ("t0", "skeptic"): "skip"})
    result = diff_runs(store, "A", "B")
    assert (result.only_a, result.only_b) == (0, 4)
    # The member's own cells flipped with the same inputs; the pool also gained two reviews.
    assert _reasons(result) == [("noise",), ("noise",)]
    assert [(t.tool_id, t.after, [r.code for r in t.reasons]) for t in result.tools] == [
        ("t0", "not ship", ["panel"])
    ]


def _two_runs_on_disk(runs_dir: Path, change: Callable[[Inputs], None], verdicts: dict[Any, str]) -> None:
    runs_dir.mkdir()
    before = Inputs()
    after = before.copy()
    change(after)
    with Store(runs_dir) as store:
        make_run(store, "20260101-000000-aaaaaa", before)
        make_run(store, "20260102-000000-bbbbbb", after, verdicts)


def test_panel_diff_prints_the_reason_beside_each_flip_and_the_summary(cli: Any, runs_dir: Path) -> None:
    def change(i: Inputs) -> None:
        _edit_tagline(i)
        _new_model(i)

    _two_runs_on_disk(runs_dir, change, {("t0", "builder"): "skip", ("t1", "skeptic"): "skip"})
    shown = cli("diff", "20260101", "20260102", "--out", str(runs_dir))
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    assert (
        lines[0]
        == "2 cells unchanged, 2 flipped, 0 only in 20260101-000000-aaaaaa, 0 only in 20260102-000000-bbbbbb"
    )
    assert lines[1].startswith(
        "2 verdicts flipped: 1 because the tool's entry changed, 1 because openai:gpt-x"
    )
    t0 = next(line for line in lines if "│ t0" in line)
    assert "the tool's entry changed: tagline; openai:gpt-x replaced" in t0
    t1 = next(line for line in lines if "│ t1" in line)
    assert "openai:gpt-y → openai:gpt-x" in t1 and "tool's entry" not in t1
    assert any(line.startswith("2 pooled tool verdicts flipped") for line in lines)


def test_panel_diff_json_keeps_its_keys_and_adds_the_reasons(cli: Any, runs_dir: Path) -> None:
    _two_runs_on_disk(runs_dir, _edit_tagline, {("t0", "builder"): "skip"})
    result = cli("diff", "20260101", "20260102", "--out", str(runs_dir), "--json")
    assert result.code == 0, result.err
    data = json.loads(result.out)
    assert {"run_a", "run_b", "same", "only_a", "only_b", "flipped"} <= data.keys()
    (flip,) = data["flipped"]
    assert flip == {
        "tool_id": "t0",
        "persona_id": "builder",
        "member": "openai:gpt-y",
        "repeat": 0,
        "before": "ship",
        "after": "skip",
        "member_after": "openai:gpt-y",
        "reason": "tool",
        "reasons": [
            {
                "code": "tool",
                "text": "the tool's entry changed: tagline",
                "fields": ["tagline"],
                "before": None,
                "after": None,
            }
        ],
    }
    assert data["summary"] == "1 verdicts flipped: 1 because the tool's entry changed"
    # t0's two reviews now split 1 ship, 1 skip: its pooled verdict flipped too, for the same reason.
    assert data["tools_flipped"] == [
        {"tool_id": "t0", "before": "ship", "after": "a tie", "reason": "tool", "reasons": flip["reasons"]}
    ]
    assert data["replaced_members"] == {}


def test_text_from_the_catalog_reaches_the_terminal_without_control_characters(
    cli: Any, runs_dir: Path
) -> None:
    def change(i: Inputs) -> None:
        i.personas["builder"] = ("2\x1b[2J\x1b]0;owned\x07", i.personas["builder"][1])

    _two_runs_on_disk(runs_dir, change, {("t0", "builder"): "skip"})
    shown = cli("diff", "20260101", "20260102", "--out", str(runs_dir))
    assert shown.code == 0, shown.err
    assert "persona builder changed (version 1 → 2" in shown.out
    assert "\x1b" not in shown.out and "\x07" not in shown.out


def test_a_review_since_an_earlier_run_says_why_its_verdicts_flipped(
    cli: Any, runs_dir: Path, tmp_path: Path
) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(EXAMPLE_CATALOG.read_text())
    args = ["review", str(catalog), "-b", "fake:schema", "--out", str(runs_dir), "--progress", "quiet"]
    first = cli(*args)
    assert first.code == 0, first.err
    data = yaml.safe_load(catalog.read_text())
    (ollama,) = [t for t in data["tools"] if t["id"] == "ollama"]
    ollama["tagline"] = "Run open models on your own machine"
    catalog.write_text(yaml.safe_dump(data, sort_keys=False))
    again = cli(*args, "--since", "last")
    assert again.code == 0, again.err
    # The fake backend's verdicts follow the prompt: this tagline flips one of them.
    assert "1 verdicts flipped since" in again.out
    assert "\n1 verdicts flipped: 1 because the tool's entry changed\n" in again.out


def test_renamed_members_are_paired_by_their_model_not_their_place(store: Store) -> None:
    before = Inputs()
    before.members = {"fast=openai:mini": {}, "smart=openai:big": {}}
    after = before.copy()
    after.members = {"smart2=openai:big": {}, "fast2=openai:mini": {}}
    # each model says what it said before: big skips t0 for the builder, mini ships all
    make_run(store, "A", before, {("t0", "builder", "smart"): "skip"})
    make_run(store, "B", after, {("t0", "builder", "smart2"): "skip"})
    result = diff_runs(store, "A", "B")
    assert result.flipped == [] and result.tools == []
    assert result.replaced == {"fast": "fast2", "smart": "smart2"}
    assert result.summary == "0 verdicts flipped"


def test_an_editors_edit_is_no_flip_in_the_history_the_diff_or_the_confidence(store: Store) -> None:
    from panel.report.confidence import run_confidence
    from panel.report.history import verdict_history
    from panel.store import CellKey

    make_run(store, "A", Inputs())
    make_run(store, "B", Inputs())  # the models ship t0 again
    for persona in ("builder", "skeptic"):
        store.edit_review("B", CellKey("t0", persona, "openai:gpt-y"), "verdict", "skip")
    history = verdict_history(store, "t0")
    assert [(h.run_id, h.verdict, h.changed) for h in history] == [("B", "ship", False), ("A", "ship", False)]
    assert diff_runs(store, "A", "B").tools == []
    assert "flipped_since" not in [r.code for r in run_confidence(store, "B")["t0"].reasons]


def test_a_rebuttal_flip_moves_the_history_the_diff_and_the_confidence_alike(store: Store) -> None:
    from panel.report.confidence import run_confidence
    from panel.report.history import verdict_history
    from panel.store import CellKey

    make_run(store, "A", Inputs())
    make_run(store, "B", Inputs())
    for persona in ("builder", "skeptic"):
        store.save_rebuttal("B", CellKey("t0", persona, "openai:gpt-y"), "openai", "gpt-y",
                            verdict_before="ship", others=1,
                            data={"decision": "change", "why": "w", "verdict": "skip"}, error=None,
                            raw_reply=None, request_id=None, asks=1)  # fmt: skip
    history = verdict_history(store, "t0")
    assert [(h.run_id, h.verdict, h.changed) for h in history] == [
        ("B", "not ship", True),
        ("A", "ship", False),
    ]
    assert [(t.tool_id, t.before, t.after) for t in diff_runs(store, "A", "B").tools] == [
        ("t0", "ship", "not ship")
    ]
    (reason,) = [r for r in run_confidence(store, "B")["t0"].reasons if r.code == "flipped_since"]
    assert reason.text == "Run A said ship; this run says not ship."
