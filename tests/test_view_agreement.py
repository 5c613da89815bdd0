"""`panel view`'s agreement page: the figures of `panel agreement RUN --format json`, the
report's tables and plots under the view's strict CSP, hostile names as text, and one
sentence where there is nothing to show."""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from panel.analysis.html import render_report
from panel.run.plan import RunOptions, plan_compare, run_plan
from panel.store import CellKey, Store
from panel.view import agreement
from panel.view.app import create_app

from .conftest import EXAMPLE_CATALOG
from .factories import store_verdicts
from .html_tables import tables
from .view_store import INJECTED_NAME, build_store, run_ids

BASE = "http://127.0.0.1:8765"
HOSTILE_MEMBER = "fake:<img src=x onerror=alert(1)>"
#: the JSON's agreement figures, by the name the page's table gives them
STATS = {
    "percent_agreement": "Percent agreement",
    "fleiss_kappa": "Fleiss' kappa",
    "krippendorff_alpha": "Krippendorff's alpha (nominal)",
    "effective_votes": "Effective independent votes",
}


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The view's hostile store, plus a run with a hostile member label and a run with no reviews."""
    runs = build_store(tmp_path_factory.mktemp("view-agreement"))
    plan = plan_compare(["ollama", "vllm"], catalog=EXAMPLE_CATALOG, backends=["fake", HOSTILE_MEMBER])
    with Store(runs) as store:
        asyncio.run(run_plan(plan, store, "panel compare", options=RunOptions(kind="compare")))
        store.create_run("empty-run", "panel compare", None, {}, [], [])
    return runs


def _ids(store_dir: Path) -> dict[str, str]:
    ids = run_ids(store_dir)
    with Store(store_dir, readonly=True) as store:
        ids["member"] = next(
            r.id for r, _, _ in store.list_runs(10) if HOSTILE_MEMBER in json.dumps(r.config)
        )
    return ids


@pytest.fixture
def client(store_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(store_dir, token=None, port=8765), base_url=BASE) as test_client:
        yield test_client


def _cli_json(cli: Any, store_dir: Path, run_id: str, *extra: str) -> dict[str, Any]:
    result = cli("agreement", run_id, "--out", str(store_dir), "--format", "json", *extra)
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def _body(html: str) -> str:
    return html[html.index('<div class="page">', html.index("</nav>")) : html.rindex("</body>")].strip()


@pytest.mark.parametrize("reference", [None, "community"])
def test_the_page_shows_the_figures_panel_agreement_prints(
    client: TestClient, cli: Any, store_dir: Path, reference: str | None
) -> None:
    run_id = run_ids(store_dir)["hostile"]
    params = {"reference": reference} if reference else {}
    page = client.get(f"/runs/{run_id}/agreement", params=params)
    assert page.status_code == 200
    data = _cli_json(cli, store_dir, run_id, *(["--reference", reference] if reference else []))
    # The page's figures against the JSON's numbers, formatted here (three decimals), not by the page's code.
    stats = data["stats"]
    shown = tables(page.text)
    rows = {row[0]: row[1:] for row in shown["Agreement between the panel's raters"][1:]}
    for key, name in STATS.items():
        figure = stats[key]
        one_point = f" {figure['note']}" if "note" in figure else ""  # an interval whose ends are equal
        assert rows[name] == [
            f"{figure['point']:.3f}",
            f"[{figure['low']:.3f}, {figure['high']:.3f}]{one_point}",
            f"{figure['resamples_used']} of {stats['n_resamples']}",
        ], key
    kappas = shown[f"Cohen's kappa, every pair of raters by rater ({stats['n_items']} items)"]
    assert kappas[0] == ["", *stats["raters"]]
    for rater, row, values in zip(stats["raters"], kappas[1:], stats["cohen_kappa"], strict=True):
        assert row == [rater, *("—" if v is None else f"{v:.3f}" for v in values)]
    # and every other figure too: the body is the report page's body for the same JSON (the
    # page's own analysis, with `panel agreement`'s defaults, gives what the command printed)
    report = render_report(data)
    expected = report[report.index("<body>") + len("<body>") : report.rindex("</body>")].strip()
    assert _body(page.text) == expected
    assert ('id="reference"' in page.text) == (reference is not None)  # the reference's own section
    assert page.text.count('<img src="data:image/png;base64,') >= 2  # the plots, inline PNG


def test_the_page_obeys_the_strict_csp(client: TestClient, store_dir: Path) -> None:
    page = client.get(f"/runs/{run_ids(store_dir)['hostile']}/agreement")
    assert " style=" not in page.text and "<style" not in page.text
    assert "http-equiv" not in page.text  # the report's own meta CSP is not carried over
    assert re.findall(r"<script(?![^>]*\ssrc=\"/static/)", page.text) == []
    assert not re.search(r"\son[a-z]+=", page.text)
    assert 'href="/static/agreement.css"' in page.text
    css = client.get("/static/agreement.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert ".table-wrap" in css.text and ".plot img" in css.text


def test_hostile_names_are_escaped(client: TestClient, store_dir: Path) -> None:
    ids = _ids(store_dir)
    page = client.get(f"/runs/{ids['member']}/agreement", params={"reference": "community"})
    assert page.status_code == 200
    assert "<img src=x" not in page.text and "onerror=alert" not in page.text.replace(
        "onerror=alert(1)&gt;", ""
    )
    assert "fake:&lt;img src=x onerror=alert(1)&gt;" in page.text  # the member, a rater, shown as text
    hostile_tool = client.get(f"/runs/{ids['hostile']}/agreement", params={"reference": "community"})
    assert INJECTED_NAME not in hostile_tool.text and "<img src=x" not in hostile_tool.text


def test_the_comparison_links_to_its_agreement(client: TestClient, store_dir: Path) -> None:
    run_id = run_ids(store_dir)["hostile"]
    page = client.get(f"/runs/{run_id}")
    assert f'href="/runs/{run_id}/agreement">Agreement</a>' in page.text
    agreement_page = client.get(f"/runs/{run_id}/agreement").text
    assert f'href="/runs/{run_id}">Run' in agreement_page
    assert f'href="/runs/{run_id}/agreement?reference=community"' in agreement_page


def test_unknown_run_is_404_and_a_labels_path_is_refused(client: TestClient, store_dir: Path) -> None:
    missing = client.get("/runs/nope/agreement")
    assert missing.status_code == 404 and "There is no run &#39;nope&#39;" in missing.text
    run_id = run_ids(store_dir)["hostile"]
    refused = client.get(f"/runs/{run_id}/agreement", params={"reference": "/etc/passwd"})
    assert refused.status_code == 400 and "root:" not in refused.text


def test_a_run_with_nothing_to_analyse_is_one_sentence(client: TestClient) -> None:
    page = client.get("/runs/empty-run/agreement")
    assert page.status_code == 200
    assert "No agreement for this run: run &#39;empty-run&#39; has no reviews." in page.text
    assert "Traceback" not in page.text and '<table class="grid">' not in page.text


def test_without_the_analysis_extra_the_page_names_it(
    client: TestClient, store_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_numpy(*args: object) -> dict[str, Any]:
        raise ModuleNotFoundError("No module named 'numpy'", name="numpy")

    monkeypatch.setattr(agreement, "report_data", no_numpy)
    page = client.get(f"/runs/{run_ids(store_dir)['hostile']}/agreement")
    assert page.status_code == 200
    assert (
        "The agreement page needs the Python package &#39;numpy&#39;, which is not installed: "
        "pip install &#39;toolpanel[analysis]&#39;." in page.text
    )


def test_the_page_writes_nothing(client: TestClient, store_dir: Path) -> None:
    before = sorted((p.name, p.stat().st_mtime_ns) for p in store_dir.iterdir() if p.name != "panel.db-shm")
    assert client.get(f"/runs/{run_ids(store_dir)['review']}/agreement").status_code == 200
    after = sorted((p.name, p.stat().st_mtime_ns) for p in store_dir.iterdir() if p.name != "panel.db-shm")
    assert after == before


def test_the_same_figures_are_drawn_once_and_again_after_a_review_changes(
    made: str, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[str] = []
    real = agreement.report_data

    def counted(store: Store, run_id: str, reference: str | None) -> dict[str, Any]:
        drawn.append(run_id)
        return real(store, run_id, reference)

    monkeypatch.setattr(agreement, "report_data", counted)
    with TestClient(create_app(runs_dir, token=None, port=8765), base_url="http://127.0.0.1:8765") as client:
        first = client.get(f"/runs/{made}/agreement")
        second = client.get(f"/runs/{made}/agreement")
        assert first.status_code == second.status_code == 200 and first.text == second.text
        assert drawn == [made]
        with Store(runs_dir) as store:
            (review, *_) = store.reviews(made)
            store.edit_review(made, review.key, "verdict", "skip" if review.verdict == "ship" else "ship")
        client.get(f"/runs/{made}/agreement")
        assert drawn == [made, made]


def test_the_editors_labels_are_a_reference_drawn_again_after_a_new_label(made: str, runs_dir: Path) -> None:
    with TestClient(create_app(runs_dir, token=None, port=8765), base_url="http://127.0.0.1:8765") as client:
        plain = client.get(f"/runs/{made}/agreement").text
        assert f'href="/runs/{made}/agreement?reference=editors"' in plain
        none = client.get(f"/runs/{made}/agreement", params={"reference": "editors"})
        assert none.status_code == 200
        assert "no editor has labelled a tool of run" in none.text
        with Store(runs_dir) as store:
            (review, *_) = store.reviews(made)
            store.approve(made, review.key, editor="Ana")  # an approval: the reviews are as they were
        labelled = client.get(f"/runs/{made}/agreement", params={"reference": "editors"}).text
        assert "no editor has labelled" not in labelled
        assert "editors (1 label by Ana)" in labelled


def test_the_calibration_against_the_editors_labels_is_the_clis(cli: Any, runs_dir: Path) -> None:
    """A run of 120 tools on four judges of planted accuracy, 60 of them labelled by an editor's
    approvals: the page shows the reliability diagram and each probability's ECE against the
    editors' labels, the figures `panel agreement --reference editors` prints."""
    rng = random.Random(0)
    truth = [rng.random() < 0.6 for _ in range(120)]
    accuracy = {"builder": 0.9, "skeptic": 0.8, "futurist": 0.7, "analyst": 0.65}
    verdicts: dict[str, list[str | None]] = {
        p: ["ship" if (t if rng.random() < a else not t) else "skip" for t in truth]
        for p, a in accuracy.items()
    }
    with Store(runs_dir) as store:
        store_verdicts(store, "cal", verdicts, status="done")
        for i in range(60):
            store.approve("cal", CellKey(f"t{i}", "builder", "a:x"), editor="Ana")
    result = cli("agreement", "cal", "--reference", "editors", "--format", "json", "--out", str(runs_dir))
    assert result.code == 0, result.err
    expected = json.loads(result.out)["research"]["calibration"]
    assert len(expected) == 2 and all(c["n"] == 60 for c in expected)
    with TestClient(create_app(runs_dir, token=None, port=8765), base_url=BASE) as client:
        page = client.get("/runs/cal/agreement", params={"reference": "editors"})
    assert page.status_code == 200
    section = page.text[page.text.index('id="calibration"') :]
    section = section[: section.index("</section>")]
    assert "<img" in section  # the reliability diagram
    (ece,) = [rows for caption, rows in tables(section).items() if caption.startswith("Expected calibration")]
    assert [row[1:] for row in ece[1:]] == [[str(c["n"]), f"{c['ece']:.3f}"] for c in expected]
    assert [row[0] for row in ece[1:]] == [c["probability"] for c in expected]
