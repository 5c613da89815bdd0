"""An editor's controls on the comparison page: per review its approval, an edit link and a
regenerate form; above the page, how many reviews are approved and what to do next.

`ReviewControls` is the report page's `review_actions` hook: the report template calls it for
each review and it returns Markup from the view's own autoescaped template, so model and
catalog text stays escaped. Approval is of repeat 0, the reading the panel counts and
publishing checks.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode

from markupsafe import Markup

from ..report.record import ComparisonRecord, ScorecardEntry
from ..store import ApprovalRow, CellKey, RunRow, Store
from .templating import env
from .versions import page_version, run_versions

__all__ = ["ReviewControls", "anchor", "edit_url", "page_url"]


def anchor(tool_id: str, persona_id: str, member: str, repeat: int) -> str:
    """A review's id on the page: a hash of its cell, so no catalog text reaches an id."""
    cell = "\x00".join((tool_id, persona_id, member, str(repeat)))
    return "review-" + hashlib.sha256(cell.encode()).hexdigest()[:16]


def run_url(run_id: str) -> str:
    return f"/runs/{quote(run_id, safe='')}"


def page_url(run: RunRow, tool_id: str | None) -> str:
    """Where a run's reviews are shown: its comparison, or for a review run, the tool's page."""
    if tool_id is not None and run.kind == "review":
        return f"{run_url(run.id)}/tools/{quote(tool_id, safe='')}"
    return run_url(run.id)


def edit_url(run_id: str, key: CellKey) -> str:
    query = {"tool": key.tool_id, "persona": key.persona_id, "member": key.member, "repeat": key.repeat}
    return f"{run_url(run_id)}/review/edit?{urlencode(query)}"


@lru_cache(maxsize=1)
def _macros() -> Any:
    return env().get_template("review_actions.html.j2").module


@dataclass(frozen=True)
class EditorBar:
    approved: int
    valid: int
    failed: int
    missing: int


@dataclass(frozen=True)
class ReviewControls:
    """The hook for one page of one run, with the run's approvals read once."""

    run_id: str
    csrf: str
    approvals: dict[CellKey, ApprovalRow]
    #: each review's version, so an approval says which text it approves (`versions.py`)
    versions: dict[CellKey, str]
    #: the path the view's links start with (its base path with a token)
    base: str = ""

    @classmethod
    def read(
        cls, store: Store, run_id: str, csrf: str, base: str = "", tool_id: str | None = None
    ) -> ReviewControls:
        """The run's approvals and its reviews' versions (only one tool's, for a page of one
        tool: a 10,000-tool run's 120,000 reviews are not read for it)."""
        return cls(run_id, csrf, store.approvals(run_id), run_versions(store, run_id, tool_id), base)

    def approved(self, key: CellKey) -> bool:
        approval = self.approvals.get(key)
        return approval is not None and approval.approved

    def anchor(self, tool_id: str, persona_id: str, member: str, repeat: int) -> str:
        return anchor(tool_id, persona_id, member, repeat)

    def __call__(
        self, tool_id: str, persona_id: str, member: str, repeat: int, entry: ScorecardEntry | None
    ) -> Markup:
        key = CellKey(tool_id, persona_id, member, repeat)
        html: Markup = _macros().actions(
            run_path=self.base + run_url(self.run_id),
            key=key,
            entry=entry,
            approval=self.approvals.get(key),
            edit=self.base + edit_url(self.run_id, key),
            csrf=self.csrf,
            version=self.versions.get(key, ""),
        )
        return html

    def bar(self, record: ComparisonRecord, tool_id: str | None) -> Markup:
        """The editor's bar above the page: approvals of the reviews shown, Approve all, Publish."""
        entries = [e for t in record.tools for e in t.scorecard if e.repeat == 0]
        valid = [(t.id, e) for t in record.tools for e in t.scorecard if e.repeat == 0 and e.valid]
        approved = sum(1 for t, e in valid if self.approved(CellKey(t, e.persona_id, e.member)))
        counts = EditorBar(approved, len(valid), len(entries) - len(valid), record.run.missing)
        html: Markup = _macros().bar(
            run_path=self.base + run_url(self.run_id),
            counts=counts,
            tool_id=tool_id,
            csrf=self.csrf,
            version=page_version(self.versions, tool_id),
        )
        return html
