"""The run store: one SQLite file under runs/, its schema made by ordered migrations.

Every request is written before it is sent and its reply is written in the same
transaction that marks it done, so a crash leaves nothing half-recorded. Keys never come
here: requests hold messages and sampling settings, never headers or client options.

`Store` is one class made of four parts, one module each: the connection (locking,
migrations, transactions), runs, requests and replies, reviews.
"""

from __future__ import annotations

from .lock import StoreBusyError
from .migrations import MIGRATIONS
from .requests import Requests
from .reviews import Reviews
from .rows import RUN_STATUSES, UNFINISHED, CellKey, ReviewRow, RunRow, new_run_id
from .runs import Runs

__all__ = [
    "MIGRATIONS",
    "RUN_STATUSES",
    "UNFINISHED",
    "CellKey",
    "ReviewRow",
    "RunRow",
    "Store",
    "StoreBusyError",
    "new_run_id",
]


class Store(Runs, Requests, Reviews):
    """The runs folder: `panel.db` plus one folder of files per run.

    A writer holds the folder's write lock (see `lock.py`) for as long as the store is
    open, so two processes never run against one store at once. `readonly=True` takes no
    lock and creates nothing: it needs an existing store.
    """
