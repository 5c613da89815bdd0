"""How far to trust a tool's verdict, as the comparison record holds it (record 1.7): each
tool card's :class:`Confidence` and the :class:`Contested` reasons in it. Computed by
:mod:`panel.report.confidence`; re-exported by :mod:`panel.report.record`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .record_base import RecordModel

__all__ = ["WIDE_INTERVAL", "Confidence", "ConfidenceMethod", "Contested", "ContestedCode"]

ContestedCode = Literal["split", "margin", "rebuttal_flip", "flipped_since", "weak_judge", "failed"]
ConfidenceMethod = Literal["dawid-skene", "editors", "vote-share", "none"]


class Contested(RecordModel):
    """One reason a tool's verdict is in doubt."""

    code: ContestedCode
    text: str = Field(description="One sentence a reader understands, e.g. '2 ship, 2 skip'.")


#: a probability's interval wider than this is printed first and the estimate called uncertain
WIDE_INTERVAL = 0.5


class Confidence(RecordModel):
    """How far to trust a tool's verdict: the panel's probability of ship and why it is doubted."""

    ship: float | None = Field(
        ge=0, le=1, description="Probability that the tool is a ship; null when it cannot be estimated."
    )
    low: float | None = Field(ge=0, le=1, description="Lower end of the interval at `level`.")
    high: float | None = Field(ge=0, le=1, description="Upper end of the interval at `level`.")
    level: float = Field(default=0.95, gt=0, lt=1)
    method: ConfidenceMethod
    basis: str = Field(description="What the figure rests on, and why this method, in one sentence.")
    reviews: int = Field(ge=0, description="Valid reviews of the tool.")
    tools: int = Field(ge=0, description="Tools of the run the method was fitted on.")
    labels: int = Field(
        ge=0, description="Editor or reference labels the reliabilities rest on; 0 when none."
    )
    contested: bool
    reasons: list[Contested]
    doubt: float = Field(ge=0, le=1, description="0 = certain ... 1 = coin toss: the triage order.")

    @property
    def summary(self) -> str:
        """The estimate in words, as the page, the app and `panel show` print it."""
        if self.ship is None or self.low is None or self.high is None:
            return f"Confidence {self.basis}"
        if self.method == "vote-share":  # a share of votes, not a probability
            wilson = f"Wilson {self.low:.2f}–{self.high:.2f}"
            return f"Ship share {self.ship:.2f} of {self.reviews} reviews ({wilson})"
        how = {
            "dawid-skene": f"Dawid–Skene on {self.tools} tools",
            "editors": f"judges' reliability from {self.labels} editor labels",
        }.get(self.method, self.method)
        if self.high - self.low > WIDE_INTERVAL:  # the point says little: the interval first
            return (
                f"Panel's ship probability uncertain: {self.low:.2f}–{self.high:.2f} "
                f"(point {self.ship:.2f}), {how}"
            )
        return f"Panel's ship probability {self.ship:.2f} ({self.low:.2f}–{self.high:.2f}), {how}"
