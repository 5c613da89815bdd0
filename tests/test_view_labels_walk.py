"""The editors' labels, clicked in a real browser (headless chromium through Selenium): an
editor approves a review, edits another's verdict and approves it, and `panel agreement RUN
--reference editors` then counts exactly those labels."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from panel.store import CellKey, Store
from panel.view.actions import anchor
from panel.view.app import create_app

from .browser import needs_browser, serve
from .test_view_walk import _loaded, _navigate, _one, _wait, browser, runs  # the walk's fixtures

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

pytestmark = needs_browser
__all__ = ["browser", "runs"]  # fixtures, used by name


def _article(key: CellKey) -> str:
    return f'article[id="{anchor(*key)}"]'


def test_clicked_approvals_and_a_verdict_edit_are_the_editors_reference(
    runs: Path, browser: WebDriver
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from panel.analysis.agreement import analyze

    with Store(runs, readonly=True) as store:
        run = store.latest_run()
        assert run is not None
        (member,) = {r.member for r in store.reviews(run)}
        own = {r.key: r.verdict for r in store.reviews(run)}
    approved, edited = CellKey("ollama", "builder", member), CellKey("vllm", "skeptic", member)
    flipped = "skip" if own[edited] == "ship" else "ship"
    app = create_app(runs, token="walk-t0ken")
    prefix = app.guard.base  # type: ignore[attr-defined]
    with serve(app) as origin:
        base = origin + prefix
        browser.get(f"{origin}/?token=walk-t0ken")
        _loaded(browser, base)
        who = _one(browser, "form.who")
        who.find_element(By.NAME, "editor").send_keys("Ana")
        _navigate(browser, who.find_element(By.CSS_SELECTOR, "button"))
        browser.get(f"{base}/runs/{run}")
        _loaded(browser, f"/runs/{run}")

        # Approve one review of ollama.
        _navigate(browser, _one(browser, f"{_article(approved)} form.approve button"))
        _loaded(browser, f"/runs/{run}")
        assert "1 of 4 reviews approved" in _one(browser, "#editor").text

        # Edit the verdict of one review of vllm, then approve it as edited.
        _navigate(browser, _one(browser, f"{_article(edited)} a.edit-link"))
        _loaded(browser, "/review/edit")
        Select(_one(browser, "select[name=verdict]")).select_by_value(flipped)
        _navigate(browser, _one(browser, ".edit-form button[type=submit]"))
        _loaded(browser, f"/runs/{run}")
        _wait(browser, f"{_article(edited)}.is-edited")
        _navigate(browser, _one(browser, f"{_article(edited)} form.approve button"))
        _loaded(browser, f"/runs/{run}")
        assert "2 of 4 reviews approved" in _one(browser, "#editor").text

    with Store(runs, readonly=True) as store:
        rows = [(r.action, r.key, r.verdict, r.editor) for r in store.editor_labels(run)]
        assert rows == [
            ("approve", approved, own[approved], "Ana"),
            ("edit", edited, flipped, "Ana"),
            ("approve", edited, flipped, "Ana"),
        ]
        report = analyze(store, [run], n_resamples=20, reference="editors")
    assert report.research is not None and report.research.reference is not None
    reference = report.research.reference
    assert reference["tools"] == 2 and reference["raters"] == ["Ana"]
    assert reference["source"] == "editors (2 labels by Ana)"
    shares = {own[approved]: 0.0, flipped: 0.0}
    for verdict in (own[approved], flipped):
        shares[verdict] += 0.5
    assert {k: v for k, v in reference["shares"].items() if v} == shares
