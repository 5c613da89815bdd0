"""Regenerate one review of a run: the same tool, persona and member, a new seed.

The current review is set aside first (`Store.archive_review`: kept whole in the history,
with why), so the model's first text is never lost. The new one is asked of the model
(never served from the cache) with the run's seed moved on by `SEED_STRIDE` per review of
that cell set aside so far. The count lives in the store's history, so a resume after a
crash makes the cell with the same moved seed, not the old request again.

While it works the run is `running`; after, its files are rewritten, and it is `done` when
every cell has its review (or keeps the unfinished status it had).
"""

from __future__ import annotations

import copy
from pathlib import Path

from ..errors import UserError
from ..report.files import write_run_files
from ..store import UNFINISHED, CellKey, Store
from .cells import Cell, CellResult, Member
from .ending import running, store_errors
from .engine import Engine
from .events import ReviewMade, Sink
from .plan import Plan, plan_resume
from .rebuttal import planned_rebuttals, run_rebuttals

__all__ = ["find_cell", "regenerate_review"]


def _named(key: CellKey) -> str:
    repeat = f" (repeat {key.repeat})" if key.repeat else ""
    return f"{key.tool_id} by {key.persona_id} on {key.member}{repeat}"


def find_cell(plan: Plan, run_id: str, key: CellKey) -> tuple[Cell, Member]:
    """The run's cell of `key` and its member; UserError, one line, for one it does not have
    (a cell its member recused from included).

    The member is the one the run names `key.member`, or the one the user named so on the
    command line or in panel.toml (`local` for `local:SmolLM2-...`), when one member is."""
    tool = next((t for t in plan.tools if t.id == key.tool_id), None)
    persona = next((p for p in plan.personas if p.id == key.persona_id), None)
    members = _members_named(plan, key.member)
    missing = (
        f"no tool '{key.tool_id}'"
        if tool is None
        else f"no persona '{key.persona_id}'"
        if persona is None
        else _no_member(plan, key.member, members)
        if len(members) != 1
        else f"no repeat {key.repeat} (its repeats are 0 to {plan.repeats - 1})"
        if not 0 <= key.repeat < plan.repeats
        else None
    )
    if missing is not None:
        raise UserError(f"cannot regenerate the review of {_named(key)}: run '{run_id}' has {missing}")
    assert tool is not None and persona is not None
    if members[0].backend.recuses_from(tool.maker):
        raise UserError(
            f"cannot regenerate the review of {_named(key)}: {key.member} recused from {key.tool_id} "
            f"in run '{run_id}' (its maker made the tool), so the run has no review of it"
        )
    return Cell(tool, persona, members[0].backend, key.repeat), members[0]


def _members_named(plan: Plan, name: str) -> list[Member]:
    """The members `name` stands for: the one of that label, else those the user named so
    (a name in panel.toml, `backend:model` or a backend as typed, or the backend alone)."""
    exact = [m for m in plan.members if m.backend.label == name]
    if exact:
        return exact
    pairs = list(zip(plan.members, plan.specs, strict=False))
    typed = [m for m, spec in pairs if name in (spec.key, spec.text)]
    return typed or [m for m, spec in pairs if name == spec.backend]


def _no_member(plan: Plan, name: str, found: list[Member]) -> str:
    """What the run has instead of the member `name`: its members, by the names it knows them by."""
    known = []
    for i, member in enumerate(plan.members):
        label = member.backend.label
        typed = plan.specs[i].key if i < len(plan.specs) else label
        known.append(label if typed == label else f"{label} (or {typed})")
    said = f"{len(found)} members that '{name}' could name" if found else f"no member '{name}'"
    return f"{said}; its members: {', '.join(known)}"


def _complete(store: Store, run_id: str, plan: Plan, engine: Engine) -> bool:
    """Whether every review, and in a rebuttal run every round-2 answer, is in."""
    valid, failed = store.review_counts(run_id)
    if valid + failed < plan.total:
        return False
    if not plan.rebuttal:
        return True
    answered = sum(store.rebuttal_counts(run_id))
    return answered >= planned_rebuttals(engine, plan.members, plan.personas)


async def regenerate_review(
    store: Store,
    run_id: str,
    key: CellKey,
    reason: str,
    *,
    on_event: Sink | None = None,
    prices: str | Path | None = None,
    editor: str | None = None,
) -> CellResult:
    """Set the review of `key` aside (for `reason`, by `editor`) and make it again with a new seed.

    `on_event` is told of the new review (`ReviewMade`) once the run's files are written. A
    cell left empty by an earlier regenerate that did not finish is made without setting
    anything aside.
    """
    if not reason.strip():
        raise UserError(f"say why the review of {_named(key)} is regenerated (the reason is kept)")
    run = store.get_run(run_id)
    if run is None:
        raise UserError(f"no run '{run_id}' in {store.root}")
    plan = plan_resume(store, run_id, prices)
    cell, member = find_cell(plan, run_id, key)
    key = key._replace(member=member.backend.label)  # as the run names it, whatever was typed
    before = run.status if run.status in UNFINISHED and run.status != "running" else "done"
    with store_errors(store):
        async with running(store, run_id, [member.backend]) as end:
            if store.review(run_id, key) is not None:
                store.archive_review(run_id, key, reason, editor)
            engine = Engine(store, run_id, plan.prompts, [member], plan.sampling, use_cache=False)
            result = await engine.review_alone(cell, member)
            if plan.rebuttal and result.valid:
                # Its round-2 answer went with the review set aside: the new one answers again
                # (only this member's missing answers are asked).
                await run_rebuttals(engine, [cell.tool], plan.personas)
            final = "done" if _complete(store, run_id, plan, engine) else before
            end.finish(final, lambda rid, status: write_run_files(store, rid, status, run.kind))
            if on_event is not None:
                on_event(ReviewMade(result, copy.copy(engine.stats)))
    return result
