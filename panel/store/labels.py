"""The editors' decisions as labels: what verdict an editor stood behind, on which tool, when,
and under which panel.

A label is written for each of these, in the transaction of the change that makes it:

- **approve** (a "yes" on one review): the review's verdict in force (the editor's edited one
  if there is one, else the round-2 verdict of a rebuttal run, else the model's);
- **edit** of a review's verdict: the verdict the edit leaves in force (an edit back to the
  model's text labels the model's verdict, which the editor now stands behind);
- **approve_all** (one review of many approved at once, the app's "Approve all"): as approve,
  but history (below);
- **withdraw** (an approval taken back, a "no" on one review): takes that review's approval
  label back; an edit label of the review made before it stays;
- **publish**: for each tool of the page, the panel's pooled verdict as published (the most
  frequent verdict in force among its valid reviews of repeat 0); a tool whose verdicts tie
  gets no label.

A publish row is history: it records that the editor let the panel's verdict stand, which is
no judgement of the editor's own (a page published "anyway" holds tools nobody read). So is
an approve_all row: one click approves every review of a page, and counted as labels they
would give every unanimous tool the panel's own verdict, so that the panel would be scored
against itself. Both are left out of the labels in force unless a caller asks for them
(`count_publishes`), and even then they never override the same editor's approvals or
edits of the tool: they count only for a tool on which that editor has none. An edit of the
prose writes no label. Rows are never updated nor deleted (triggers refuse both): a label
never overwrites another; which ones count is a rule of reading (`labels_in_force`).

Each row keeps the review it came from (persona, member, repeat; none for a publish) and the
panel then (`panel`: members as backend:model, personas with their versions, the prompts'
version), so a label made under another prompt or model can be told apart and filtered.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .reviews import Reviews
from .rows import CellKey

__all__ = ["LABEL_ACTIONS", "LabelRow", "Labels", "ToolLabel", "judge_identity"]

#: what an editor did that wrote a label
LABEL_ACTIONS = ("approve", "approve_all", "edit", "withdraw", "publish")


@dataclass(frozen=True)
class LabelRow:
    """One stored label, as written."""

    id: int
    run_id: str
    tool_id: str
    verdict: str
    editor: str | None
    created_at: float
    action: str
    #: the review it came from; None for a publish (a label of the whole tool)
    key: CellKey | None
    #: the panel then: {"members": {name: "backend:model"}, "personas": {id: version}, "prompts": version}
    panel: dict[str, Any]


@dataclass(frozen=True)
class ToolLabel:
    """The label in force of one editor on one tool (see `Labels.labels_in_force`)."""

    tool_id: str
    verdict: str
    editor: str
    #: the run and action of the latest label it rests on
    run_id: str
    action: str
    created_at: float
    #: how many stored labels of this editor on this tool it rests on (a publish: 1)
    rows: int
    #: the ids of those stored labels (`LabelRow.id`)
    ids: tuple[int, ...] = ()


def judge_identity(panel: dict[str, Any], persona_id: str, member: str) -> tuple[str, str, str, str] | None:
    """(backend:model, persona id, persona version, prompt version) of a judge in a stored
    panel; None when the panel does not name the member or the persona."""
    model = (panel.get("members") or {}).get(member)
    version = (panel.get("personas") or {}).get(persona_id)
    if model is None or version is None:
        return None
    return (str(model), persona_id, str(version), str(panel.get("prompts") or ""))


class Labels(Reviews):
    # --- writing (inside the caller's transaction) -----------------------------------------

    def panel_then(self, run_id: str) -> dict[str, Any]:
        """The run's panel as it is now: members (backend:model of their reviews), personas
        with their versions, the prompts' version (`runs.config`).

        Each member is looked up by name (one indexed probe each): a label is written per
        approval, and Approve all on a catalog run writes thousands in one request."""
        row = self.db.execute("SELECT config FROM runs WHERE id = ?", (run_id,)).fetchone()
        config = json.loads(row[0]) if row is not None else {}
        names = config.get("members")
        if not isinstance(names, list):  # a run recorded without its members: read them off
            distinct = self.db.execute("SELECT DISTINCT member FROM reviews WHERE run_id = ?", (run_id,))
            names = [r[0] for r in distinct]
        members = {}
        for name in sorted(map(str, names)):
            found = self.db.execute(
                "SELECT backend, model FROM reviews WHERE run_id = ? AND member = ? LIMIT 1", (run_id, name)
            ).fetchone()
            if found is not None:
                members[name] = f"{found[0]}:{found[1]}"
        personas = {
            str(r["persona_id"]): str(r["version"])
            for r in self.db.execute(
                "SELECT persona_id, version FROM run_personas WHERE run_id = ? ORDER BY position", (run_id,)
            )
        }
        return {"members": members, "personas": personas, "prompts": config.get("prompts")}

    def verdicts_in_force(self, run_id: str, tool_id: str | None = None) -> dict[CellKey, str]:
        """Each valid current review's verdict as a reader sees it: the editor's edited verdict,
        else a valid round-2 verdict (rebuttal runs), else the model's."""
        where, args = ("rv.run_id = ?", (run_id,)) if tool_id is None else (
            "rv.run_id = ? AND rv.tool_id = ?", (run_id, tool_id)
        )  # fmt: skip
        rows = self.db.execute(
            f"""SELECT rv.tool_id, rv.persona_id, rv.member, rv.repeat, rv.verdict,
                   (SELECT e.value FROM review_edits e WHERE e.run_id = rv.run_id
                      AND e.tool_id = rv.tool_id AND e.persona_id = rv.persona_id
                      AND e.member = rv.member AND e.repeat = rv.repeat
                      AND e.field = 'verdict' AND e.history_id IS NULL
                    ORDER BY e.id DESC LIMIT 1) AS edited,
                   (SELECT b.verdict_after FROM rebuttals b WHERE b.run_id = rv.run_id
                      AND b.tool_id = rv.tool_id AND b.persona_id = rv.persona_id
                      AND b.member = rv.member AND b.repeat = rv.repeat AND b.valid = 1) AS after
               FROM reviews rv WHERE {where} AND rv.valid = 1""",
            args,
        )
        found: dict[CellKey, str] = {}
        for r in rows:
            verdict = r["edited"] or r["after"] or r["verdict"]
            if verdict is not None:
                found[CellKey(r["tool_id"], r["persona_id"], r["member"], r["repeat"])] = str(verdict)
        return found

    def _write_label(
        self, run_id: str, tool_id: str, verdict: str, editor: str | None, action: str, key: CellKey | None
    ) -> None:
        cell = (key.persona_id, key.member, key.repeat) if key is not None else (None, None, None)
        panel = json.dumps(self.panel_then(run_id))
        self.db.execute(
            """INSERT INTO editor_labels (run_id, tool_id, verdict, editor, created_at, action,
                   persona_id, member, repeat, panel) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (run_id, tool_id, verdict, editor, time.time(), action, *cell, panel),
        )

    def _label_review(self, run_id: str, key: CellKey, editor: str | None, action: str) -> None:
        """Label the verdict in force of one review (inside a transaction); none if it has none."""
        verdict = self.verdicts_in_force(run_id, key.tool_id).get(key)
        if verdict is not None:
            self._write_label(run_id, key.tool_id, verdict, editor, action, key)

    def label_publish(self, run_id: str, editor: str | None) -> int:
        """Record a publish on each tool of the run: the panel's pooled verdict (the most frequent
        verdict in force of its valid reviews of repeat 0; none on a tie); returns how many.
        These rows are history, not counted as labels by default (see the module docstring);
        the caller writes them in the transaction of its publish, before the files swap in."""
        by_tool: dict[str, Counter[str]] = {}
        for key, verdict in self.verdicts_in_force(run_id).items():
            if key.repeat == 0:
                by_tool.setdefault(key.tool_id, Counter())[verdict] += 1
        written = 0
        with self.transaction():
            for tool_id, counts in by_tool.items():
                top = counts.most_common(2)
                if len(top) > 1 and top[0][1] == top[1][1]:
                    continue  # a tie: the page publishes no single verdict to stand behind
                self._write_label(run_id, tool_id, top[0][0], editor, "publish", None)
                written += 1
        return written

    # --- reading ----------------------------------------------------------------------------

    def editor_labels(self, run_id: str | None = None, tools: Iterable[str] | None = None) -> list[LabelRow]:
        """Every stored label (of one run, or of all; of some tools, or of all), oldest first."""
        if not self.has_table("editor_labels"):
            return []
        rows = self.db.execute(
            "SELECT * FROM editor_labels WHERE ? IS NULL OR run_id = ? ORDER BY id", (run_id, run_id)
        )
        wanted = None if tools is None else set(tools)
        return [_row(r) for r in rows if wanted is None or r["tool_id"] in wanted]

    def labels_stamp(self) -> tuple[int, int]:
        """How many labels the store holds and the newest one's id: a new label moves it."""
        if not self.has_table("editor_labels"):
            return (0, 0)
        count, newest = self.db.execute("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM editor_labels").fetchone()
        return (int(count), int(newest))

    def labels_in_force(
        self,
        run_id: str,
        *,
        same_entry: bool = True,
        made_on: Collection[str] | None = None,
        count_publishes: bool = False,
    ) -> list[ToolLabel]:
        """The editors' labels on a run's tools, one per editor per tool (the rule below).

        Labels come from the run itself and, with `same_entry`, from every other run whose
        entry of the tool is the same (`run_tools.fingerprint`): the same facts, the same truth.
        Each review an editor labelled (approve, edit) counts with its latest label, a withdraw
        taking the review's approval back; the editor's label of the tool is the verdict those
        reviews agree on; when they disagree (an editor who approved a "ship" and a "skip" of
        one tool stood behind both), the editor gives the tool no label. Publishes count only
        with `count_publishes`, and then only for an editor with no such review label on the
        tool (the latest publish). Unnamed editors are one rater, "(unnamed)". `made_on` keeps
        only the labels made on those runs (before the rule is applied).
        """
        if not self.has_table("editor_labels"):
            return []
        # Only the labels of the run's tools, through the index on editor_labels(tool_id, run_id).
        rows = self.db.execute(
            """SELECT l.* FROM run_tools m
               JOIN editor_labels l ON l.tool_id = m.tool_id
               LEFT JOIN run_tools t ON t.run_id = l.run_id AND t.tool_id = l.tool_id
               WHERE m.run_id = ? AND (l.run_id = m.run_id OR (? AND t.fingerprint = m.fingerprint))
               ORDER BY l.id""",
            (run_id, int(same_entry)),
        )
        by: dict[tuple[str, str], list[LabelRow]] = {}
        for r in rows:
            if made_on is not None and r["run_id"] not in made_on:
                continue
            label = _row(r)
            by.setdefault((label.editor or UNNAMED, label.tool_id), []).append(label)
        order = {
            str(r[0]): int(r[1])
            for r in self.db.execute("SELECT tool_id, position FROM run_tools WHERE run_id = ?", (run_id,))
        }
        found = []
        for (editor, tool), labels in by.items():
            if (label_in_force := _in_force(editor, tool, labels, count_publishes)) is not None:
                found.append(label_in_force)
        found.sort(key=lambda f: (order[f.tool_id], f.editor))
        return found


#: the rater name of labels written without an editor's name
UNNAMED = "(unnamed)"


def _in_force(editor: str, tool: str, labels: Sequence[LabelRow], count_publishes: bool) -> ToolLabel | None:
    per_cell: dict[tuple[str, CellKey], list[LabelRow]] = {}
    publishes: list[LabelRow] = []
    bulk: dict[tuple[str, CellKey], LabelRow] = {}
    for lab in labels:
        if lab.key is None:
            publishes.append(lab)
        elif lab.action == "withdraw":  # the review's approval taken back; an earlier edit stays
            cell = (lab.run_id, lab.key)
            per_cell[cell] = [r for r in per_cell.get(cell, []) if r.action != "approve"]
            bulk.pop(cell, None)
        elif lab.action == "approve_all":  # history, as a publish is (see the module docstring)
            bulk[(lab.run_id, lab.key)] = lab
        else:
            per_cell.setdefault((lab.run_id, lab.key), []).append(lab)
    standing = sorted((kept[-1] for kept in per_cell.values() if kept), key=lambda lab: lab.id)
    if not standing:
        if not count_publishes:
            return None
        standing = sorted(bulk.values(), key=lambda lab: lab.id) or publishes[-1:]
        if not standing:
            return None
    verdicts = {lab.verdict for lab in standing}
    if len(verdicts) != 1:
        return None
    (verdict,) = verdicts
    latest = standing[-1]
    ids = tuple(lab.id for lab in standing)
    return ToolLabel(tool, verdict, editor, latest.run_id, latest.action, latest.created_at, len(ids), ids)


def _row(r: Any) -> LabelRow:
    key = None
    if r["persona_id"] is not None:
        key = CellKey(r["tool_id"], r["persona_id"], r["member"], int(r["repeat"] or 0))
    return LabelRow(
        id=int(r["id"]),
        run_id=str(r["run_id"]),
        tool_id=str(r["tool_id"]),
        verdict=str(r["verdict"]),
        editor=r["editor"],
        created_at=float(r["created_at"]),
        action=str(r["action"]),
        key=key,
        panel=json.loads(r["panel"] or "{}"),
    )
