"""What a reply's usage is believed to be, and what it is charged.

The backends keep only counts that are whole numbers from 0 up (`panel.backends.envelope`);
here a count is also checked against the request it answers. No provider reads more prompt
tokens than the prompt has bytes (tokenizers fall back to single bytes), give or take the
framing a chat template and a tool definition add, and none writes more than the reply's
token limit. A count past either could only inflate the bill (or, negative, refund it), so
the usage is recorded as unknown, with the reason, and the request is charged the worst case
reserved for it before it was sent. No reply is charged more than that worst case: whatever a
reply claims, the budget stays a ceiling.
"""

from __future__ import annotations

from ..backends.base import Request, Usage
from .pricing import Price, schema_chars, utf8_length

__all__ = ["FRAMING_TOKENS", "believed", "charge", "input_ceiling"]

#: tokens a provider may add around the messages (chat template, tool definitions, the
#: tool-use system prompt some add)
FRAMING_TOKENS = 4096


def input_ceiling(request: Request) -> int:
    """The most input tokens a provider could count for this request."""
    text = sum(utf8_length(m["content"]) for m in request.messages)
    return text + schema_chars(request.schema) + FRAMING_TOKENS


def believed(usage: Usage, request: Request) -> Usage:
    """The usage, or the same marked unknown when a count cannot answer this request."""
    if usage.unknown is not None:
        return usage
    ceiling = input_ceiling(request)
    if usage.input_tokens > ceiling:
        why = f"{usage.input_tokens:,} input tokens for a prompt of at most {ceiling:,}"
    elif usage.output_tokens > request.sampling.max_tokens:
        why = f"{usage.output_tokens:,} output tokens past the limit of {request.sampling.max_tokens:,}"
    else:
        return usage
    return Usage(unknown=why)


def charge(price: Price | None, usage: Usage, worst: float) -> float:
    """What a reply costs: its tokens at the price, or the reserved worst case when its
    usage is unknown; never more than that worst case.

    A believable count can still pass the reservation, which estimates a prompt's tokens at
    one per 3 bytes where a reply may claim one per byte: charged in full, a run's replies in
    flight could take it past `--max-cost` together. An honest count rarely passes one token
    per 3 bytes (English runs near one per 4 characters); where one does (a script of more
    than one token a character), the tokens are stored as counted and the recorded spend is
    below the bill by the difference.
    """
    if price is None:
        return 0.0
    return worst if usage.unknown is not None else min(price.cost(usage), worst)
