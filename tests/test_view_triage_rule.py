"""The app's Triage page deciding which verdicts may be published unread: the reference
chooser, target and level as `panel triage`'s, the run-level line, each tool's decision (the
same as `panel triage --reference editors --format json`), one fit per state of the run and
its labels, and a page (not a 500) without the analysis extra."""

from __future__ import annotations

import html
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import panel.report.triage as triage_module
import panel.view.triage as view_triage
from panel.store import CellKey, Store
from panel.testing.simulate import editor_labels, simulate_panel, write_simulated_run
from panel.view.app import create_app
from tests.factories import store_verdicts

from .test_view import BASE

_ROW = re.compile(
    r'<a href="/runs/[^"/]+/tools/([^"/]+)">.*?<td class="decision" data-decision="([a-z]*)">', re.S
)


@pytest.fixture
def labelled(tmp_path: Path) -> tuple[Path, list[str]]:
    """A 300-tool simulated run whose editor approved, on 150 tools drawn at random, a review
    that gave the tool's true verdict (the editor's label is the truth)."""
    out = tmp_path / "runs"
    panel = simulate_panel(300, members=("sim:a", "sim:b"), default_accuracy=0.8, run_id="sim-run", seed=3)
    write_simulated_run(out, panel)
    truth = dict(zip(panel.tools, panel.truth, strict=True))
    chosen = set(editor_labels(panel, 150, seed=5))
    right = {}
    for row in panel.rows:
        if row["tool"] in chosen and row["verdict"] == truth[row["tool"]]:
            right.setdefault(row["tool"], CellKey(row["tool"], row["persona"], row["member"], 0))
    with Store(out) as store:
        for key in right.values():
            store.approve("sim-run", key, True, editor="ana")
    return out, list(panel.tools)


@pytest.fixture
def client(labelled: tuple[Path, list[str]]) -> Iterator[TestClient]:
    with TestClient(create_app(labelled[0], token=None, port=8765), base_url=BASE) as opened:
        yield opened


def _counted(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """The runs `panel.report.triage`'s `name` is called on, from now on."""
    calls: list[str] = []
    real = getattr(triage_module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(triage_module, name, counted)
    return calls


def _decisions(client: TestClient, **params: str) -> tuple[list[tuple[str, str]], list[str]]:
    """Every (tool, decision) of the page's list, top to bottom over its pages, and each page's html."""
    seen: list[tuple[str, str]] = []
    pages: list[str] = []
    for number in (1, 2, 3):
        page = client.get("/runs/sim-run/triage", params={**params, "page": str(number)})
        assert page.status_code == 200, page.text
        pages.append(page.text)
        seen += _ROW.findall(page.text)
    return seen, pages


def test_the_page_decides_as_panel_triage_against_the_editors(
    client: TestClient, cli: Any, labelled: tuple[Path, list[str]]
) -> None:

    result = cli("triage", "sim-run", "--reference", "editors", "--format", "json", "--out", str(labelled[0]))
    assert result.code == 0, result.err
    found = json.loads(result.out)
    assert found["rule"]["guarantee"] is True, found["sentence"]
    expected = [(r["tool_id"], r["decision"]) for r in found["tools"]]
    seen, pages = _decisions(client, reference="editors")
    assert seen == expected and {d for _, d in seen} == {"publish", "editor"}
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", pages[0])).split())
    r = found["rule"]
    assert f"Threshold {r['threshold']:.3f} for agreement >= 0.90 at 95% confidence" in text
    assert f"coverage {r['coverage']:.2f}" in text and f"on {r['labels']:,} editor labels" in text
    assert "(assuming the labelled tools are a random sample of the run)" in text
    assert "publish unread" in pages[0] + pages[1] + pages[2] and "needs an editor" in pages[0]
    # the pager keeps the reference
    assert 'href="/runs/sim-run/triage?reference=editors&amp;target=0.9&amp;level=0.95' in pages[0]


def test_target_and_level_are_panel_triages(
    client: TestClient, cli: Any, labelled: tuple[Path, list[str]]
) -> None:

    args = ("--reference", "editors", "--target", "0.8", "--level", "0.9", "--format", "json")
    found = json.loads(cli("triage", "sim-run", *args, "--out", str(labelled[0])).out)
    seen, _ = _decisions(client, reference="editors", target="0.8", level="0.9")
    assert seen == [(r["tool_id"], r["decision"]) for r in found["tools"]]


def test_without_a_reference_nothing_is_decided_and_the_chooser_offers_both(client: TestClient) -> None:
    page = client.get("/runs/sim-run/triage")
    assert page.status_code == 200
    assert {d for _, d in _ROW.findall(page.text)} == {""} and "choose a reference" in page.text
    assert "?reference=editors" in page.text and "?reference=community" in page.text


@pytest.mark.parametrize(
    ("params", "said"),
    [
        ({"reference": "editors", "target": "1.5"}, "target 1.5: give a share strictly between 0 and 1"),
        ({"reference": "editors", "level": "0"}, "level 0.0: give a confidence of at least 0.5 and below 1"),
        ({"reference": "editors", "target": "lots"}, "target lots: give a share strictly between 0 and 1"),
        ({"reference": "labels.csv"}, "The reference can only be"),
    ],
)
def test_a_bad_rule_is_a_400_saying_so_in_one_line(
    client: TestClient, params: dict[str, str], said: str
) -> None:
    page = client.get("/runs/sim-run/triage", params=params)
    assert page.status_code == 400 and said in page.text


def test_the_rule_is_fitted_once_per_state_of_the_run_and_its_labels(
    client: TestClient, labelled: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _counted(monkeypatch, "run_confidence")
    _decisions(client, reference="editors")  # three pages
    client.get("/runs/sim-run/triage", params={"reference": "editors", "contested": "1"})
    assert len(calls) == 1
    unlabelled = next(
        t for t, d in _ROW.findall(client.get("/runs/sim-run/triage?reference=editors").text) if d == "editor"
    )
    with Store(labelled[0]) as store:  # an editor labels one more tool: the rule is applied again
        store.approve("sim-run", CellKey(unlabelled, "skeptic", "sim:b", 0), True, editor="bo")
    client.get("/runs/sim-run/triage", params={"reference": "editors"})
    assert len(calls) == 2


def test_without_the_analysis_extra_the_page_says_what_to_install(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "scipy.stats", None)  # `import scipy.stats` now fails
    page = client.get("/runs/sim-run/triage", params={"reference": "community", "target": "0.85"})
    assert page.status_code == 200
    assert "pip install" in page.text and "analysis" in page.text
    assert len(_ROW.findall(page.text)) == 100  # the ranking still shows


def test_the_audit_sample_is_panel_triages_draw(
    client: TestClient, cli: Any, labelled: tuple[Path, list[str]]
) -> None:
    drawn = cli(
        "triage", "sim-run", "--audit", "30", "--seed", "4", "--format", "json", "--out", str(labelled[0])
    )
    expected = [r["tool_id"] for r in json.loads(drawn.out)["tools"]]
    page = client.get("/runs/sim-run/triage", params={"audit": "30", "seed": "4"})
    assert page.status_code == 200 and "30 tools of 30 drawn at random (seed 4)" in page.text
    assert [t for t, _ in _ROW.findall(page.text)] == expected
    too_many = client.get("/runs/sim-run/triage", params={"audit": "301"})
    assert (
        too_many.status_code == 400
        and "audit 301: give a number of tools between 1 and the run" in too_many.text
    )


def test_the_ranking_alone_is_made_once_per_state_too(
    client: TestClient, labelled: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _counted(monkeypatch, "carried_forward")
    _decisions(client)  # three pages, no reference
    client.get("/runs/sim-run/triage", params={"unlabelled": "1"})
    assert len(calls) == 1


def test_a_target_past_the_third_decimal_is_the_same_rule_computed_once(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _counted(monkeypatch, "run_confidence")
    pages = [
        client.get("/runs/sim-run/triage", params={"reference": "editors", "target": target})
        for target in ("0.9", "0.9000001", "0.9000002", "0.90000031")
    ]
    assert len(calls) == 1
    assert all(p.status_code == 200 and "target=0.9&amp;" in p.text for p in pages)  # the rule it is


def test_concurrent_identical_requests_compute_once(
    labelled: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    entered, release = threading.Event(), threading.Event()
    real = triage_module.run_confidence

    def held(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[1])
        entered.set()
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(triage_module, "run_confidence", held)
    found: list[Any] = []

    def ask() -> None:  # each request reads the store as the app does, on its own connection
        with Store(labelled[0], readonly=True) as store:
            found.append(view_triage.decided(store, "sim-run", "editors", 0.9, 0.95))

    def second_is_in() -> bool:  # computing its own outcome, or waiting for the first one's
        if len(calls) > 1:
            return True
        key_of = getattr(view_triage, "_key", None)  # (none before the single flight)
        if key_of is None:
            return False
        with Store(labelled[0], readonly=True) as store:
            key = key_of(store, "sim-run", "editors", 0.9, 0.95)
        return view_triage._DECIDED.waiting(key) > 0

    first, second = threading.Thread(target=ask), threading.Thread(target=ask)
    try:
        first.start()
        assert entered.wait(30)
        second.start()
        for _ in range(3000):
            if second_is_in():
                break
            time.sleep(0.01)
    finally:
        release.set()
        first.join(30)
        second.join(30)
    assert len(calls) == 1 and len(found) == 2 and found[0] is found[1]


@pytest.mark.parametrize(("level", "read"), [("0.3", "0.3"), ("1e-300", "0.0"), ("0.4994", "0.499")])
def test_a_level_below_one_half_is_a_400_in_one_line(client: TestClient, level: str, read: str) -> None:
    page = client.get("/runs/sim-run/triage", params={"reference": "editors", "level": level})
    assert page.status_code == 400
    said = f"level {read}: give a confidence of at least 0.5 and below 1 (e.g. 0.95)."
    assert re.findall(r"<h1>([^<]*)</h1>", page.text) == [said]


def test_a_review_regenerated_in_an_earlier_run_changes_the_outcome(tmp_path: Path) -> None:
    with Store(tmp_path) as store:
        store_verdicts(store, "old", {p: ["ship", "ship"] for p in "abcd"}, status="done")
        time.sleep(0.01)  # the store orders runs by when they were created
        store_verdicts(store, "new", {p: ["skip", "ship"] for p in "abcd"}, status="done")
        before = view_triage.decided(store, "new", None, 0.9, 0.95)
        assert [r.code for r in before.confidence["t0"].reasons] == ["flipped_since"]
        for persona in "abcd":  # the earlier run's reviews of t0 regenerated: now skip there too
            key = CellKey("t0", persona, "a:x")
            store.archive_review("old", key, "regenerate")
            store.save_review("old", key, "a", "x", data={"verdict": "skip"}, error=None, raw_reply=None,
                              request_id=None, asks=1)  # fmt: skip
        after = view_triage.decided(store, "new", None, 0.9, 0.95)
    assert "flipped_since" not in [r.code for r in after.confidence["t0"].reasons]
