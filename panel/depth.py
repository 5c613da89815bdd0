"""How much a panel member is asked to write: `brief` or `full`.

A member's depth shapes its requests three ways, all from the table here: the instructions
(the prompt templates read `depth`), the reply's token limit, and the ceilings on the
free-text fields that a server compiling the schema to a grammar is given (`fit_schema`),
so that a reply reaches its closing brace inside that limit.

- brief: one sentence an answer and a review of two or three sentences — what the embedded
  135M-parameter model can write well;
- full: answers of two or three sentences and a review of about 100 to 160 words, as deep as a
  reviewer's paragraph on a published panel page.

Unset, a member's depth is its backend's `default_depth()`: brief for a small local model
file (under `LARGE_MODEL_BYTES`, which the bundled one is), full for every other backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

__all__ = ["BUDGETS", "DEPTHS", "LARGE_MODEL_BYTES", "Budget", "Depth", "member_depth"]

Depth = Literal["brief", "full"]
DEPTHS: tuple[Depth, ...] = get_args(Depth)

#: A local model file this large or larger writes at full depth by default: 1 GB is about
#: 1.5 billion parameters at 4 bits; the bundled SmolLM2-135M file is under 0.1 GB.
LARGE_MODEL_BYTES = 1_000_000_000


@dataclass(frozen=True)
class Budget:
    """What one depth allows a reply: tokens in all, and characters per free-text field."""

    #: the reply's token limit when the member sets none
    max_tokens: int
    #: ceilings in characters, for servers that compile the schema to a grammar
    answer_chars: int
    review_chars: int
    note_chars: int
    #: the review's share of the room, counted in answers
    review_weight: int

    def ceiling(self, field: str) -> int:
        """The most characters a free-text field of the review may take."""
        return {"review": self.review_chars, "verdict_note": self.note_chars}.get(field, self.answer_chars)

    def weight(self, field: str) -> int:
        return self.review_weight if field == "review" else 1


# At about 3 characters a token (cautious for English), full's ceilings for a five-question
# persona add up to ~4,000 characters: ~1,350 tokens, inside its 1,600 with the JSON around.
BUDGETS: dict[Depth, Budget] = {
    "brief": Budget(max_tokens=700, answer_chars=360, review_chars=720, note_chars=200, review_weight=2),
    "full": Budget(max_tokens=1600, answer_chars=480, review_chars=1300, note_chars=300, review_weight=3),
}


def member_depth(depth: Depth | None, max_tokens: int | None, default: Depth) -> tuple[Depth, int]:
    """A member's depth and reply token limit from its options (`depth`, `max_tokens`);
    `default` is its backend's `default_depth()`."""
    settled: Depth = depth or default
    return settled, max_tokens or BUDGETS[settled].max_tokens
