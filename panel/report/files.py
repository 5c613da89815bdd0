"""Every file panel writes: a run's files (comparison pages, reviews.jsonl, one record per
tool), a rendered page, and the long table of the agreement analysis.

Each is written whole or not at all (`write_atomic`), and a file that cannot be written is
one line naming it.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import MissingExtraError, UserError
from ..store import HeadToHeadRow, ReviewRow, Store
from .aggregate import build_record, recusals_of
from .confidence import cached_confidence
from .head_to_head import answers_from_store, judge_bias, pair_results
from .load import load_record, run_inputs
from .record import ComparisonRecord
from .render import FORMATS, render
from .triage import Triage, triage

__all__ = [
    "check_writable",
    "csv_chunks",
    "os_reason",
    "umask",
    "write_atomic",
    "write_comparison",
    "write_parquet",
    "write_review_outputs",
    "write_run_files",
    "write_triage",
]


def write_run_files(store: Store, run_id: str, status: str, kind: str) -> Path:
    """The files of a finished run, by the command that made it; `status` is the one it is
    about to get, so the files carry it."""
    if kind == "compare":
        return write_comparison(store, load_record(store, run_id, status))
    return write_review_outputs(store, run_id, status)


def write_comparison(store: Store, record: ComparisonRecord) -> Path:
    """`comparison.json`, `comparison.md` and `comparison.html` of a record: the editor's
    draft, so its pages close with how they were made (`panel render` and publishing write
    the reader's page, which leaves that out unless asked)."""
    out = store.run_dir(record.run_id)
    out.mkdir(parents=True, exist_ok=True)
    for fmt in FORMATS:
        write_atomic(out / f"comparison.{fmt}", render(record, fmt, how_made=True))
    return out


def write_triage(store: Store, run_id: str, *, reference: str | None, target: float, level: float) -> Triage:
    """`triage.json` in the run's folder: what `panel triage RUN --reference ... --format json`
    prints (docs/record.md describes its fields); returns the triage for its summary line."""
    found = triage(store, run_id, reference=reference, target=target, level=level)
    folder = store.run_dir(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "triage.json", json.dumps(found.to_dict(), indent=2, ensure_ascii=False) + "\n")
    return found


def write_review_outputs(store: Store, run_id: str, status: str | None = None) -> Path:
    """`reviews.jsonl` (one line per review) and `tools/<id>.json` (one record per tool).

    `status` is the run's, for files written just before the run is marked with it.
    """
    folder = store.run_dir(run_id)
    run, tools, personas = run_inputs(store, run_id)
    members = run.config.get("members", [])

    lines = (
        json.dumps(_review_line(run_id, r), ensure_ascii=False) + "\n" for r in store.iter_reviews(run_id)
    )
    write_atomic(folder / "reviews.jsonl", lines)
    edits = store.edits(run_id)
    confidence = cached_confidence(store, run_id)  # fitted once on the whole run
    names = {t.id: t.name for t in tools}
    # The run's head-to-head answers by tool, and the judges' rates over all of them: read
    # once, not once per tool record.
    duels: dict[str, list[HeadToHeadRow]] = {}
    rows = store.head_to_heads(run_id)
    for row in rows:
        for tool_id in (row.first_tool, row.second_tool):
            duels.setdefault(tool_id, []).append(row)
    judged = judge_bias(pair_results(answers_from_store(rows)))
    for tool in tools:
        record = build_record(
            run_id,
            run.created_at,
            [tool],
            personas,
            members,
            store.reviews(run_id, tool.id),
            status=status or run.status,
            repeats=int(run.config.get("repeats", 1)),
            edits=edits,
            rebuttals=store.rebuttals(run_id, tool.id),
            confidence=confidence,
            recusals=recusals_of(run.config),
            head_to_heads=duels.get(tool.id, []),
            names=names,
            judged=judged,
        )
        write_atomic(folder / "tools" / f"{tool.id}.json", record.model_dump_json(indent=2) + "\n")
    return folder


def _review_line(run_id: str, r: ReviewRow) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "tool_id": r.tool_id,
        "persona_id": r.persona_id,
        "member": r.member,
        "backend": r.backend,
        "model": r.model,
        "repeat": r.repeat,
        "valid": r.valid,
        "verdict": r.verdict,
        "verdict_note": r.verdict_note,
        "answers": (r.data or {}).get("answers"),
        "review": (r.data or {}).get("review"),
        "error": r.error,
        "asks": r.asks,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "cost_usd": round(r.cost_usd, 8),
        "latency_s": round(r.latency_s, 4),
        "fingerprint": r.fingerprint,
        "copied_from": r.copied_from,
    }


def check_writable(path: Path, folder: bool = False) -> None:
    """Refuse, before any long work, a file (or folder) that :func:`write_atomic` could not write.

    Creates nothing: a missing parent is fine when the nearest existing one is a folder this
    process may write in.
    """
    if not folder and path.is_dir():
        raise UserError(f"cannot write {path}: it is a folder; give a file name")
    if folder and path.exists() and not path.is_dir():
        raise UserError(f"cannot write into {path}: it is a file, not a folder")
    start = path if folder and path.is_dir() else path.parent
    existing = next((p for p in (start, *start.parents) if p.exists()), None)
    if existing is None:
        return
    if not existing.is_dir():
        raise UserError(f"cannot write {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"cannot write {path}: permission denied in {existing}")


def write_atomic(path: Path, text: str | bytes | Iterable[str]) -> None:
    """Write a file so that readers see the old file or the new one, never half of one.

    `text` is text, bytes (a picture), or an iterable of text chunks written as they come,
    so a large file is never held in memory whole. A file that cannot be written (a full
    disk, a folder in the way, no permission) is a one-line error naming it.
    """
    if path.is_dir():
        raise UserError(f"cannot write {path}: it is a folder; give a file name")
    existing = next((p for p in path.parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UserError(f"cannot write {path}: {existing} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {os_reason(exc)}") from None
    # mkstemp makes the file private; an output file gets the usual permissions.
    os.chmod(tmp, 0o666 & ~umask())
    try:
        if isinstance(text, bytes):
            with os.fdopen(fd, "wb") as raw:
                raw.write(text)
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                if isinstance(text, str):
                    fh.write(text)
                else:
                    fh.writelines(text)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {os_reason(exc)}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def os_reason(exc: OSError) -> str:
    """Why a file could not be written, in a few words."""
    if exc.errno == errno.ENOSPC:
        return "no space left on the device"
    return exc.strerror or str(exc)


def umask() -> int:
    """This process's umask (the permissions a new file does not get)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def csv_chunks(rows: Iterable[dict[str, Any]], columns: Sequence[str] | None = None) -> Iterator[str]:
    """The long table (or rows of `columns`) as CSV text in chunks, so a large run is never held whole."""
    import csv
    import io

    from ..analysis.long import LONG_COLUMNS

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns or LONG_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
        if buffer.tell() > 1 << 16:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def write_parquet(rows: Iterable[dict[str, Any]], path: Path, batch_rows: int = 50_000) -> None:
    """The long table as Parquet, one row group per batch; needs the ``parquet`` extra."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingExtraError(path.name, "pyarrow", "parquet") from None
    from ..analysis.long import LONG_COLUMNS

    count, real = pa.int64(), pa.float64()
    types = {"repeat": count, "valid": pa.bool_(), "cost_usd": real, "latency_s": real,
             "input_tokens": count, "output_tokens": count}  # fmt: skip
    schema = pa.schema([(name, types.get(name, pa.string())) for name in LONG_COLUMNS])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            batch: list[dict[str, Any]] = []
            for row in rows:
                batch.append(row)
                if len(batch) >= batch_rows:
                    writer.write_table(pa.Table.from_pylist(batch, schema))
                    batch = []
            writer.write_table(pa.Table.from_pylist(batch, schema))
        os.replace(tmp, path)  # readers see a whole file or none
    finally:
        tmp.unlink(missing_ok=True)
