"""Text from catalogs and models, made safe to show.

Catalog entries and model replies are data written by others. Shown raw, an escape
sequence can clear a terminal, retitle its window or plant a link whose text hides its
target (OSC 8), and a bidi override can make text read otherwise than it is written.
`clean` removes all of them and keeps the line breaks prose needs; every place that shows
such text (terminal, Markdown, HTML) passes it through here.

`storable` is the other half: text that UTF-8 can hold at all. JSON's `\\ud800` escape (or
bytes that encode half a surrogate pair) reads into Python as a lone surrogate, which no
UTF-8 text (SQLite's, a page's, a terminal's) holds: writing it raises. Every text read from
a provider passes through it.

`spreadsheet_safe` guards a CSV cell of such text against a spreadsheet that would run it as a
formula; `spreadsheet_text` reads it back.
"""

from __future__ import annotations

import re

from rich.markup import escape

__all__ = ["clean", "for_console", "storable"]

# ECMA-48 sequences are removed whole, so their parameters do not stay behind as litter
# ("[2J", "8;;http://..."): a control string (OSC, DCS, SOS, PM, APC) up to its BEL or ST,
# a CSI with its parameters and final byte, and the short escapes; 7- and 8-bit forms alike.
_SEQUENCE = re.compile(
    r"""
      (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f]) [^\x07\x1b\x9c]* (?:\x07|\x1b\\|\x9c)
    | (?:\x1b\[|\x9b) [\x30-\x3f]* [\x20-\x2f]* [\x40-\x7e]
    | \x1b [\x20-\x2f]* [\x30-\x7e]
    """,
    re.VERBOSE,
)

# Controls a terminal acts on (all C0 but tab and newline, DEL, all C1) and the bidi
# embeddings, overrides and isolates that reorder what a reader sees.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_LINE_END = re.compile(r"\r\n?")
#: a surrogate code point: in text a JSON parser made, half a pair (it joins whole pairs)
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def clean(value: object) -> str:
    """`value` as text with no terminal controls: sequences and control characters removed.

    Newlines and tabs stay; a carriage return becomes a newline, since alone it would let a
    line overwrite itself on a terminal.
    """
    text = str(value)
    if not _UNSAFE.search(text):
        return text
    text = _LINE_END.sub("\n", text)
    text = _SEQUENCE.sub("", text)
    return _UNSAFE.sub("", text)


def for_console(value: object) -> str:
    """Data to embed in a rich markup string: cleaned, and its brackets kept as text.

    The console that prints it must be built with ``emoji=False``, or ``:name:`` codes in
    the data still turn into emoji.
    """
    return escape(clean(value))


def storable(text: str) -> str:
    """`text` with each lone surrogate replaced by U+FFFD, so that UTF-8 can hold it."""
    return _SURROGATE.sub("\ufffd", text)


#: what a spreadsheet reads as the start of a formula (or a cell split), in a CSV cell
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """A CSV cell of others' text with a single quote before a leading formula character
    (`FORMULA_START`), so that a spreadsheet shows it as text rather than running it."""
    return "'" + cell if cell.startswith(FORMULA_START) else cell


def spreadsheet_text(cell: str) -> str:
    """The text `spreadsheet_safe` quoted, back; any other cell as it is."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_START) else cell
