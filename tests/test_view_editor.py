"""`panel view` for editors: edit a review through its form, approve, approve all, publish,
download the files; every write refused without the CSRF field or while the store is busy."""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markupsafe import Markup
from starlette.testclient import TestClient

from panel.backends.base import Reply
from panel.backends.base import Request as BackendRequest
from panel.backends.fake import FakeBackend
from panel.report.load import load_record
from panel.report.render import render_html
from panel.run.plan import RunOptions, plan_run, run_plan
from panel.store import CellKey, Store
from panel.view.actions import anchor
from panel.view.app import create_app
from panel.view.security import CSRF_FIELD

from .conftest import EXAMPLE_CATALOG
from .test_view import BASE
from .test_view_jobs import read_events
from .view_session import csrf, sign_in
from .view_store import INJECTED_NAME

KEY = CellKey("ollama", "builder", "fake:schema")
FIELDS = {"tool": KEY.tool_id, "persona": KEY.persona_id, "member": KEY.member, "repeat": "0"}


@pytest.fixture
def client(made: str, runs_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(runs_dir, token=None, port=8765), base_url=BASE) as test_client:
        sign_in(test_client, "Ana")  # once per browser: the session keeps the editor's name
        yield test_client


def _post(client: TestClient, path: str, **data: Any) -> Any:
    return client.post(path, data={CSRF_FIELD: csrf(client), **data}, follow_redirects=False)


def _shown(client: TestClient, url: str, key: CellKey | None = None) -> str:
    """The version a page's approve form sends: of one review (`key`), or of Approve all."""
    page = client.get(url).text
    if key is not None:
        page = page.split(f'id="{anchor(*key)}"')[1].split("</article>")[0]
        form = page.split('class="approve"')[1]
    else:
        form = page.split('class="approve-all"')[1]
    found = re.search(r'name="version" value="([0-9a-f]+)"', form.split("</form>")[0])
    assert found is not None
    return found.group(1)


def _edit_form(client: TestClient, run_id: str) -> dict[str, str]:
    """What the edit form would send unchanged: every field with the value it shows."""
    return _form_of(client.get(f"/runs/{run_id}/review/edit", params=FIELDS).text)


def _form_of(page: str) -> dict[str, str]:
    """What the edit form on `page` sends as it stands."""
    form = dict(FIELDS)
    for name, value in re.findall(r'<input type="(?:text|hidden)"[^>]*name="([^"]+)" value="([^"]*)"', page):
        form[name] = value  # not the checkboxes: unticked, a browser sends nothing
    for name, value in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', page, re.DOTALL):
        form[name] = value
    for name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', page, re.DOTALL):
        form[name] = re.findall(r'<option value="([^"]*)" selected>', options)[0]
    form.pop(CSRF_FIELD, None)
    return {k: _unescape(v) for k, v in form.items()}


def _unescape(value: str) -> str:
    return (
        value.replace("&#39;", "'")
        .replace("&#34;", '"')
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
    )


def _model(runs_dir: Path, run_id: str) -> Any:
    with Store(runs_dir, readonly=True) as store:
        return store.review(run_id, KEY), store.edits(run_id)


def test_editing_a_verdict_note_marks_it_and_keeps_both_texts(
    client: TestClient, made: str, runs_dir: Path
) -> None:
    form = _edit_form(client, made)
    form["verdict_note"] = "An editor's sharper note."
    saved = _post(client, f"/runs/{made}/review/edit", **form)
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/runs/{made}#{anchor(*KEY)}"
    model, edits = _model(runs_dir, made)
    # only the changed field was stored, and the model's text is still the review's own
    assert [(e.field, e.value, e.editor) for e in edits] == [
        ("verdict_note", "An editor's sharper note.", "Ana")
    ]
    assert model.verdict_note and model.verdict_note != "An editor's sharper note."
    page = client.get(f"/runs/{made}").text
    article = page.split(f'id="{anchor(*KEY)}"')[1].split("</article>")[0]
    assert "An editor&#39;s sharper note." in article and 'class="edited"' in article
    assert "Edited by Ana" in article
    again = client.get(f"/runs/{made}/review/edit", params=FIELDS).text
    assert "The model wrote" in again and 'name="revert.verdict_note"' in again
    assert "Saved as Ana." in again and 'name="editor"' not in again  # the session keeps the name
    # back to the model's text with the checkbox
    form = _edit_form(client, made)
    assert (
        _post(client, f"/runs/{made}/review/edit", **form, **{"revert.verdict_note": "1"}).status_code == 303
    )
    assert _model(runs_dir, made)[1] == []


def test_a_changed_verdict_shows_in_the_ship_share(client: TestClient, made: str, runs_dir: Path) -> None:
    model, _ = _model(runs_dir, made)
    form = _edit_form(client, made)
    form["verdict"] = "skip" if model.verdict == "ship" else "ship"
    assert _post(client, f"/runs/{made}/review/edit", **form).status_code == 303
    assert "1 verdict changed by an editor" in client.get(f"/runs/{made}").text
    assert [e.field for e in _model(runs_dir, made)[1]] == ["verdict"]


def test_empty_prose_is_refused_beside_its_field_and_nothing_is_stored(
    client: TestClient, made: str, runs_dir: Path
) -> None:
    form = _edit_form(client, made)
    form["verdict_note"] = "A fine new note."  # valid, but goes with the refused field
    form["review"] = "   "
    refused = _post(client, f"/runs/{made}/review/edit", **form)
    assert refused.status_code == 400
    assert "Nothing was saved" in refused.text
    field = refused.text.split('name="review"')[1].split('<div class="field')[0]
    assert (
        'class="field-error"' in field
        and "review of ollama by builder on fake:schema: give some text" in field
    )
    assert "A fine new note." in refused.text  # what was typed stays in the form
    assert _model(runs_dir, made)[1] == []


def test_approve_withdraw_and_approve_all(client: TestClient, made: str, runs_dir: Path) -> None:
    page = client.get(f"/runs/{made}").text
    assert "0 of 4 reviews approved" in page
    assert page.count("/review/regenerate") == 4 and page.count('name="reason"') == 4
    assert page.count("Approve</button>") == 4
    version = _shown(client, f"/runs/{made}", KEY)
    approved = _post(client, f"/runs/{made}/review/approve", **FIELDS, approved="1", version=version)
    assert approved.status_code == 303 and approved.headers["location"].endswith(f"#{anchor(*KEY)}")
    page = client.get(f"/runs/{made}").text
    assert "1 of 4 reviews approved" in page and "Withdraw approval" in page
    withdrawn = _post(client, f"/runs/{made}/review/approve", **FIELDS, approved="0", version=version)
    assert withdrawn.status_code == 303
    assert "0 of 4 reviews approved" in client.get(f"/runs/{made}").text
    everything = _shown(client, f"/runs/{made}")
    assert _post(client, f"/runs/{made}/approve-all", version=everything).status_code == 303
    page = client.get(f"/runs/{made}").text
    assert "4 of 4 reviews approved" in page and "Approve all" not in page
    with Store(runs_dir, readonly=True) as store:
        assert len(store.approvals(made)) == 4 and all(a.approved for a in store.approvals(made).values())


def test_bad_review_names_are_a_404_page(client: TestClient, made: str) -> None:
    for params in ({**FIELDS, "tool": "nope"}, {**FIELDS, "repeat": "x"}, {"tool": "ollama"}):
        page = client.get(f"/runs/{made}/review/edit", params=params)
        assert page.status_code == 404 and "Back to the runs" in page.text
    assert client.get("/runs/nope/review/edit", params=FIELDS).status_code == 404
    assert (
        _post(client, f"/runs/{made}/review/approve", **{**FIELDS, "persona": "x"}, approved="1").status_code
        == 404
    )


def test_publish_is_refused_while_reviews_are_unapproved(
    client: TestClient, made: str, runs_dir: Path
) -> None:
    page = client.get(f"/runs/{made}/publish")
    assert page.status_code == 200 and "<li>4 unapproved (ollama/builder/fake:schema" in page.text
    refused = _post(client, f"/runs/{made}/publish")
    assert refused.status_code == 409 and "cannot publish run" in refused.text
    assert not (runs_dir / made / "published").exists()
    anyway = _post(client, f"/runs/{made}/publish", anyway="1")
    assert anyway.status_code == 200 and "Published without sign-off" in anyway.text
    assert sorted(p.name for p in (runs_dir / made / "published").glob("comparison.*")) == [
        "comparison.html", "comparison.json", "comparison.md",
    ]  # fmt: skip
    record = json.loads((runs_dir / made / "published" / "comparison.json").read_text())
    (warning,) = record["provenance"]["warnings"]
    assert warning.startswith("published with 4 unapproved (ollama/builder/fake:schema, ")
    assert record["provenance"]["approved"] == 0 and warning in anyway.text


def test_after_approve_all_publish_writes_the_edit_and_its_provenance(
    client: TestClient, made: str, runs_dir: Path
) -> None:
    form = _edit_form(client, made)
    form["verdict_note"] = "Edited for the page."
    _post(client, f"/runs/{made}/review/edit", **form)
    _post(client, f"/runs/{made}/approve-all", version=_shown(client, f"/runs/{made}"))
    done = _post(client, f"/runs/{made}/publish")
    assert done.status_code == 200 and "Every review of the panel was approved" in done.text
    media_types = {"html": "text/html", "md": "text/markdown", "json": "application/json"}
    for name, media in ((f"comparison.{fmt}", media) for fmt, media in media_types.items()):
        assert f'href="/runs/{made}/published/{name}"' in done.text
        got = client.get(f"/runs/{made}/published/{name}")
        assert got.status_code == 200 and got.headers["content-type"].startswith(media)
        assert got.headers["content-disposition"].startswith("attachment")
        assert "Edited for the page." in got.text
    record = json.loads(client.get(f"/runs/{made}/published/comparison.json").text)
    prov = record["provenance"]
    assert prov["warnings"] == [] and prov["approved"] == 4
    (mine,) = [r for r in prov["reviews"] if (r["tool_id"], r["persona_id"]) == ("ollama", "builder")]
    assert mine["edited_fields"] == ["verdict_note"] and mine["approved"] and mine["approved_by"] == "Ana"
    # the reader's pages leave the editorial internals out; the form's box adds how the page was made
    page = client.get(f"/runs/{made}/published/comparison.html").text
    assert "Edited by Ana" not in page and "How this page was made" not in page
    assert 'name="how_made"' in client.get(f"/runs/{made}/publish").text
    assert _post(client, f"/runs/{made}/publish", how_made="1").status_code == 200
    page = client.get(f"/runs/{made}/published/comparison.html").text
    assert "How this page was made" in page and "Edited by Ana: the verdict&#39;s line" in page
    for name in ("panel.db", "../panel.db", "comparison.txt"):
        assert client.get(f"/runs/{made}/published/{name}").status_code == 404


def test_a_post_without_the_csrf_field_is_refused(client: TestClient, made: str, runs_dir: Path) -> None:
    for path, data in [
        (f"/runs/{made}/review/approve", {**FIELDS, "approved": "1"}),
        (f"/runs/{made}/approve-all", {}),
        (f"/runs/{made}/review/edit", {**FIELDS, "verdict_note": "x y"}),
        (f"/runs/{made}/publish", {"anyway": "1"}),
    ]:
        assert client.post(path, data=data).status_code == 403, path
    with Store(runs_dir, readonly=True) as store:
        assert store.approvals(made) == {} and store.edits(made) == []
    assert not (runs_dir / made / "published").exists()


def test_hostile_text_stays_escaped_on_the_edit_page(client: TestClient, made: str, runs_dir: Path) -> None:
    with Store(runs_dir) as store:
        store.edit_review(made, KEY, "review", f"Prose {INJECTED_NAME}", editor=INJECTED_NAME)
        store.edit_review(made, KEY, "verdict_note", f'" autofocus onfocus="x {INJECTED_NAME}')
    sign_in(client, INJECTED_NAME)
    for page in (
        client.get(f"/runs/{made}/review/edit", params=FIELDS).text,
        client.get(f"/runs/{made}").text,
    ):
        assert "<script" not in page and 'onfocus="x' not in page
    page = client.get(f"/runs/{made}/review/edit", params=FIELDS).text
    assert "Prose &lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in page


def test_a_write_while_another_process_holds_the_store_is_409(
    client: TestClient, made: str, runs_dir: Path
) -> None:
    with Store(runs_dir):
        busy = _post(client, f"/runs/{made}/review/approve", **FIELDS, approved="1")
        assert busy.status_code == 409
        assert f"is in use by another panel process (pid {os.getpid()})" in busy.text
        assert _post(client, f"/runs/{made}/publish", anyway="1").status_code == 409
    assert not (runs_dir / made / "published").exists()


class _Quotes(HTMLParser):
    """The paragraphs of each review's quoted prose (<blockquote class="prose">), in order."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.quotes: list[list[str]] = []  # each blockquote: the text of its <p> children
        self._depth = 0  # inside a prose blockquote: the depth of its open elements
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "blockquote" and "prose" in (dict(attrs).get("class") or "").split():
            self.quotes.append([])
            self._depth = 1
        elif self._depth:
            self._depth += 1
            if tag == "p" and self._depth == 2:
                self.quotes[-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._depth >= 2 and self.quotes[-1]:
            self.quotes[-1][-1] += data


def test_an_edited_review_keeps_its_closing_quote_mark(client: TestClient, made: str, runs_dir: Path) -> None:
    """comparison.css opens a review's quote on the first <p> of its blockquote and closes it on
    the last: the last <p> must be the review's last paragraph, in the app and the published file;
    the app's "edited" mark sits after the quote."""
    css = client.get("/static/comparison.css").text
    assert '.prose p:first-child::before { content: "\\201C"; }' in css
    assert '.prose p:last-child::after { content: "\\201D"; }' in css
    form = _edit_form(client, made)
    form["review"] = "First paragraph of the editor.\r\n\r\nIt ends here."
    assert _post(client, f"/runs/{made}/review/edit", **form).status_code == 303
    with Store(runs_dir, readonly=True) as store:
        published = render_html(load_record(store, made))
    view = client.get(f"/runs/{made}").text
    for page in (view, published):
        assert ["First paragraph of the editor.", "It ends here."] in _Quotes(page).quotes
    article = view.split("First paragraph of the editor.")[1].split("</article>")[0]
    assert article.index("</blockquote>") < article.index('class="edited"')  # the mark, after the quote


def test_an_edit_sent_while_a_regenerate_runs_keeps_its_text_and_says_so(
    client: TestClient, made: str, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    generate = FakeBackend.generate

    async def held(self: FakeBackend, request: BackendRequest) -> Reply:
        await asyncio.to_thread(gate.wait)
        return await generate(self, request)

    monkeypatch.setattr(FakeBackend, "generate", held)
    other = {**FIELDS, "tool": "vllm"}  # another review of the same run is regenerated
    started = _post(client, f"/runs/{made}/review/regenerate", **other, reason="too vague")
    assert started.status_code == 303
    job = started.headers["location"]
    try:
        form = _edit_form(client, made)
        form["review"] = "An editor's own paragraph, typed while the job ran."
        busy = _post(client, f"/runs/{made}/review/edit", **form)
        approve = _post(client, f"/runs/{made}/review/approve", **FIELDS, approved="1", version="x")
    finally:
        gate.set()
    assert busy.status_code == 409
    said = _unescape(busy.text)
    assert (
        "A review of this run is being regenerated; your edit is kept below — save again when it finishes."
        in said
    )
    assert "is in use by" not in said and "--out" not in said  # not the command line's lock sentence
    assert "An editor's own paragraph, typed while the job ran.</textarea>" in said  # the text kept
    assert f'href="{job}"' in busy.text and f'href="/runs/{made}#{anchor(*KEY)}"' in busy.text
    assert approve.status_code == 409
    assert "A review of this run is being regenerated: nothing was changed" in _unescape(approve.text)
    assert _model(runs_dir, made)[1] == []  # nothing was saved
    assert read_events(client, f"{job}/events")[-1][1]["state"] == "done"
    # once the job is done, the form as it came back saves
    again = _post(client, f"/runs/{made}/review/edit", **_form_of(busy.text))
    assert again.status_code == 303
    assert [(e.field, e.value) for e in _model(runs_dir, made)[1]] == [
        ("review", "An editor's own paragraph, typed while the job ran.")
    ]


def test_comparison_html_is_unchanged_without_the_hook(made: str, runs_dir: Path) -> None:
    """The page with the editorial marks is the view's page less the hook's own output, byte for
    byte: the hook adds its controls and ids and changes nothing else, and without it nothing
    of it is left."""
    with Store(runs_dir) as store:
        store.edit_review(made, KEY, "verdict_note", "Edited.")
        record = load_record(store, made)

    class Hook:
        def __call__(self, *args: Any) -> Markup:
            return Markup('<footer class="hooked"></footer>')

        def anchor(self, *args: Any) -> str:
            return "a1"

    published, hooked = render_html(record, marks=True), render_html(record, review_actions=Hook())
    assert hooked.count('<footer class="hooked"></footer>') == 4 and hooked.count('id="a1"') == 4
    less_the_hook = hooked.replace(' id="a1"', "").replace('        <footer class="hooked"></footer>\n', "")
    assert published == less_the_hook
    assert "Edited." in published and 'class="review' in published
    assert "<form" not in published and CSRF_FIELD not in published  # nothing of the view's


def test_failed_and_missing_reviews_offer_only_regenerate(
    client: TestClient, made: str, runs_dir: Path
) -> None:
    failed, missing = CellKey("vllm", "builder", "fake:schema"), CellKey("vllm", "skeptic", "fake:schema")
    with Store(runs_dir) as store:
        store.archive_review(made, failed, "regenerate")
        store.save_review(made, failed, "fake", "schema", data=None, error="timed out", raw_reply=None,
                          request_id=None, asks=2)  # fmt: skip
        store.archive_review(made, missing, "set aside")
    page = client.get(f"/runs/{made}").text
    assert "2 of 2 reviews approved" not in page and "0 of 2 reviews approved" in page
    assert "1 failed" in page and "1 missing" in page
    for key in (failed, missing):
        article = page.split(f'id="{anchor(*key)}"')[1].split("</article>")[0]
        assert "/review/regenerate" in article and "Approve" not in article and "/review/edit" not in article
    edit = client.get(f"/runs/{made}/review/edit", params={**FIELDS, "tool": "vllm"}).text
    assert "This review failed, so there is nothing to edit: regenerate it" in edit
    assert 'class="edit-form"' not in edit and 'name="reason"' in edit
    fields = {**FIELDS, "tool": "vllm"}
    assert _post(client, f"/runs/{made}/review/approve", **fields, approved="1").status_code == 400
    assert _post(client, f"/runs/{made}/review/edit", **fields, verdict_note="x y").status_code == 400
    blockers = client.get(f"/runs/{made}/publish").text
    assert "1 failed (vllm/builder/fake:schema)" in blockers and "1 missing" in blockers


def test_a_review_runs_tool_page_carries_the_actions(runs_dir: Path) -> None:
    plan = plan_run(["ollama", "vllm"], catalog=EXAMPLE_CATALOG, backends=["fake"])
    with Store(runs_dir) as store:
        run_id, _ = asyncio.run(run_plan(plan, store, "panel review", options=RunOptions(kind="review")))
    with TestClient(create_app(runs_dir, token=None, port=8765), base_url=BASE) as client:
        sign_in(client, "Ana")
        page = client.get(f"/runs/{run_id}/tools/vllm").text
        assert "0 of 4 reviews approved" in page and "Approve all of this tool" in page
        assert page.count("/review/regenerate") == 4
        fields = {**FIELDS, "tool": "vllm"}
        key = CellKey("vllm", "builder", "fake:schema")
        version = _shown(client, f"/runs/{run_id}/tools/vllm", key)
        approved = _post(client, f"/runs/{run_id}/review/approve", **fields, approved="1", version=version)
        assert approved.headers["location"] == f"/runs/{run_id}/tools/vllm#{anchor(*key)}"
        shown = _shown(client, f"/runs/{run_id}/tools/ollama")
        everything = _post(client, f"/runs/{run_id}/approve-all", tool="ollama", version=shown)
        assert everything.headers["location"] == f"/runs/{run_id}/tools/ollama#editor"
        assert "4 of 4 reviews approved" in client.get(f"/runs/{run_id}/tools/ollama").text
        assert "3 unapproved (vllm/" in client.get(f"/runs/{run_id}/publish").text


def test_a_form_opened_before_the_review_changed_saves_nothing_and_shows_it_as_it_is(
    client: TestClient, made: str, runs_dir: Path
) -> None:
    stale = _edit_form(client, made)
    version = _shown(client, f"/runs/{made}", KEY)
    everything = _shown(client, f"/runs/{made}")
    # meanwhile, in another tab: the review is regenerated (set aside, made again otherwise)
    with Store(runs_dir) as store:
        store.archive_review(made, KEY, "too vague")
        store.save_review(made, KEY, "fake", "schema", data={"verdict": "ship", "verdict_note": "A new note.",
                          "review": "New prose.", "answers": {}}, error=None, raw_reply="{}", request_id=None,
                          asks=1)  # fmt: skip
    stale["verdict_note"] = "An editor's note on the old text."
    saved = _post(client, f"/runs/{made}/review/edit", **stale)
    assert saved.status_code == 409
    assert "changed after the form was opened" in saved.text and "A new note." in saved.text
    assert _model(runs_dir, made)[1] == []  # not one field of the stale form was stored
    refused = _post(client, f"/runs/{made}/review/approve", **FIELDS, approved="1", version=version)
    assert refused.status_code == 409 and "reload it" in refused.text
    assert _post(client, f"/runs/{made}/approve-all", version=everything).status_code == 409
    with Store(runs_dir, readonly=True) as store:
        assert store.approvals(made) == {}
    # the page as it is now carries the new version, and approving it works
    fresh = _shown(client, f"/runs/{made}", KEY)
    assert fresh != version
    assert (
        _post(client, f"/runs/{made}/review/approve", **FIELDS, approved="1", version=fresh).status_code
        == 303
    )


def test_in_a_rebuttal_run_the_form_starts_from_the_verdict_the_page_shows(
    client: TestClient, made: str, runs_dir: Path
) -> None:
    model, _ = _model(runs_dir, made)
    after = "skip" if model.verdict == "ship" else "ship"
    with Store(runs_dir) as store:
        store.save_rebuttal(made, KEY, "fake", "schema", verdict_before=model.verdict, others=3,
                            data={"decision": "change", "why": "B is right.", "verdict": after},
                            error=None, raw_reply="{}", request_id=None, asks=1)  # fmt: skip
        store.commit()
    form = _edit_form(client, made)
    assert form["verdict"] == after  # what the comparison shows, not round 1's
    page = client.get(f"/runs/{made}/review/edit", params=FIELDS).text
    assert f"round 1: {model.verdict}, after rebuttal: {after}" in page
    # the editor overrules the flip: the round-1 verdict is a change, and is stored as one
    form["verdict"] = model.verdict
    assert _post(client, f"/runs/{made}/review/edit", **form).status_code == 303
    assert [(e.field, e.value) for e in _model(runs_dir, made)[1]] == [("verdict", model.verdict)]


def test_an_edit_after_approval_takes_it_back_and_the_page_says_so(
    client: TestClient, made: str, runs_dir: Path
) -> None:
    assert (
        _post(client, f"/runs/{made}/approve-all", version=_shown(client, f"/runs/{made}")).status_code == 303
    )
    assert "4 of 4 reviews approved" in client.get(f"/runs/{made}").text
    form = _edit_form(client, made)
    form["verdict_note"] = "Changed after the approval."
    assert _post(client, f"/runs/{made}/review/edit", **form).status_code == 303
    page = client.get(f"/runs/{made}").text
    assert "3 of 4 reviews approved" in page
    article = page.split(f'id="{anchor(*KEY)}"')[1].split("</article>")[0]
    assert "Not approved: edited by Ana after it was approved, which took the approval back" in article
    refused = _post(client, f"/runs/{made}/publish")
    assert refused.status_code == 409 and "1 unapproved (ollama/builder/fake:schema)" in refused.text
    assert not (runs_dir / made / "published").exists()


def test_writes_wait_for_the_editors_name_which_is_asked_once(made: str, runs_dir: Path) -> None:
    with TestClient(create_app(runs_dir, token=None, port=8765), base_url=BASE) as client:
        page = client.get(f"/runs/{made}").text
        assert '<form class="who"' in page and "Your name, for the record" in page
        token = csrf(client, f"/runs/{made}")
        version = _shown(client, f"/runs/{made}")
        for url, data in [
            (f"/runs/{made}/approve-all", {"version": version}),
            (
                f"/runs/{made}/review/approve",
                {**FIELDS, "approved": "1", "version": _shown(client, f"/runs/{made}", KEY)},
            ),
            (f"/runs/{made}/publish", {"anyway": "1"}),
            (f"/runs/{made}/review/regenerate", {**FIELDS, "reason": "too vague"}),
        ]:
            asked = client.post(url, data={CSRF_FIELD: token, **data})
            assert asked.status_code == 400 and "needs your name first" in asked.text, url
            assert 'action="/editor"' in asked.text
        with Store(runs_dir, readonly=True) as store:
            assert store.approvals(made) == {} and store.review_history(made, KEY) == []
        assert not (runs_dir / made / "published").exists()
        # an edit form asks in place, and keeps what was typed
        form = _edit_form(client, made)
        assert 'name="editor"' in client.get(f"/runs/{made}/review/edit", params=FIELDS).text
        form["verdict_note"] = "Typed before the name."
        kept = client.post(f"/runs/{made}/review/edit", data={CSRF_FIELD: token, **form})
        assert (
            kept.status_code == 400
            and "give your name below" in kept.text
            and "Typed before the name." in kept.text
        )

        # the name, once: cleaned, then every write carries it
        blank = client.post("/editor", data={CSRF_FIELD: token, "editor": "  ", "next": "/"})
        assert blank.status_code == 400 and "Give your name" in blank.text
        saved = client.post(
            "/editor",
            data={CSRF_FIELD: token, "editor": "  Ana \x1b[31m Lee ", "next": f"/runs/{made}"},
            follow_redirects=False,
        )
        assert saved.status_code == 303 and saved.headers["location"] == f"/runs/{made}"
        page = client.get(f"/runs/{made}").text
        assert "Editing as <strong>Ana Lee</strong>" in page and '<form class="who"' not in page
        assert (
            client.post(f"/runs/{made}/approve-all", data={CSRF_FIELD: token, "version": version}).status_code
            == 200
        )
        done = client.post(f"/runs/{made}/publish", data={CSRF_FIELD: token})
        assert done.status_code == 200 and "Every review of the panel was approved" in done.text
        record = json.loads((runs_dir / made / "published" / "comparison.json").read_text())
        prov = record["provenance"]
        assert prov["published_by"] == "Ana Lee" and {r["approved_by"] for r in prov["reviews"]} == {
            "Ana Lee"
        }
        # after the name, the form goes back only to a page of this view
        away = client.post(
            "/editor",
            data={CSRF_FIELD: token, "editor": "Ana", "next": "//evil.example/"},
            follow_redirects=False,
        )
        assert away.headers["location"] == "/"
