"""`panel view` writes the editors' labels: an approval labels the review's verdict in force,
a verdict edit the edited verdict, a publish records each tool's pooled verdict (in the
transaction of its files); withdrawing an approval writes a row that takes it back; editing
prose writes none."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from panel.errors import UserError
from panel.store import CellKey, Store
from panel.view.app import create_app

from .test_view import BASE
from .test_view_editor import FIELDS, KEY, _edit_form, _form_of, _post, _shown
from .view_session import sign_in


@pytest.fixture
def ana(made: str, runs_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(runs_dir, token=None, port=8765), base_url=BASE) as test_client:
        sign_in(test_client, "Ana")
        yield test_client


def _labels(runs_dir: Path, run_id: str) -> list[tuple[str, str, str, str | None, CellKey | None]]:
    with Store(runs_dir, readonly=True) as store:
        return [(r.action, r.tool_id, r.verdict, r.editor, r.key) for r in store.editor_labels(run_id)]


def _verdict(runs_dir: Path, run_id: str, key: CellKey) -> str:
    with Store(runs_dir, readonly=True) as store:
        review = store.review(run_id, key)
    assert review is not None and review.verdict is not None
    return review.verdict


def test_each_route_writes_exactly_its_labels(ana: TestClient, made: str, runs_dir: Path) -> None:
    own = _verdict(runs_dir, made, KEY)
    version = _shown(ana, f"/runs/{made}", KEY)
    approve = f"/runs/{made}/review/approve"
    assert _post(ana, approve, **FIELDS, approved="1", version=version).status_code == 303
    assert _labels(runs_dir, made) == [("approve", "ollama", own, "Ana", KEY)]
    # withdrawing writes a row that takes the approval back; an edit of the prose writes nothing
    assert _post(ana, approve, **FIELDS, approved="0", version=version).status_code == 303
    assert _labels(runs_dir, made)[1:] == [("withdraw", "ollama", own, "Ana", KEY)]
    form = _edit_form(ana, made)
    form["verdict_note"] = "Sharper."
    assert _post(ana, f"/runs/{made}/review/edit", **form).status_code == 303
    assert len(_labels(runs_dir, made)) == 2
    # a verdict edit labels the edited verdict
    flipped = "skip" if own == "ship" else "ship"
    form = _edit_form(ana, made)
    form["verdict"] = flipped
    assert _post(ana, f"/runs/{made}/review/edit", **form).status_code == 303
    assert _labels(runs_dir, made)[2:] == [("edit", "ollama", flipped, "Ana", KEY)]
    # Ana gives the other ollama review the same verdict: ollama is no tie at publish, whatever
    # verdicts the fake backend wrote (they follow the prompt's text)
    other_key = CellKey("ollama", "skeptic", KEY.member)
    other = {**FIELDS, "persona": "skeptic"}
    changed = _verdict(runs_dir, made, other_key) != flipped
    form = _form_of(ana.get(f"/runs/{made}/review/edit", params=other).text) | other
    form["verdict"] = flipped
    assert _post(ana, f"/runs/{made}/review/edit", **form).status_code == 303
    edits = 3 + changed
    assert _labels(runs_dir, made)[3:] == ([("edit", "ollama", flipped, "Ana", other_key)] if changed else [])
    # approve all: one "approve_all" row per review it approves, KEY's with its edited verdict;
    # they are history, not labels: only the edit of KEY stands for Ana on ollama, and vllm,
    # which she approved only all at once, has no label of hers
    assert _post(ana, f"/runs/{made}/approve-all", version=_shown(ana, f"/runs/{made}")).status_code == 303
    approvals = _labels(runs_dir, made)[edits:]
    with Store(runs_dir, readonly=True) as store:
        in_force = store.verdicts_in_force(made)
        standing = [(f.tool_id, f.verdict, f.action) for f in store.labels_in_force(made)]
    assert sorted(approvals, key=str) == sorted(
        [("approve_all", k.tool_id, v, "Ana", k) for k, v in in_force.items()], key=str
    )
    assert ("approve_all", "ollama", flipped, "Ana", KEY) in approvals
    assert standing == [("ollama", flipped, "edit")]
    # publish: each tool's pooled verdict as published, no label for a tie
    before = len(_labels(runs_dir, made))
    assert _post(ana, f"/runs/{made}/publish").status_code == 200
    published = _labels(runs_dir, made)[before:]
    expected = []
    for tool in ("ollama", "vllm"):
        counts = Counter(v for k, v in in_force.items() if k.tool_id == tool).most_common()
        if len(counts) == 1 or counts[0][1] > counts[1][1]:
            expected.append(("publish", tool, counts[0][0], "Ana", None))
    assert expected and sorted(published, key=str) == sorted(expected, key=str)


def test_a_refused_publish_writes_no_label(ana: TestClient, made: str, runs_dir: Path) -> None:
    assert _post(ana, f"/runs/{made}/publish").status_code == 409  # unapproved reviews
    assert _labels(runs_dir, made) == []


def test_a_store_that_cannot_take_the_publish_rows_publishes_nothing_and_says_so(
    ana: TestClient, made: str, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails(self: Store, run_id: str, editor: str | None) -> int:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Store, "label_publish", fails)
    answer = _post(ana, f"/runs/{made}/publish", anyway="1")
    assert answer.status_code == 503
    assert "the publish could not be recorded in the store (disk I/O error): publish again" in answer.text
    assert not (runs_dir / made / "published" / "comparison.json").exists()
    monkeypatch.undo()  # the store works again: publishing again writes the files and the rows
    assert _post(ana, f"/runs/{made}/publish", anyway="1").status_code == 200
    assert (runs_dir / made / "published" / "comparison.json").is_file()
    assert {action for action, *_ in _labels(runs_dir, made)} == {"publish"}


def test_files_that_cannot_be_written_keep_no_publish_rows(
    ana: TestClient, made: str, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise UserError("cannot write published: no space left on device")

    monkeypatch.setattr("panel.report.publish.write_set", full)
    answer = _post(ana, f"/runs/{made}/publish", anyway="1")
    assert answer.status_code == 409 and "no space left on device" in answer.text
    assert _labels(runs_dir, made) == []
