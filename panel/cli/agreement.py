"""`panel agreement`: how far the panel's raters agree, and how far each agrees with itself.

The analysis lives in :mod:`panel.analysis.agreement` (it needs numpy, so it is imported only
when the command runs); this module parses, prints and writes files.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.table import Table

from ..errors import MissingExtraError, UserError
from ..report.files import check_writable, csv_chunks, write_atomic, write_parquet
from ..run.runref import resolve_run
from ..store import Store
from ..text import for_console
from .apps import err_console, out_console
from .biases_table import print_biases
from .options import RunsDir
from .progress_phases import PhaseBar
from .research_tables import ci as _ci
from .research_tables import num as _num
from .research_tables import print_research
from .rounds_table import print_rounds

if TYPE_CHECKING:
    from ..analysis.agreement import AgreementReport

__all__ = ["agreement", "csv_chunks", "write_parquet"]

ByChoice = Literal["rater", "persona", "backend"]


@dataclass(frozen=True)
class Research:
    """The options of the researcher's sections and the report page."""

    reference: str | None
    min_votes: int
    threshold: float
    report: Path | None


Format = Literal["table", "json", "csv"]


def agreement(
    run_ids: Annotated[
        list[str],
        typer.Argument(
            metavar="RUN_ID...",
            help="Runs to read (an id, a unique start of one, or 'last': the newest finished run); "
            "inter-rater statistics use the first.",
        ),
    ],
    by: Annotated[
        ByChoice,
        typer.Option(
            help="Raters: rater = (persona, member) pairs over tools; persona = personas over "
            "(tool, member); backend = members over (tool, persona)."
        ),
    ] = "rater",
    fmt: Annotated[
        Format,
        typer.Option("--format", help="table (for people), json (the report) or csv (the long table)."),
    ] = "table",
    plots: Annotated[
        Path | None, typer.Option(help="Write PNG kappa heatmaps and a ship-rate chart into this folder.")
    ] = None,
    export: Annotated[
        Path | None,
        typer.Option(help="Write long.csv and long.parquet (Parquet needs pyarrow) into this folder."),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(
            metavar="LABELS.csv|community|editors",
            help="Measure every judge and the pooled panel against a reference: a CSV of labels "
            "(columns tool, verdict, optional rater, source), 'community' (the catalog's votes) or "
            "'editors' (the editors' approvals and verdict edits in `panel view`; publishes do not count).",
        ),
    ] = None,
    min_votes: Annotated[
        int,
        typer.Option(min=1, help="With --reference community: votes a tool needs for its majority to count."),
    ] = 5,
    threshold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Ship share at which the pooled panel says ship.")
    ] = 0.5,
    report: Annotated[
        Path | None, typer.Option(help="Write every table and plot as one self-contained HTML page.")
    ] = None,
    resamples: Annotated[int, typer.Option(min=1, help="Bootstrap resamples of the 95% intervals.")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    out: RunsDir = Path("runs"),
) -> None:
    """Agreement of the panel's raters (kappa, alpha, 95% CIs), with a reference, pooled verdicts,
    reliability without labels, where disagreement comes from; plots, a report page, the long table."""
    options = Research(reference, min_votes, threshold, report)
    try:
        _agreement(run_ids, by, fmt, plots, export, resamples, seed, out, options)
    except MissingExtraError as exc:
        # Printed here, escaped: the generic handler would read "[analysis]" as rich markup.
        _error(exc)
        raise typer.Exit(exc.exit_code) from None


def _error(exc: Exception) -> None:
    err_console.print(f"[bold red]error:[/] {for_console(exc)}", highlight=False, soft_wrap=True)


def _agreement(
    run_ids: list[str],
    by: ByChoice,
    fmt: Format,
    plots: Path | None,
    export: Path | None,
    resamples: int,
    seed: int,
    out: Path,
    options: Research,
) -> None:
    bar = PhaseBar(err_console)  # its clock starts with the command
    try:
        from ..analysis import agreement as analysis
    except ImportError as exc:
        if exc.name != "numpy":
            raise
        raise MissingExtraError("panel agreement", "numpy", "analysis") from None
    for flag, path in (("--plots", plots), ("--report", options.report)):
        if path is not None and importlib.util.find_spec("matplotlib") is None:
            raise MissingExtraError(flag, "matplotlib", "analysis")
    if fmt == "csv" and options.reference is not None and options.report is None and plots is None:
        # The long table holds no figure against a reference: say so rather than ignore the file.
        raise UserError(
            "--reference: --format csv prints only the long table, which holds no figure against "
            "a reference; use --format table or json, or add --report FILE"
        )
    # Where files go is checked before the work: a bad path is refused now, not minutes later.
    for path, is_folder in ((options.report, False), (plots, True), (export, True)):
        if path is not None:
            check_writable(path, folder=is_folder)
    if not (out / "panel.db").is_file():
        raise UserError(f"no run '{run_ids[0]}': there is no panel.db in {out}")
    # Only the table is for people on stdout; json and csv keep stdout for data.
    info = out_console if fmt == "table" else err_console
    written: list[Path] = []
    with Store(out, readonly=True) as store:
        run_ids = [resolve_run(store, run_id) for run_id in run_ids]
        analysis.check_runs(store, run_ids)
        report = None
        data: dict[str, Any] = {}
        if fmt != "csv" or plots is not None or options.report is not None:
            with bar:
                report = analysis.analyze(
                    store, run_ids, by, resamples, seed, progress=bar, reference=options.reference,
                    min_votes=options.min_votes, threshold=options.threshold,
                )  # fmt: skip
            from ..analysis.biases import report_biases

            data = report.to_dict()
            data["biases"] = report_biases(store, run_ids, data, n_resamples=resamples, seed=seed)
            for note in data["biases"]["self_preference"].get("notes", []):
                err_console.print(f"note: {for_console(note)}", highlight=False)
        if fmt == "csv":
            sys.stdout.writelines(_long_csv(store, run_ids))
        if export is not None:
            written += _export(store, run_ids, export)
    if plots is not None and report is not None:
        from ..analysis.plots import write_plots

        written += write_plots(report, plots)
    if options.report is not None and report is not None:
        from ..analysis.html import write_report

        written.append(write_report(data, options.report))
    if fmt == "json" and report is not None:
        sys.stdout.write(json.dumps(data, indent=2, allow_nan=False) + "\n")
    elif report is not None and fmt == "table":
        _print_report(report)
        if report.research is not None:
            print_research(data["research"])
        if report.rounds is not None:
            print_rounds(data["rounds"])
        print_biases(data["biases"])
    for path in written:
        info.print(f"wrote {for_console(str(path))}", highlight=False)


def _long_csv(store: Store, run_ids: Sequence[str]) -> Iterator[str]:
    """The long table; with a `round` column, each review once per round, when a run had a
    rebuttal round."""
    from ..analysis.long import iter_long
    from ..analysis.rounds import ROUNDS_COLUMNS, has_rebuttals, iter_rounds_long

    if any(has_rebuttals(store, run_id) for run_id in run_ids):
        return csv_chunks(iter_rounds_long(store, run_ids), ROUNDS_COLUMNS)
    return csv_chunks(iter_long(store, run_ids))


def _export(store: Store, run_ids: Sequence[str], folder: Path) -> list[Path]:
    from ..analysis.long import iter_long

    write_atomic(folder / "long.csv", csv_chunks(iter_long(store, run_ids)))
    written = [folder / "long.csv"]
    try:
        write_parquet(iter_long(store, run_ids), folder / "long.parquet")
    except MissingExtraError as exc:
        # The CSV is already there and holds the same table: say what is missing, go on.
        _error(exc)
    else:
        written.append(folder / "long.parquet")
    return written


def _print_report(report: AgreementReport) -> None:
    data = report.to_dict()
    stats = data["stats"]
    out_console.print(
        f"[bold]Agreement by {report.by}[/]: run {for_console(report.basis['run'])}, repeat 0 · "
        f"{stats['n_items']} items x {len(stats['raters'])} raters · {report.missing} missing ratings "
        f"· categories {', '.join(stats['categories']) or '—'}",
        highlight=False,
    )
    headline = Table("statistic", "estimate", "95% CI", "resamples used", title="Inter-rater agreement")
    names = {
        "percent_agreement": "percent agreement",
        "fleiss_kappa": "Fleiss' kappa",
        "krippendorff_alpha": "Krippendorff's alpha (nominal)",
        "effective_votes": f"effective independent votes (of {len(stats['raters'])})",
    }
    for key, name in names.items():
        e = stats[key]
        used = f"{e['resamples_used']} of {report.stats.n_resamples}"
        headline.add_row(name, _num(e["point"]), _ci(e).partition(" ")[2] or "—", used)
    out_console.print(headline)

    rates = Table("rater", f"{stats['positive']} rate", title="Leniency")
    for rater, rate in stats["ship_rate"].items():
        rates.add_row(for_console(rater), _num(rate, percent=True))
    out_console.print(rates)

    for matrix, shown in zip(report.cohen, data["cohen"], strict=True):
        table = Table(
            "", *map(for_console, matrix.raters), title=f"Cohen's kappa, {for_console(matrix.title)}"
        )
        table.caption = f"{matrix.n_items} items"
        for rater, row in zip(matrix.raters, shown["kappa"], strict=True):
            table.add_row(for_console(rater), *(_num(v) for v in row))
        out_console.print(table)

    consistency = Table(
        "rater", "within run κ", "within run agr.", "across runs κ", "across runs agr.", "pairs",
        title="Self-consistency (test-retest)",
    )  # fmt: skip
    for s in data["self_consistency"]:
        consistency.add_row(
            for_console(s["rater"]), _num(s["within_run"]), _num(s["within_run_agreement"], percent=True),
            _num(s["across_runs"]), _num(s["across_runs_agreement"], percent=True), str(len(s["pairs"])),
        )  # fmt: skip
    out_console.print(consistency)
    for note in report.notes:
        out_console.print(f"[dim]note: {for_console(note)}[/]", highlight=False)
