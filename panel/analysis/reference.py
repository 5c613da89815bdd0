"""The reference a panel is measured against: human labels from a CSV file, or community votes.

A **labels file** is comma-separated UTF-8 text with a header line naming its columns:
``tool`` and ``verdict`` (required), ``rater`` and ``source`` (optional), in any order.
Column names are matched without regard to case or surrounding spaces; any other column
is refused. Each further line is one label; blank lines are skipped. One tool may have
several labels (from several raters); its reference is the verdict most of its labels
give, and a tool whose labels tie has no reference.

A cell that starts with a single quote followed by one of ``= + - @``, a tab or a carriage
return is read without the quote (``panel labels export`` writes it so, lest a spreadsheet
run the cell as a formula). Values are matched exactly after surrounding spaces are
stripped: a tool must be one of the run's tool ids, and a verdict one of the personas'
categories (``Ship`` is not ``ship``; the message says so).

A **duplicate** is refused, naming both lines: a second label of one tool by the same
rater; or, for a label that names no rater (no ``rater`` column, or the field left
blank), a line that repeats an earlier unnamed label's tool, verdict and source exactly,
which is a line pasted twice far more often than two people. To give a tool several
unnamed labels with the same verdict, name their raters or their sources.

Every problem is one :class:`~panel.errors.UserError` line ``FILE:LINE: what`` (the header
is line 1), with text from the file shown escaped. A folder, FIFO or device is refused
before it is read, and a file over :data:`MAX_BYTES` before it is read whole.
"""

from __future__ import annotations

import csv
import difflib
import io
import os
import stat
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import UserError, shown
from ..loaders import read_text
from ..text import spreadsheet_text
from .bootstrap import Estimate, FloatArray, bootstrap

__all__ = ["COLUMNS", "MAX_BYTES", "Reference", "community_reference", "labels_reference", "load_labels"]

IntArray = npt.NDArray[np.int64]
NONE = -1
#: The columns a labels file may have; the first two are required.
COLUMNS = ("tool", "verdict", "rater", "source")
REQUIRED = ("tool", "verdict")
#: A labels file larger than this is refused unread (ten thousand tools by ten raters is ~10 MB).
MAX_BYTES = 256 * 1024 * 1024
_WHAT = "labels file"


@dataclass(frozen=True)
class Reference:
    """The reference verdict of each tool of a run, in the run's order of tools.

    ``labels[i]`` is the index in the categories of tool ``i``'s reference, or ``-1`` when
    it has none (no label, a tie, or too few votes). ``counts[i, k]`` is how many labels
    (or community votes) put tool ``i`` in category ``k``.
    """

    source: str
    labels: IntArray
    counts: IntArray
    raters: list[str]
    notes: list[str]
    human_agreement: Estimate | None

    @property
    def n_labelled(self) -> int:
        """How many tools have a reference."""
        return int((self.labels != NONE).sum())


def load_labels(
    path: Path,
    tools: Sequence[str],
    categories: Sequence[str],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Reference:
    """Read a labels file (see the module docstring) against a run's tools and categories.

    Tools and verdicts are matched exactly after surrounding spaces are stripped.

    ``human_agreement`` is Krippendorff's alpha (nominal) among the labels of tools with two
    or more, with its bootstrap interval over those tools: the agreement people reach with
    each other, a ceiling for the panel's agreement with them. None when no tool has two.
    Raises UserError naming the file and line for any unreadable input, and when no tool
    is left with a reference.
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except OSError:
        info = None  # read_text says what is wrong with the path
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise UserError(f"{path}: the {_WHAT} is a folder: give the path of a CSV file")
    size = info.st_size if info is not None and stat.S_ISREG(info.st_mode) else 0
    if size > MAX_BYTES:
        raise UserError(f"{path}: the {_WHAT} is {size:,} bytes; a {_WHAT} is at most {MAX_BYTES:,} bytes")
    text = read_text(path, UserError, _WHAT)
    tool_at = {t: i for i, t in enumerate(tools)}
    cat_at = {c: k for k, c in enumerate(categories)}
    counts = np.zeros((len(tools), len(categories)), dtype=np.int64)
    raters: dict[str, None] = {}
    named: dict[tuple[str, str], int] = {}
    unnamed: dict[tuple[str, str, str], int] = {}
    columns: dict[str, int] | None = None
    header: list[str] = []
    for line, fields in _records(path, text):
        if columns is None:
            columns, header = _header(path, line, fields), fields
            continue
        if len(fields) != len(header):
            raise UserError(
                f"{path}:{line}: {len(fields)} field{'s' if len(fields) != 1 else ''}, but the header "
                f"has {len(header)} ({', '.join(shown(h.strip()) for h in header)})"
            )
        value = {name: spreadsheet_text(fields[at]).strip() for name, at in columns.items()}
        tool, verdict = value["tool"], value["verdict"]
        rater, source = value.get("rater", ""), value.get("source", "")
        if tool not in tool_at:
            raise UserError(f"{path}:{line}: {_unknown_tool(tool, tools)}")
        if verdict not in cat_at:
            raise UserError(f"{path}:{line}: {_unknown_verdict(verdict, tool, categories)}")
        if rater:
            first = named.setdefault((tool, rater), line)
            who = f"rater {shown(rater)}"
        else:
            first = unnamed.setdefault((tool, verdict, source), line)
            who = "an unnamed rater (name raters or sources to give several)"
        if first != line:
            raise UserError(
                f"{path}:{line}: duplicate label: tool {shown(tool)} by {who} already at line {first}"
            )
        if rater:
            raters.setdefault(rater)
        counts[tool_at[tool], cat_at[verdict]] += 1
    if columns is None:
        raise UserError(
            f"{path}:1: the {_WHAT} is empty: give a header line 'tool,verdict' and a line per label"
        )
    if not counts.any():
        raise UserError(f"{path}:2: the {_WHAT} has a header but no labels")
    labels, tied = _majority(counts)
    notes = _notes(labels, counts, tied, "labels")
    _require_some(path, labels, notes)
    return Reference(
        source=str(path),
        labels=labels,
        counts=counts,
        raters=list(raters),
        notes=notes,
        human_agreement=_human_agreement(counts, n_resamples, seed),
    )


def labels_reference(
    source: str,
    labels: Iterable[tuple[str, str, str]],
    tools: Sequence[str],
    categories: Sequence[str],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Reference:
    """A reference from labels already read and checked: (tool, verdict, rater) triples, at
    most one per rater and tool, read as a labels file with a ``rater`` column is (a tool's
    majority; a tie gives none; the raters' agreement among themselves). Labels of tools
    not in ``tools`` or with a verdict not in ``categories`` are left out, and the notes say
    how many. The caller refuses a reference with no labelled tool."""
    tool_at = {t: i for i, t in enumerate(tools)}
    cat_at = {c: k for k, c in enumerate(categories)}
    counts = np.zeros((len(tools), len(categories)), dtype=np.int64)
    raters: dict[str, None] = {}
    outside = 0
    for tool, verdict, rater in labels:
        if tool not in tool_at or verdict not in cat_at:
            outside += 1
            continue
        counts[tool_at[tool], cat_at[verdict]] += 1
        raters.setdefault(rater)
    found, tied = _majority(counts)
    notes = _notes(found, counts, tied, "labels")
    if outside:
        notes.append(
            f"{outside} label{_s(outside)} {'is' if outside == 1 else 'are'} left out: a tool or a "
            "verdict the run does not have"
        )
    return Reference(source, found, counts, list(raters), notes, _human_agreement(counts, n_resamples, seed))


def community_reference(
    tool_data: Sequence[Mapping[str, Any]],
    tools: Sequence[str],
    categories: Sequence[str],
    min_votes: int,
) -> Reference:
    """The catalog's community votes as a reference: a tool's majority of ship and skip votes
    when it has at least ``min_votes`` of them (a tie gives no reference).

    ``tool_data`` are the run's stored tools (``Store.run_tools``): each a mapping with
    ``id`` and, optionally, ``community: {ship, skip}``.
    """
    if "ship" not in categories or "skip" not in categories:
        raise UserError(
            "--reference community: community votes only speak ship/skip, and the personas' "
            f"verdicts are {', '.join(shown(c) for c in categories)}; give a labels file instead"
        )
    if min_votes < 1:
        raise UserError(f"--min-votes must be at least 1, got {min_votes}")
    ship, skip = list(categories).index("ship"), list(categories).index("skip")
    votes = {str(t.get("id")): t.get("community") for t in tool_data}
    counts = np.zeros((len(tools), len(categories)), dtype=np.int64)
    for i, tool in enumerate(tools):
        community = votes.get(tool)
        if isinstance(community, Mapping):
            counts[i, ship] = _votes(community.get("ship"))
            counts[i, skip] = _votes(community.get("skip"))
    enough = counts.sum(axis=1) >= min_votes
    labels, tied = _majority(np.where(enough[:, None], counts, 0))
    notes = _notes(labels, counts, tied & enough, "votes")
    few = int((~enough & counts.any(axis=1)).sum())
    if few:
        notes.append(
            f"{few} tool{_s(few)} of the run {_have(few)} fewer than {min_votes} community votes "
            "and no reference"
        )
    source = f"community (>= {min_votes} votes)"
    if not (labels != NONE).any():
        most = int(counts.sum(axis=1).max(initial=0))
        raise UserError(
            f"--reference community: no tool of the run has a majority of at least {min_votes} "
            f"community votes (the most any tool has is {most}); lower --min-votes"
        )
    return Reference(source, labels, counts, [], notes, None)


# --- reading ------------------------------------------------------------------------------


def _records(path: Path, text: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, fields) of each non-blank record; a quoted field may span lines."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    end = 0
    while True:
        start = end + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise UserError(f"{path}:{reader.line_num or start}: not valid CSV: {exc}") from None
        end = reader.line_num
        if any(f.strip() for f in fields):
            yield start, fields


def _header(path: Path, line: int, fields: list[str]) -> dict[str, int]:
    names = [f.strip().lower() for f in fields]
    if not set(names) & set(COLUMNS):
        raise UserError(
            f"{path}:{line}: no header line: the first line must name the columns "
            f"tool, verdict (and optionally rater, source); got {', '.join(shown(f) for f in fields[:4])}"
            + (", …" if len(fields) > 4 else "")
        )
    unknown = [f for f, n in zip(fields, names, strict=True) if n not in COLUMNS]
    if unknown:
        raise UserError(
            f"{path}:{line}: unknown column{_s(len(unknown))} "
            f"{', '.join(shown(u.strip()) for u in unknown[:4])}{', …' if len(unknown) > 4 else ''} "
            "(the columns are tool, verdict, and optionally rater, source)"
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserError(f"{path}:{line}: column {shown(repeated[0])} appears twice in the header")
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise UserError(
            f"{path}:{line}: the header has no {' or '.join(repr(m) for m in missing)} column "
            "(tool and verdict are required)"
        )
    return {name: at for at, name in enumerate(names)}


def _unknown_tool(tool: str, tools: Sequence[str]) -> str:
    if not tool:
        return "the tool is empty"
    close = difflib.get_close_matches(tool, list(tools), n=3, cutoff=0.6)
    lower = {t.lower(): t for t in tools}
    if tool.lower() in lower and lower[tool.lower()] not in close:
        close.insert(0, lower[tool.lower()])
    hint = f"; did you mean {', '.join(repr(c) for c in close[:3])}?" if close else ""
    return f"tool {shown(tool)} is not a tool of the run ({len(tools)} tools){hint}"


def _unknown_verdict(verdict: str, tool: str, categories: Sequence[str]) -> str:
    allowed = ", ".join(repr(c) for c in categories)
    same = [c for c in categories if c.lower() == verdict.lower()]
    hint = f" (verdicts are matched exactly: did you mean {same[0]!r}?)" if same else ""
    if not verdict:
        return f"the verdict of tool {shown(tool)} is empty; use one of {allowed}"
    return f"verdict {shown(verdict)} of tool {shown(tool)} is not one of {allowed}{hint}"


def _votes(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


# --- the reference ------------------------------------------------------------------------


def _majority(counts: IntArray) -> tuple[IntArray, npt.NDArray[np.bool_]]:
    """Each row's most frequent category, -1 where the row is empty or its top count ties."""
    top = counts.max(axis=1, initial=0)
    tied = (counts == top[:, None]).sum(axis=1) > 1
    labels = counts.argmax(axis=1).astype(np.int64) if counts.shape[1] else np.zeros(len(counts), np.int64)
    labels[(top == 0) | tied] = NONE
    return labels, tied & (top > 0)


def _notes(labels: IntArray, counts: IntArray, tied: npt.NDArray[np.bool_], what: str) -> list[str]:
    notes = []
    n_tied = int(tied.sum())
    if n_tied:
        notes.append(f"{n_tied} tool{_s(n_tied)} {_have(n_tied)} tied {what} and no reference")
    none = int((counts.sum(axis=1) == 0).sum())
    if none:
        kind = "no label" if what == "labels" else "no community votes"
        notes.append(f"{none} tool{_s(none)} of the run {_have(none)} {kind}")
    return notes


def _require_some(path: Path, labels: IntArray, notes: list[str]) -> None:
    if not (labels != NONE).any():
        raise UserError(f"{path}: no tool has a reference ({'; '.join(notes)})")


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _have(n: int) -> str:
    return "has" if n == 1 else "have"


def _human_agreement(counts: IntArray, n_resamples: int, seed: int) -> Estimate | None:
    """Krippendorff's alpha (nominal) among the labels of the tools with two or more, bootstrapped."""
    units = counts[counts.sum(axis=1) >= 2].astype(np.float64)
    if len(units) == 0:
        return None
    m = units.sum(axis=1)
    pairs = (units * (units - 1)).sum(axis=1) / (m - 1)  # each unit's agreeing pairs, weighted 1/(m-1)

    def alpha(weights: FloatArray) -> FloatArray:
        # Krippendorff (2011): 1 - (n - 1)(n - sum_c o_cc) / (n^2 - sum_c n_c^2), items weighted.
        n_c = weights @ units
        n = n_c.sum(axis=1)
        observed = weights @ pairs
        denom = n * n - (n_c * n_c).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = 1.0 - (n - 1.0) * (n - observed) / denom
        return np.where(denom > 0, value, np.nan)

    point = float(alpha(np.ones((1, len(units))))[0])
    return bootstrap({"alpha": (point, alpha)}, len(units), n_resamples, seed)["alpha"]
