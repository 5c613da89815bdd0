"""JSON from strangers is read within bounds, in one pass, whatever it holds."""

from __future__ import annotations

import pytest

from panel.backends.envelope import decode_body
from panel.errors import FatalError
from panel.personas import load_persona
from panel.resources import data_dir
from panel.run.validate import MAX_REPLY_CHARS, InvalidReply, parse_review

#: a string left open and filled with escaped quotes, after more brackets than are read: what
#: a looping model writes, and what a hostile body can be
OPEN = '"' + '\\"' * 1_000_000


def test_a_body_with_a_string_left_open_is_refused_in_one_pass() -> None:
    """2 MB of escaped quotes in a string that never closes: the depth scan took time in the
    square of the length (50 s for 128 KB, hours for this body); it is refused at once."""
    body = ('{"id": ' + "[" * 70 + OPEN).encode()
    with pytest.raises(FatalError, match="the reply was not read: it nests more than 64 levels deep"):
        decode_body(body, "openai")


def test_a_review_with_a_string_left_open_is_invalid_in_one_pass() -> None:
    text = ('{"answers": ' + "[" * 70 + OPEN)[:MAX_REPLY_CHARS]
    model = load_persona(data_dir("personas") / "builder.yaml").review_model
    with pytest.raises(InvalidReply, match="it nests more than 64 levels deep"):
        parse_review(model, text)
