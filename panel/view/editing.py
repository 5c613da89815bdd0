"""An editor's edits and approvals of a run's reviews, from `panel view`'s forms.

A review is named by the fields `tool`, `persona`, `member` and `repeat` (query or form),
never by path segments. The edit form shows the text in force (the editor's, else the
model's) and, under an edited field, the model's own text with a way back to it. Saving
writes only the fields that changed, all in one transaction or none: a field the store
refuses comes back with its one-line message beside it (400) and nothing of the form is
written. Every write goes through `writable_store` (409 naming the holder while busy) and
carries the editor's name from the browser's session (`panel.view.who`); the edit form asks
for it while the session has none, so nothing typed is lost. An edit sent while one of the
app's jobs holds the store (a regenerate) comes back 409 with what was typed still in the
form, saying what runs and to save again when it ends (nothing is queued).

Approving a review, approving all and saving a changed verdict also store the editor's label
(`panel.store.labels`), in the same transaction as the approval or the edit; withdrawing an
approval stores none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ..errors import UserError
from ..store import CellKey, ReviewRow, RunRow, Store
from .actions import anchor, page_url
from .pages import _store as read_store
from .session import clean_name, remember_editor
from .templating import page, url
from .versions import page_version, run_versions
from .who import ask_name
from .writing import Busy, doing, writable_store

__all__ = ["ReviewField", "routes"]

#: what a form whose review changed since it was opened gets (409), beside the review as it is now
STALE = (
    "This review changed after the form was opened (regenerated, or edited elsewhere): nothing "
    "was saved. Here it is as it is now; make your change again."
)
#: what an edit form sent without the editor's name gets (400), its text kept
NAME_NEEDED = "Nothing was saved: give your name below (edits carry it), then save again."
#: what an edit sent while the app's job holds the store gets (409), its text kept; after what runs
KEPT = "; your edit is kept below — save again when it finishes."
_REVERT = "revert."


@dataclass
class ReviewField:
    """One field of the edit form: what is in force, what the model wrote, what was sent."""

    name: str
    label: str
    kind: str  # select, input, textarea
    in_force: str
    model: str | None
    edited: bool
    choices: list[str] = field(default_factory=list)
    value: str = ""
    error: str | None = None

    def __post_init__(self) -> None:
        self.value = self.in_force


def _cell(key: CellKey) -> str:
    repeat = f" (repeat {key.repeat})" if key.repeat else ""
    return f"{key.tool_id} by {key.persona_id} on {key.member}{repeat}"


def review_key(params: Any) -> CellKey:
    """The review the query or form names; 404 for a missing field or a repeat not a number."""
    tool, persona, member = (params.get(k) for k in ("tool", "persona", "member"))
    if not all(isinstance(v, str) and v for v in (tool, persona, member)):
        raise HTTPException(404, "Name a review by its tool, persona and member.")
    try:
        repeat = int(params.get("repeat") or 0)
    except (TypeError, ValueError):
        raise HTTPException(404, "A review's repeat is a whole number (0 for the panel's own).") from None
    if not 0 <= repeat < 1 << 63:  # past SQLite's integers no review can be
        raise HTTPException(404, "A review's repeat is a whole number (0 for the panel's own).")
    return CellKey(str(tool), str(persona), str(member), repeat)


def _run(store: Store | None, run_id: str) -> tuple[Store, RunRow]:
    run = store.get_run(run_id) if store is not None else None
    if store is None or run is None:
        raise HTTPException(404, f"There is no run '{run_id}' in this store.")
    return store, run


def _review(store: Store, run_id: str, key: CellKey) -> ReviewRow:
    review = store.review(run_id, key)
    if review is None:
        raise HTTPException(404, f"Run '{run_id}' has no review of {_cell(key)}.")
    return review


def review_fields(store: Store, run_id: str, review: ReviewRow) -> list[ReviewField]:
    """The form's fields, from the run's own persona data and the edits in force."""
    persona = next((p for p in store.run_personas(run_id) if p.get("id") == review.persona_id), {})
    edits = {e.field: e.value for e in store.edits(run_id) if e.key == review.key}
    data = review.data or {}
    answers = data.get("answers") or {}

    def make(
        name: str, label: str, kind: str, model: object, choices: list[str] | None = None
    ) -> ReviewField:
        own = None if model is None else str(model)
        return ReviewField(
            name, label, kind, edits.get(name, own or ""), own, name in edits, list(choices or [])
        )

    verdicts = [str(v) for v in persona.get("verdicts") or ["ship", "skip"]]
    # In a rebuttal run the page shows the round-2 verdict; that is the model's, in force.
    rebuttal = next((r for r in store.rebuttals(run_id, review.tool_id) if r.key == review.key), None)
    verdict, label = review.verdict, "Verdict"
    if rebuttal is not None and rebuttal.valid and rebuttal.verdict_after is not None:
        verdict = rebuttal.verdict_after
        if rebuttal.verdict_after != review.verdict:
            label = f"Verdict (round 1: {review.verdict}, after rebuttal: {rebuttal.verdict_after})"
    fields = [
        make("verdict", label, "select", verdict, verdicts),
        make("verdict_note", "Verdict note", "input", review.verdict_note),
        make("review", "Review", "textarea", data.get("review")),
    ]
    for q in persona.get("questions", []):
        fields.append(
            make(f"answers.{q['key']}", str(q.get("question", q["key"])), "textarea", answers.get(q["key"]))
        )
    for f in fields:
        if f.kind == "select" and f.in_force not in f.choices:
            f.choices.append(f.in_force)
    return fields


def _names(store: Store, run_id: str, key: CellKey) -> dict[str, str]:
    tool = next((t for t in store.run_tools(run_id) if t.get("id") == key.tool_id), {})
    persona = next((p for p in store.run_personas(run_id) if p.get("id") == key.persona_id), {})
    return {"tool": str(tool.get("name", key.tool_id)), "persona": str(persona.get("name", key.persona_id))}


def _edit_page(
    request: Request,
    run: RunRow,
    review: ReviewRow,
    fields: list[ReviewField],
    names: dict[str, str],
    version: str,
    status: int = 200,
    conflict: str | None = None,
    job_url: str | None = None,
) -> Response:
    key = review.key
    back = url(request, f"{page_url(run, key.tool_id)}#{anchor(*key)}")
    context = {"run": run, "key": key, "review": review, "fields": fields, "names": names}
    return page(
        request,
        "edit.html.j2",
        status,
        back=back,
        version=version,
        conflict=conflict,
        job_url=job_url,
        **context,
    )


def _version(store: Store, run_id: str, key: CellKey) -> str:
    return run_versions(store, run_id, key.tool_id).get(key, "")


def edit_page(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    key = review_key(request.query_params)
    with read_store(request) as opened:
        store, run = _run(opened, run_id)
        review = _review(store, run_id, key)
        fields = review_fields(store, run_id, review) if review.valid else []
        names = _names(store, run_id, key)
        version = _version(store, run_id, key)
    return _edit_page(request, run, review, fields, names, version)


class _Refused(Exception):
    """Some field was refused: roll the whole form back."""


def _text(value: object) -> str:
    return str(value).replace("\r\n", "\n") if isinstance(value, str) else ""


def _changes(fields: list[ReviewField], form: dict[str, Any]) -> dict[str, str | None]:
    """The fields whose value the form changes: None sends one back to the model's text."""
    changes: dict[str, str | None] = {}
    for f in fields:
        if f.name not in form and _REVERT + f.name not in form:
            continue
        f.value = _text(form.get(f.name, f.in_force))
        if f.edited and form.get(_REVERT + f.name):
            changes[f.name] = None
        elif f.value.strip() != f.in_force.strip():
            back = f.edited and f.model is not None and f.value.strip() == f.model.strip()
            changes[f.name] = None if back else f.value
    return changes


def _kept(request: Request, run_id: str, key: CellKey, form: dict[str, Any], busy: Busy) -> Response:
    """The edit form again, as sent (its text and the version it was opened at), saying that
    the app's job holds the store and to save again when it ends (409)."""
    if busy.job is None:  # another process: its lock's sentence
        raise busy
    with read_store(request) as opened:
        store, run = _run(opened, run_id)
        review = _review(store, run_id, key)
        if not review.valid:
            raise busy
        fields = review_fields(store, run_id, review)
        names = _names(store, run_id, key)
    _changes(fields, form)  # each field shows what was sent
    message = doing(busy.job, run_id) + KEPT
    version = _text(form.get("version", ""))
    job = url(request, f"/jobs/{busy.job.id}")
    return _edit_page(request, run, review, fields, names, version, 409, message, job)


def _save(request: Request, run_id: str, form: dict[str, Any]) -> Response:
    key = review_key(form)
    editor = request.state.editor or clean_name(_text(form.get("editor", "")))
    if editor and not request.state.editor:
        remember_editor(request, editor)
    try:
        return _write(request, run_id, key, editor, form)
    except Busy as busy:
        return _kept(request, run_id, key, form, busy)


def _write(request: Request, run_id: str, key: CellKey, editor: str, form: dict[str, Any]) -> Response:
    with writable_store(request) as store:
        _, run = _run(store, run_id)
        review = _review(store, run_id, key)
        if not review.valid:
            raise HTTPException(400, f"The review of {_cell(key)} failed: regenerate it rather than edit it.")
        fields = review_fields(store, run_id, review)
        version = _version(store, run_id, key)
        if form.get("version") != version:
            names = _names(store, run_id, key)
            return _edit_page(request, run, review, fields, names, version, 409, STALE)
        changes = _changes(fields, form)
        if not editor:
            names = _names(store, run_id, key)
            return _edit_page(request, run, review, fields, names, version, 400, NAME_NEEDED)
        errors: dict[str, str] = {}
        try:
            with store.transaction():
                for name, value in changes.items():
                    try:
                        store.edit_review(run_id, key, name, value, editor=editor)
                    except UserError as exc:
                        errors[name] = str(exc)
                if errors:
                    raise _Refused
        except _Refused:
            for f in fields:
                f.error = errors.get(f.name)
            names = _names(store, run_id, key)
            return _edit_page(request, run, review, fields, names, version, 400)
    return RedirectResponse(url(request, f"{page_url(run, key.tool_id)}#{anchor(*key)}"), 303)


async def save_edits(request: Request) -> Response:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    return await run_in_threadpool(_save, request, request.path_params["run_id"], values)


def _approve(request: Request, run_id: str, form: dict[str, Any]) -> Response:
    key = review_key(form)
    if form.get("approved") not in ("0", "1"):
        raise HTTPException(400, "Say approved=1 to approve a review or approved=0 to withdraw it.")
    if key.repeat:
        raise HTTPException(400, "Approval is for the panel's first reading of a review (repeat 0).")
    editor = request.state.editor
    with writable_store(request) as store:
        _, run = _run(store, run_id)
        review = _review(store, run_id, key)
        if not review.valid:
            raise HTTPException(
                400, f"The review of {_cell(key)} failed: regenerate it; it cannot be approved."
            )
        if form.get("version") != _version(store, run_id, key):
            raise HTTPException(
                409,
                f"The review of {_cell(key)} changed after the page was loaded: reload it and look again.",
            )
        if not editor:
            return ask_name(request, page_url(run, key.tool_id), "approving a review")
        store.approve(run_id, key, form["approved"] == "1", editor=editor)
    return RedirectResponse(url(request, f"{page_url(run, key.tool_id)}#{anchor(*key)}"), 303)


def _approve_all(request: Request, run_id: str, form: dict[str, Any]) -> Response:
    tool = form.get("tool") or None
    with writable_store(request) as store:
        _, run = _run(store, run_id)
        if tool is not None and tool not in {t.get("id") for t in store.run_tools(run_id)}:
            raise HTTPException(404, f"Run '{run_id}' has no tool '{tool}'.")
        if form.get("version") != page_version(run_versions(store, run_id, tool), tool):
            raise HTTPException(
                409,
                "Reviews changed after the page was loaded: nothing was approved; reload it and look again.",
            )
        if not request.state.editor:
            return ask_name(request, page_url(run, tool), "approving all")
        approvals = store.approvals(run_id)
        pending = [
            r.key
            for r in store.reviews(run_id, tool)
            if r.repeat == 0 and r.valid and not (r.key in approvals and approvals[r.key].approved)
        ]
        with store.transaction():
            for key in pending:
                store.approve(run_id, key, True, editor=request.state.editor, bulk=True)
    return RedirectResponse(url(request, f"{page_url(run, tool)}#editor"), 303)


async def approve(request: Request) -> Response:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    return await run_in_threadpool(_approve, request, request.path_params["run_id"], values)


async def approve_all(request: Request) -> Response:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    return await run_in_threadpool(_approve_all, request, request.path_params["run_id"], values)


def routes() -> list[BaseRoute]:
    return [
        Route("/runs/{run_id}/review/edit", edit_page, methods=["GET"], name="review_edit"),
        Route("/runs/{run_id}/review/edit", save_edits, methods=["POST"], name="review_save"),
        Route("/runs/{run_id}/review/approve", approve, methods=["POST"], name="review_approve"),
        Route("/runs/{run_id}/approve-all", approve_all, methods=["POST"], name="approve_all"),
    ]
