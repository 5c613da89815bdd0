"""PNG figures of an agreement report: one kappa heatmap per Cohen matrix, and ship rates.

matplotlib is imported only when a figure is drawn, so the package works without the
``analysis`` extra until someone asks for plots.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MissingExtraError
from ..report.files import write_atomic

if TYPE_CHECKING:
    from .agreement import AgreementReport, KappaMatrix

__all__ = ["kappa_heatmap", "ship_rate_chart", "write_plots"]


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise MissingExtraError("--plots", "matplotlib", "analysis") from None
    # Files only: a headless backend, whatever display the machine has.
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "x"


def kappa_heatmap(
    labels: Sequence[str], kappa: Sequence[Sequence[float | None]], title: str, path: Path
) -> Path:
    """An annotated raters x raters heatmap; the colour scale is always [-1, 1]."""
    plt = _pyplot()
    import numpy as np

    values = np.array([[np.nan if v is None else v for v in row] for row in kappa], dtype=float)
    n = len(labels)
    side = 2.8 + 0.9 * n
    fig, ax = plt.subplots(figsize=(side + 1.6, side))
    try:
        # A fixed scale keeps heatmaps of different runs comparable at a glance.
        cmap = plt.get_cmap("RdBu").with_extremes(bad="#d9d9d9")
        image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-1.0, vmax=1.0)
        ax.set_xticks(range(n), labels, rotation=35, ha="right", rotation_mode="anchor")
        ax.set_yticks(range(n), labels)
        for i in range(n):
            for j in range(n):
                v = values[i, j]
                text, dark = ("n/a", False) if np.isnan(v) else (f"{v:.2f}", abs(v) > 0.6)
                ax.text(j, i, text, ha="center", va="center", fontsize=9, color="white" if dark else "black")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="Cohen's kappa")
        ax.set_title(title, fontsize=11)
        fig.tight_layout()
        _save(fig, path)
    finally:
        plt.close(fig)
    return path


def ship_rate_chart(rates: dict[str, float | None], title: str, path: Path, positive: str = "ship") -> Path:
    """Horizontal bars of each rater's share of ``positive`` verdicts (leniency), with the 50% line."""
    plt = _pyplot()
    names = list(rates)
    shares = [100.0 * (rates[n] or 0.0) for n in names]
    fig, ax = plt.subplots(figsize=(8.0, 1.2 + 0.45 * len(names)))
    try:
        bars = ax.barh(range(len(names)), shares, color="#4c72b0")
        ax.set_yticks(range(len(names)), names)
        ax.invert_yaxis()  # first rater on top, as in the tables
        ax.axvline(50.0, color="#c44e52", linestyle="--", linewidth=1.2, label="50%")
        for bar, name in zip(bars, names, strict=True):
            label = "no valid reviews" if rates[name] is None else f"{bar.get_width():.0f}%"
            ax.text(bar.get_width() + 1.0, bar.get_y() + bar.get_height() / 2, label, va="center", fontsize=8)
        ax.set_xlim(0.0, 110.0)
        ax.set_xlabel(f"{positive} verdicts, % of valid reviews")
        ax.set_title(title, fontsize=11)
        ax.legend(loc="lower right", fontsize=8)
        fig.tight_layout()
        _save(fig, path)
    finally:
        plt.close(fig)
    return path


def _save(fig: Any, path: Path) -> None:
    """A figure as PNG, written whole or not at all like every other output file."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    write_atomic(path, buffer.getvalue())


def _matrix_file(m: KappaMatrix) -> str:
    return f"kappa_{m.axis}s_{_slug(m.within) if m.within is not None else 'pooled'}.png"


def write_plots(report: AgreementReport, folder: Path) -> list[Path]:
    """Every heatmap and the ship-rate chart of ``report`` into ``folder``; the files written."""
    _pyplot()  # fail on a missing extra before writing anything
    data = report.to_dict()
    written = []
    for matrix, shown in zip(report.cohen, data["cohen"], strict=True):
        title = f"Cohen's kappa, {matrix.title} ({matrix.n_items} items)"
        written.append(kappa_heatmap(matrix.raters, shown["kappa"], title, folder / _matrix_file(matrix)))
    rates = data["stats"]["ship_rate"]
    positive = report.stats.positive
    title = f"{positive.capitalize()} rate by {report.by} (run {report.basis['run']})"
    written.append(ship_rate_chart(rates, title, folder / "ship_rate.png", positive))
    return written
