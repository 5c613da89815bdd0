"""The run store: one SQLite file under runs/, its schema made by ordered migrations.

Every request is written before it is sent and its reply is written in the same
transaction that marks it done, so a crash leaves nothing half-recorded. Keys never come
here: requests hold messages and sampling settings, never headers or client options.

`Store` is one class made of parts, one module each: the connection (locking,
migrations, transactions), runs, requests and replies, reviews, the batch ledger, an
editor's edits, approvals and review history, the editors' labels, the rebuttal round's
answers, the head-to-head answers, runs in summary for the pages that list them, and what
each run's verdicts were made from.
"""

from __future__ import annotations

from .batches import BATCH_STATES, Batches, custom_id_for, normal_state
from .edits import EDIT_FIELDS, ApprovalRow, EditRow, Edits, HistoryRow
from .head_to_head import HEAD_TO_HEAD_ROUND, HeadToHeadRow, HeadToHeads
from .inputs import CellFacts, Inputs, RunInputs
from .labels import LABEL_ACTIONS, LabelRow, Labels, ToolLabel, judge_identity
from .lock import StoreBusyError
from .migrations import MIGRATIONS
from .rebuttals import RebuttalRow, Rebuttals
from .requests import Requests
from .reviews import Reviews
from .rows import RUN_STATUSES, UNFINISHED, BatchRow, CellKey, MemberForm, ReviewRow, RunRow, new_run_id
from .runs import Runs
from .summaries import RunState, RunTotals, Summaries, ToolName, ToolTally

__all__ = [
    "BATCH_STATES",
    "EDIT_FIELDS",
    "HEAD_TO_HEAD_ROUND",
    "LABEL_ACTIONS",
    "MIGRATIONS",
    "RUN_STATUSES",
    "UNFINISHED",
    "ApprovalRow",
    "BatchRow",
    "CellFacts",
    "CellKey",
    "EditRow",
    "HeadToHeadRow",
    "HistoryRow",
    "LabelRow",
    "MemberForm",
    "RebuttalRow",
    "ReviewRow",
    "RunInputs",
    "RunRow",
    "RunState",
    "RunTotals",
    "Store",
    "StoreBusyError",
    "ToolLabel",
    "ToolName",
    "ToolTally",
    "custom_id_for",
    "judge_identity",
    "new_run_id",
    "normal_state",
]


class Store(Runs, Requests, Edits, Labels, Reviews, Batches, Rebuttals, HeadToHeads, Summaries, Inputs):
    """The runs folder: `panel.db` plus one folder of files per run.

    A writer holds the folder's write lock (see `lock.py`) for as long as the store is
    open, so two processes never run against one store at once. `readonly=True` takes no
    lock and creates nothing: it needs an existing store.
    """
