"""An editor's edits in the record and on the pages, and publishing the approved page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from panel.errors import UserError
from panel.report.load import load_record
from panel.report.publish import publish
from panel.report.render import render_html, render_markdown
from panel.resources import data_dir
from panel.store import CellKey, Store

KEY = CellKey("ollama", "builder", "fake:schema")


def _entry(record: Any, key: CellKey) -> Any:
    (tool,) = [t for t in record.tools if t.id == key.tool_id]
    (entry,) = [e for e in tool.scorecard if (e.persona_id, e.member) == (key.persona_id, key.member)]
    return tool, entry


def _flip(verdict: str | None) -> str:
    return "skip" if verdict == "ship" else "ship"


def test_the_record_shows_the_editors_text_and_keeps_the_models(store: Store, made: str) -> None:
    model = store.review(made, KEY)
    assert model is not None and model.data is not None
    store.edit_review(made, KEY, "verdict_note", "An editor's note.", editor="ana")
    store.edit_review(made, KEY, "verdict", _flip(model.verdict), editor="ana")
    store.edit_review(made, KEY, "answers.gripe", "Fixed answer.")
    store.edit_review(made, KEY, "review", model.data["review"])  # the model's own text: no mark
    record = load_record(store, made)
    tool, entry = _entry(record, KEY)
    assert (entry.verdict, entry.verdict_note) == (_flip(model.verdict), "An editor's note.")
    assert [a.answer for a in entry.answers if a.key == "gripe"] == ["Fixed answer."]
    marks = {m.field: (m.original, m.editor) for m in entry.edited_by_editor}
    assert marks == {
        "verdict_note": (model.verdict_note, "ana"),
        "verdict": (model.verdict, "ana"),
        "answers.gripe": (model.data["answers"]["gripe"], None),
    }
    assert tool.panel.changed_by_editor == 1 and tool.panel.note == "1 verdict changed by an editor"
    ships = sum(1 for e in tool.scorecard if e.verdict == "ship")
    assert tool.panel.ship == ships  # the share counts the editor's verdict
    unedited = load_record(store, made, edits=False)
    assert _entry(unedited, KEY)[1].verdict_note == model.verdict_note
    assert "edited_by_editor" not in unedited.model_dump_json()
    jsonschema.validate(
        json.loads(record.model_dump_json()),
        json.loads((data_dir("schema") / "comparison.schema.json").read_text()),
    )


#: what only the editor's side shows: how a reply was held to its schema, and the edit marks
INTERNALS = ("Structure:", "(edited)", "(verdict edited)", "Edited by", 'class="edited"',
             "changed by an editor", "model's own text", "How this page was made")  # fmt: skip


def _edited(store: Store, made: str) -> Any:
    """The run's record after ana rewrote a verdict's line (with markup) and someone flipped it."""
    model = store.review(made, KEY)
    assert model is not None
    store.edit_review(made, KEY, "verdict_note", "<b>Editor</b> says so", editor="ana")
    store.edit_review(made, KEY, "verdict", _flip(model.verdict))
    return load_record(store, made)


def test_the_readers_pages_carry_no_editorial_internals(store: Store, made: str) -> None:
    record = _edited(store, made)
    md, html = render_markdown(record), render_html(record)
    assert "&lt;b&gt;Editor&lt;/b&gt; says so" in md and "&lt;b&gt;Editor&lt;/b&gt; says so" in html
    assert "<b>Editor" not in html  # the editor's text is shown, as text
    for page in (md, html):
        assert [word for word in INTERNALS if word in page] == []


def test_how_this_page_was_made_gathers_the_internals_when_asked(store: Store, made: str) -> None:
    record = _edited(store, made)
    md, html = render_markdown(record, how_made=True), render_html(record, how_made=True)
    assert "\n## How this page was made\n" in md and 'id="how-made"' in html
    edited = "Edited by ana: the verdict, the verdict's line; the record keeps the model's own text."
    assert f"- {edited}" in md and f"<dd>{edited.replace(chr(39), '&#39;')}</dd>" in html
    assert "**The Builder on Ollama**" in md
    assert "Structure: validated after (4 reviews)." in md
    assert "- Ollama: the ship share counts 1 verdict changed by an editor." in md
    assert "<li>Ollama: the ship share counts 1 verdict changed by an editor.</li>" in html
    # the reader's text itself is unmarked: the marks are the view's (below), the section the file's
    assert "(edited)" not in md and 'class="edited"' not in html


def test_the_view_marks_each_edit_beside_the_review(store: Store, made: str) -> None:
    html = render_html(_edited(store, made), marks=True)
    assert '&lt;b&gt;Editor&lt;/b&gt; says so<span class="edited"' in html and "<b>Editor" not in html
    assert html.count('class="edited"') == 2 and 'class="review is-' in html and "is-edited" in html
    assert "1 verdict changed by an editor" in html and "Edited by ana" in html
    assert 'id="how-made"' not in html


def test_publish_refuses_while_reviews_are_unapproved_then_writes_with_provenance(
    store: Store, made: str, tmp_path: Path
) -> None:
    out = tmp_path / "published"
    store.edit_review(made, KEY, "verdict_note", "Checked by an editor.", editor="ana")
    store.approve(made, KEY, editor="ana")
    with pytest.raises(UserError) as refused:
        publish(store, made, out)
    line = str(refused.value)
    assert "\n" not in line and "3 unapproved" in line and "vllm/skeptic/fake:schema" in line
    assert not out.exists()

    for review in store.reviews(made):
        store.approve(made, review.key, editor="ben" if review.key != KEY else "ana")
    paths, warnings = publish(store, made, out)
    assert warnings == [] and sorted(p.name for p in paths) == [
        "comparison.html",
        "comparison.json",
        "comparison.md",
    ]
    record = json.loads((out / "comparison.json").read_text())
    jsonschema.validate(record, json.loads((data_dir("schema") / "comparison.schema.json").read_text()))
    prov = record["provenance"]
    assert prov["run_id"] == made and prov["models"] == ["fake:schema"] and prov["approved"] == 4
    mine = [r for r in prov["reviews"] if (r["tool_id"], r["persona_id"]) == ("ollama", "builder")]
    assert [(r["edited_fields"], r["approved_by"]) for r in mine] == [(["verdict_note"], "ana")]
    assert all(r["approved_at"] for r in prov["reviews"])
    assert "Checked by an editor." in (out / "comparison.md").read_text()
    assert "4 of 4 reviews approved" in (out / "comparison.html").read_text()
    assert list(out.glob(".*.tmp")) == []  # written atomically: no temporary file left


def test_publish_with_unapproved_or_failed_reviews_when_allowed_warns(
    store: Store, made: str, tmp_path: Path
) -> None:
    failed = CellKey("vllm", "builder", "fake:schema")
    store.archive_review(made, failed, "regenerate")
    store.save_review(made, failed, "fake", "schema", data=None, error="timed out", raw_reply=None,
                      request_id=None, asks=2)  # fmt: skip
    with pytest.raises(UserError, match=r"3 unapproved .*; 1 failed \(vllm/builder/fake:schema\)"):
        publish(store, made, tmp_path / "out")
    paths, warnings = publish(store, made, tmp_path / "out", allow_unapproved=True)
    assert len(paths) == 3
    assert warnings == [
        "published with 3 unapproved (ollama/builder/fake:schema, ollama/skeptic/fake:schema, "
        "vllm/skeptic/fake:schema)",
        "published with 1 failed (vllm/builder/fake:schema)",
    ]
    record = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert record["provenance"]["warnings"] == warnings
    reviews = record["provenance"]["reviews"]
    (regenerated,) = [r for r in reviews if (r["tool_id"], r["persona_id"]) == failed[:2]]
    assert regenerated["regenerated"] == 1 and regenerated["valid"] is False
    assert "published with 1 failed" in (tmp_path / "out" / "comparison.html").read_text()


def test_publish_refuses_a_run_with_missing_reviews(store: Store, made: str, tmp_path: Path) -> None:
    for review in store.reviews(made):
        store.approve(made, review.key)
    store.archive_review(made, KEY, "regenerate")  # set aside, not yet regenerated
    with pytest.raises(UserError, match="1 missing"):
        publish(store, made, tmp_path / "out")


def test_the_published_record_names_who_published_it_escaped(store: Store, made: str, tmp_path: Path) -> None:
    name = "<b>Ana</b> & co"
    publish(store, made, tmp_path / "out", allow_unapproved=True, editor=name)
    record = json.loads((tmp_path / "out" / "comparison.json").read_text())
    jsonschema.validate(record, json.loads((data_dir("schema") / "comparison.schema.json").read_text()))
    assert record["version"] == "1.9" and record["provenance"]["published_by"] == name
    page = (tmp_path / "out" / "comparison.html").read_text()
    assert " by &lt;b&gt;Ana&lt;/b&gt; &amp; co · " in page and "<b>Ana" not in page
    assert " by &lt;b&gt;Ana&lt;/b&gt; &amp; co · " in (tmp_path / "out" / "comparison.md").read_text()


def test_the_published_provenance_says_why_each_review_was_regenerated(
    store: Store, made: str, tmp_path: Path
) -> None:
    store.archive_review(made, KEY, "the note misread the licence", editor="ana")
    store.save_review(made, KEY, "fake", "schema", data=None, error="timed out", raw_reply=None,
                      request_id=None, asks=1)  # fmt: skip
    out = tmp_path / "out"
    publish(store, made, out, allow_unapproved=True, editor="ben")
    record = json.loads((out / "comparison.json").read_text())
    jsonschema.validate(record, json.loads((data_dir("schema") / "comparison.schema.json").read_text()))
    (mine,) = [r for r in record["provenance"]["reviews"] if (r["tool_id"], r["persona_id"]) == KEY[:2]]
    assert mine["regenerated"] == 1
    (why,) = mine["regenerations"]
    assert (why["reason"], why["by"]) == ("the note misread the licence", "ana") and why["at"].endswith(
        "+00:00"
    )
    others = [r for r in record["provenance"]["reviews"] if r is not mine]
    assert all(r["regenerations"] == [] for r in others)
    # the reader's page leaves the reason to the JSON; the page made "how made" shows it
    assert "misread the licence" not in (out / "comparison.html").read_text()
    publish(store, made, out, allow_unapproved=True, editor="ben", how_made=True)
    assert "Regenerated by ana (" in (out / "comparison.md").read_text()
    assert "): the note misread the licence</dd>" in (out / "comparison.html").read_text()


@pytest.mark.parametrize("how_made", [False, True])
def test_the_published_files_hold_the_internals_only_with_how_made(
    store: Store, made: str, tmp_path: Path, how_made: bool
) -> None:
    store.edit_review(made, KEY, "verdict_note", "Checked by an editor.", editor="ana")
    for review in store.reviews(made):
        store.approve(made, review.key, editor="ana")
    out = tmp_path / "out"
    publish(store, made, out, editor="ana", how_made=how_made)
    pages = (out / "comparison.md").read_text() + (out / "comparison.html").read_text()
    assert "Checked by an editor." in pages
    shown = [word for word in ("Structure:", "Edited by", "How this page was made") if word in pages]
    assert shown == (["Structure:", "Edited by", "How this page was made"] if how_made else [])
    record = json.loads((out / "comparison.json").read_text())  # the JSON keeps everything either way
    assert {e["enforced"] for t in record["tools"] for e in t["scorecard"]} != {None}
    assert [r["edited_fields"] for r in record["provenance"]["reviews"] if r["edited_fields"]] == [
        ["verdict_note"]
    ]


def test_render_leaves_the_internals_out_unless_asked(
    cli: Any, made: str, runs_dir: Path, store: Store
) -> None:
    store.edit_review(made, KEY, "verdict_note", "Checked by an editor.", editor="ana")
    for fmt in ("md", "html"):
        plain = cli("render", made, "--format", fmt, "--runs", str(runs_dir))
        full = cli("render", made, "--format", fmt, "--runs", str(runs_dir), "--how-made")
        assert plain.code == 0 and full.code == 0, plain.err + full.err
        assert "Checked by an editor." in plain.out and "Checked by an editor." in full.out
        assert "Structure:" not in plain.out and "Edited by" not in plain.out
        assert "How this page was made" in full.out and "Edited by ana" in full.out
