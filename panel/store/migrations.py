"""The run store's schema, as an ordered list of named migrations recorded in a table."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

__all__ = ["MIGRATIONS"]


def _statements(db: sqlite3.Connection, script: str) -> None:
    """Run a script statement by statement: `executescript` would commit the open transaction."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


def _m001_initial(db: sqlite3.Connection) -> None:
    _statements(
        db,
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            finished_at REAL,
            command TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'running',
            catalog TEXT,
            config TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE run_tools (
            run_id TEXT NOT NULL REFERENCES runs(id),
            position INTEGER NOT NULL,
            tool_id TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (run_id, tool_id)
        );
        CREATE TABLE run_personas (
            run_id TEXT NOT NULL REFERENCES runs(id),
            position INTEGER NOT NULL,
            persona_id TEXT NOT NULL,
            version TEXT NOT NULL,
            data TEXT NOT NULL,
            PRIMARY KEY (run_id, persona_id)
        );
        CREATE TABLE requests (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            tool_id TEXT NOT NULL,
            persona_id TEXT NOT NULL,
            member TEXT NOT NULL,
            backend TEXT NOT NULL,
            model TEXT NOT NULL,
            repeat INTEGER NOT NULL DEFAULT 0,
            ask INTEGER NOT NULL,
            messages TEXT NOT NULL,
            schema_name TEXT NOT NULL,
            settings TEXT NOT NULL,
            cache_key TEXT,
            status TEXT NOT NULL DEFAULT 'pending',
            created_at REAL NOT NULL
        );
        CREATE INDEX requests_cell ON requests(run_id, tool_id, persona_id, member, repeat, ask);
        CREATE INDEX requests_cache ON requests(cache_key);
        CREATE TABLE replies (
            request_id INTEGER PRIMARY KEY REFERENCES requests(id),
            raw_text TEXT,
            finish_reason TEXT,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cached_tokens INTEGER NOT NULL DEFAULT 0,
            latency_s REAL NOT NULL DEFAULT 0,
            attempts INTEGER NOT NULL DEFAULT 1,
            provider_request_id TEXT,
            error TEXT,
            meta TEXT NOT NULL DEFAULT '{}',
            cost_usd REAL NOT NULL DEFAULT 0,
            cached_from INTEGER,
            created_at REAL NOT NULL
        );
        CREATE TABLE reviews (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            tool_id TEXT NOT NULL,
            persona_id TEXT NOT NULL,
            member TEXT NOT NULL,
            backend TEXT NOT NULL,
            model TEXT NOT NULL,
            valid INTEGER NOT NULL,
            verdict TEXT,
            verdict_note TEXT,
            data TEXT,
            error TEXT,
            raw_reply TEXT,
            request_id INTEGER REFERENCES requests(id),
            asks INTEGER NOT NULL DEFAULT 1,
            repeat INTEGER NOT NULL DEFAULT 0,
            fingerprint TEXT,
            copied_from TEXT,
            created_at REAL NOT NULL,
            UNIQUE (run_id, tool_id, persona_id, member, repeat)
        );
        """,
    )


def _m002_reserved_cost(db: sqlite3.Connection) -> None:
    # The worst-case cost reserved for a request before it is sent: what a request whose
    # reply was lost (a crash, a kill, Ctrl-C) is charged (see Store.spent).
    db.execute("ALTER TABLE requests ADD COLUMN reserved_usd REAL NOT NULL DEFAULT 0")
    db.execute("CREATE INDEX requests_status ON requests(run_id, status)")


def _m003_structured_forms(db: sqlite3.Connection) -> None:
    # The structured-output form `structured = "auto"` found for a backend (its name, model
    # and server), so a later process or a resume does not ask the server again; and how each
    # review's structure was held: grammar, provider schema, tool or validated after.
    db.execute(
        "CREATE TABLE member_forms (form_key TEXT PRIMARY KEY, form TEXT NOT NULL, updated_at REAL NOT NULL)"
    )
    db.execute("ALTER TABLE reviews ADD COLUMN enforced TEXT")


def _m004_batch_ledger(db: sqlite3.Connection) -> None:
    # The batch route's ledger: each provider batch (written in state 'submitting' before it
    # is sent, so a crash between the two is found again) and the requests it carries, by the
    # custom_id its results come back under. A request is in at most one batch.
    _statements(
        db,
        """
        CREATE TABLE batches (
            batch_key TEXT PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            member TEXT NOT NULL,
            backend TEXT NOT NULL,
            provider_batch_id TEXT,
            state TEXT NOT NULL,
            counts TEXT NOT NULL DEFAULT '{}',
            attempt INTEGER NOT NULL DEFAULT 1,
            reserved_usd REAL NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            error TEXT
        );
        CREATE INDEX batches_run_state ON batches(run_id, state);
        CREATE TABLE batch_requests (
            batch_key TEXT NOT NULL REFERENCES batches(batch_key),
            custom_id TEXT NOT NULL,
            request_id INTEGER NOT NULL UNIQUE REFERENCES requests(id),
            run_id TEXT NOT NULL,
            member TEXT NOT NULL,
            PRIMARY KEY (batch_key, custom_id)
        );
        CREATE UNIQUE INDEX batch_requests_custom ON batch_requests(run_id, member, custom_id);
        """,
    )


def _m005_editor(db: sqlite3.Connection) -> None:
    # What an editor does to a run's reviews, kept beside what the models wrote:
    # - review_history: a review set aside (to be regenerated), copied whole with its tokens
    #   and cost, when and why; `last_request` is the newest request of its cell then, so the
    #   review that replaces it counts only its own requests (reviews.requests_after).
    # - review_edits: an editor's value for one field of a review (latest per field wins; a
    #   NULL value goes back to the model's text), never written over the review itself.
    # - review_approvals: an editor's yes or no on a review, latest wins.
    # Edits and approvals of a review set aside get its history id, so they stay with it and
    # never carry over to the review that replaces it.
    _statements(
        db,
        """
        CREATE TABLE review_history (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL REFERENCES runs(id),
            tool_id TEXT NOT NULL,
            persona_id TEXT NOT NULL,
            member TEXT NOT NULL,
            repeat INTEGER NOT NULL,
            review_id INTEGER NOT NULL,
            backend TEXT NOT NULL,
            model TEXT NOT NULL,
            valid INTEGER NOT NULL,
            verdict TEXT,
            verdict_note TEXT,
            data TEXT,
            error TEXT,
            raw_reply TEXT,
            request_id INTEGER,
            asks INTEGER NOT NULL,
            fingerprint TEXT,
            copied_from TEXT,
            enforced TEXT,
            created_at REAL NOT NULL,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            latency_s REAL NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            last_request INTEGER NOT NULL DEFAULT 0,
            archived_at REAL NOT NULL,
            reason TEXT NOT NULL
        );
        CREATE INDEX review_history_cell ON review_history(run_id, tool_id, persona_id, member, repeat);
        CREATE TABLE review_edits (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL REFERENCES runs(id),
            tool_id TEXT NOT NULL,
            persona_id TEXT NOT NULL,
            member TEXT NOT NULL,
            repeat INTEGER NOT NULL,
            field TEXT NOT NULL,
            value TEXT,
            editor TEXT,
            created_at REAL NOT NULL,
            history_id INTEGER REFERENCES review_history(id)
        );
        CREATE INDEX review_edits_run ON review_edits(run_id, history_id);
        CREATE TABLE review_approvals (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL REFERENCES runs(id),
            tool_id TEXT NOT NULL,
            persona_id TEXT NOT NULL,
            member TEXT NOT NULL,
            repeat INTEGER NOT NULL,
            approved INTEGER NOT NULL,
            editor TEXT,
            created_at REAL NOT NULL,
            history_id INTEGER REFERENCES review_history(id)
        );
        CREATE INDEX review_approvals_run ON review_approvals(run_id, history_id);
        ALTER TABLE reviews ADD COLUMN requests_after INTEGER NOT NULL DEFAULT 0
        """,
    )


def _m006_rebuttals(db: sqlite3.Connection) -> None:
    # The rebuttal round (`--rebuttal`): each request says which round it belongs to, so a
    # round-1 review counts only its own requests; and each cell's round-2 answer, beside
    # its round-1 review (which stays in `reviews`): keep or change, why, the verdicts before
    # and after, how many other reviews it read, and the tokens and cost of its asks.
    _statements(
        db,
        """
        ALTER TABLE requests ADD COLUMN round INTEGER NOT NULL DEFAULT 1;
        CREATE TABLE rebuttals (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            tool_id TEXT NOT NULL,
            persona_id TEXT NOT NULL,
            member TEXT NOT NULL,
            repeat INTEGER NOT NULL DEFAULT 0,
            backend TEXT NOT NULL,
            model TEXT NOT NULL,
            valid INTEGER NOT NULL,
            decision TEXT,
            why TEXT,
            verdict_before TEXT,
            verdict_after TEXT,
            others INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            raw_reply TEXT,
            request_id INTEGER REFERENCES requests(id),
            asks INTEGER NOT NULL DEFAULT 1,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            UNIQUE (run_id, tool_id, persona_id, member, repeat)
        )
        """,
    )


def _m007_editor_names(db: sqlite3.Connection) -> None:
    # Who changed a review: a review set aside records the editor who regenerated it, and an
    # approval row says why it was written when a change took the approval back ('edited',
    # 'regenerated'; NULL for an editor's own yes or no).
    _statements(
        db,
        """
        ALTER TABLE review_history ADD COLUMN editor TEXT;
        ALTER TABLE review_approvals ADD COLUMN reason TEXT
        """,
    )


def _m008_form_caps(db: sqlite3.Connection) -> None:
    # The string cap (maxLength) a member's schemas carry in the form found for its server:
    # llama-cpp-python compiles no longer one, and dies on it (see structured.MAX_LENGTH).
    db.execute("ALTER TABLE member_forms ADD COLUMN max_length INTEGER")


def _m009_editor_labels(db: sqlite3.Connection) -> None:
    # The editors' decisions as labels (`labels.py`): one row per approval, verdict edit or
    # publish, never updated nor deleted (the triggers refuse both). `persona_id`, `member`
    # and `repeat` name the review a label came from (NULL for a publish, which labels the
    # tool); `panel` is the panel then, as JSON: members with backend:model, personas with
    # their versions, the prompts' version.
    _statements(
        db,
        """
        CREATE TABLE editor_labels (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            tool_id TEXT NOT NULL,
            verdict TEXT NOT NULL,
            editor TEXT,
            created_at REAL NOT NULL,
            action TEXT NOT NULL,
            persona_id TEXT,
            member TEXT,
            repeat INTEGER,
            panel TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX editor_labels_tool ON editor_labels(tool_id, run_id)
        """,
    )
    for change in ("UPDATE", "DELETE"):  # one statement each: a trigger's body holds a ';'
        db.execute(
            f"CREATE TRIGGER editor_labels_no_{change.lower()} BEFORE {change} ON editor_labels "
            "BEGIN SELECT RAISE(ABORT, 'editor labels are append-only'); END"
        )


def _m010_head_to_head(db: sqlite3.Connection) -> None:
    # Head-to-head judgements (`panel.run.head_to_head`). Their requests go into `requests`
    # like every other ask, so spend, lost requests, the budget and resume count them: round 3
    # marks one (`round` is the kind of ask: 1 a review, 2 a rebuttal, 3 a head-to-head; no
    # review nor rebuttal reads round 3), `tool_id` is the tool shown first and `rival` the
    # one shown second. Each ask's answer has its row here, both orders of a pair side by side
    # under one judge (persona on member): the tool it picked, or why it failed.
    _statements(
        db,
        """
        ALTER TABLE requests ADD COLUMN rival TEXT;
        CREATE TABLE head_to_head (
            id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            persona_id TEXT NOT NULL,
            member TEXT NOT NULL,
            first_tool TEXT NOT NULL,
            second_tool TEXT NOT NULL,
            backend TEXT NOT NULL,
            model TEXT NOT NULL,
            valid INTEGER NOT NULL,
            picked TEXT,
            reason TEXT,
            error TEXT,
            raw_reply TEXT,
            request_id INTEGER REFERENCES requests(id),
            asks INTEGER NOT NULL DEFAULT 1,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            CHECK (first_tool != second_tool),
            CHECK (picked IS NULL OR picked IN (first_tool, second_tool)),
            CHECK (valid = (picked IS NOT NULL)),
            UNIQUE (run_id, persona_id, member, first_tool, second_tool)
        )
        """,
    )


# Append only: a migration, once released, is never edited or reordered.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [
    _m001_initial,
    _m002_reserved_cost,
    _m003_structured_forms,
    _m004_batch_ledger,
    _m005_editor,
    _m006_rebuttals,
    _m007_editor_names,
    _m008_form_caps,
    _m009_editor_labels,
    _m010_head_to_head,
]
