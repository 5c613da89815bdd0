"""JSON as the panel reads it: no key given twice in one object, each problem one line.

A whole document is parsed at once (`load_json`); a long list in it (a catalog's tools) can
be read an item at a time (`json_items`), holding only the blocks of text the item spans.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Generator, Iterator
from json import JSONDecodeError
from pathlib import Path
from typing import Any, NoReturn

from .errors import UserError, shown
from .loaders import first_clause, kind_of

__all__ = ["json_items", "load_json"]

_WHITESPACE = re.compile(r"[ \t\n\r]*")


class _DuplicateKey(Exception):
    def __init__(self, key: str, at: int = -1, first: int = -1) -> None:
        super().__init__(key)
        self.key, self.at, self.first = key, at, first


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return data


_DECODER = json.JSONDecoder(object_pairs_hook=_unique)
#: what parsing raises on a text it cannot read
_FAILURES = (ValueError, RecursionError, _DuplicateKey)


def load_json(
    path: Path, text: str, error: type[UserError], first_line: int = 1, at: int | None = None
) -> Any:
    """The data of a JSON text (one line of a JSONL file starts at `first_line`), keys unique.
    `at`: the offset of the value being read, the place of a problem the parser gives none."""
    try:
        return _DECODER.decode(text)
    except _FAILURES as exc:
        raise _problem(exc, path, text, error, first_line, at) from None


def _problem(
    exc: Exception, path: Path, text: str, error: type[UserError], first_line: int, at: int | None
) -> UserError:
    """What the parser raised, as `error` naming the line."""
    if isinstance(exc, JSONDecodeError):
        line = exc.lineno + first_line - 1
        return error(f"{path}:{line}:{exc.colno}: JSON syntax error: {exc.msg}")
    if isinstance(exc, _DuplicateKey):
        found = _locate_duplicate(text) or exc
        if found.at >= 0:
            line = text.count("\n", 0, found.at) + first_line
            first = text.count("\n", 0, found.first) + first_line
            return error(f"{path}:{line}: duplicate key {shown(found.key)} (already at line {first})")
    # Python's own bounds (depth, an integer of 5,000 digits) say nowhere: the text's one line
    # (JSONL), else the line the value being read starts on.
    if "\n" not in text:
        where = f"{path}:{first_line}"
    elif at is not None:
        line = text.count("\n", 0, at) + first_line
        where = f"{path}:{line}"
    else:
        where = str(path)
    if isinstance(exc, _DuplicateKey):
        return error(f"{where}: duplicate key {shown(exc.key)} in one object")
    if isinstance(exc, RecursionError):
        return error(f"{where}: JSON nested too deeply")
    return error(f"{where}: cannot read a value: {first_clause(exc)}")


def _skip(text: str, pos: int) -> int:
    return _WHITESPACE.match(text, pos).end()  # type: ignore[union-attr]  # matches empty too


def _locate_duplicate(text: str) -> _DuplicateKey | None:
    """Where the first repeated key is, walking the text the way the parser did.

    Only called once a duplicate is known to exist, so it may be slow; strings and numbers
    are read by the standard decoder, so their escapes need no code here.
    """
    decoder = json.JSONDecoder()

    def walk(pos: int) -> int:
        pos = _skip(text, pos)
        opener = text[pos]
        if opener not in "{[":
            return int(decoder.raw_decode(text, pos)[1])
        closer, seen = ("}" if opener == "{" else "]"), dict[str, int]()
        pos = _skip(text, pos + 1)
        while text[pos] != closer:
            if opener == "{":
                key, after = decoder.raw_decode(text, pos)
                if key in seen:
                    raise _DuplicateKey(key, pos, seen[key])
                seen[key] = pos
                pos = _skip(text, after) + 1  # past ':'
            pos = _skip(text, walk(pos))
            if text[pos] == ",":
                pos = _skip(text, pos + 1)
        return pos + 1

    try:
        walk(0)
    except _DuplicateKey as found:
        return found
    except (ValueError, IndexError, RecursionError):
        return None
    return None


def json_items(
    path: Path,
    blocks: Iterator[str],
    error: type[UserError],
    key: str,
    expected: str,
    whole: Callable[[], str],
) -> Iterator[tuple[Any, int]]:
    """Each item of a JSON document's top-level array, or of the array under `key` of its
    top-level object, with the offset in the text where it starts.

    The text comes in `blocks` that end at line feeds, and only the blocks the item being read
    spans are held. Anything else raises `error`: "{path}: {expected}, got {what the document
    is}". Only the well-formed path is walked here: at anything unexpected the standard parser
    reads the `whole` text, so a syntax error is worded and placed as `load_json` words it.
    """
    reader = _Reader(blocks, lambda at=None: _fail(path, whole(), error, at))
    pos = reader.skip(0)
    if reader.at(pos, "["):
        pos = yield from _array_items(reader, pos)
    elif reader.at(pos, "{"):
        pos, found, other = yield from _object_items(reader, pos, key)
        if not found:
            raise error(f"{path}: {expected}, got {other}")
    else:
        value, pos = reader.decode(pos)
        if reader.skip(pos) == reader.end():
            raise error(f"{path}: {expected}, got {kind_of(value)}")
    if reader.skip(pos) != reader.end():
        reader.fail()


class _Reader:
    """The text of a document a block at a time: positions are offsets in the whole text,
    and the text before the value being read is let go."""

    def __init__(self, blocks: Iterator[str], fail: Callable[..., NoReturn]) -> None:
        """`fail(at=None)` raises the problem of the text (at the value starting at `at`)."""
        self.blocks, self.fail = blocks, fail
        self.text, self.base, self.done = "", 0, False

    def more(self, keep: int, at_least: int = 1) -> bool:
        """Let go of the text before `keep` and read `at_least` more characters (whole
        blocks); False at the end of the text."""
        read: list[str] = []
        size = 0
        for block in self.blocks:
            read.append(block)
            size += len(block)
            if size >= at_least:
                break
        else:
            self.done = True
        if read:
            self.text = self.text[keep - self.base :] + "".join(read)
            self.base = keep
        return bool(read)

    def end(self) -> int:
        """The offset of the end of the text (read to the end to know it)."""
        while not self.done:
            self.more(self.base + len(self.text))
        return self.base + len(self.text)

    def skip(self, pos: int) -> int:
        """The offset of the first character from `pos` on that is not white space."""
        while True:
            pos = self.base + _skip(self.text, pos - self.base)
            if pos < self.base + len(self.text) or not self.more(pos):
                return pos

    def at(self, pos: int, chars: str) -> bool:
        """Whether the character at `pos` is one of `chars` (False at the end)."""
        while pos >= self.base + len(self.text):
            if not self.more(pos):
                return False
        return self.text[pos - self.base] in chars

    def decode(self, pos: int) -> tuple[Any, int]:
        """The value starting at `pos`, and the offset past it; what cannot be read may only
        be cut short by the end of the text held, so more is read (doubling what is held, so
        a value long as the file is read in linear time) until the value ends or the text does."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, pos - self.base)
            except JSONDecodeError:
                if self.more(pos, at_least=max(len(self.text) - (pos - self.base), 1)):
                    continue
                self.fail()
            except (ValueError, RecursionError, _DuplicateKey):
                self.fail(pos)
            # A number or a word cannot span two blocks, each ending at a line feed: a value
            # that ends where the held text does is whole.
            return value, self.base + end


def _array_items(reader: _Reader, pos: int) -> Generator[tuple[Any, int], None, int]:
    """The items of the array opening at `pos`; returns the offset just past it."""
    pos = reader.skip(pos + 1)
    if reader.at(pos, "]"):
        return pos + 1
    while True:
        value, end = reader.decode(pos)
        after = reader.skip(end)
        # What follows is checked first: a missing comma is the problem to report, not the
        # item before it.
        if not reader.at(after, ",]"):
            reader.fail()
        yield value, pos
        if reader.at(after, "]"):
            return after + 1
        pos = reader.skip(after + 1)


def _object_items(
    reader: _Reader, pos: int, key: str
) -> Generator[tuple[Any, int], None, tuple[int, bool, str]]:
    """The items of the array under `key` of the object opening at `pos`; returns the offset
    past the object, whether the key held an array, and what it held (or "a mapping")."""
    pos = reader.skip(pos + 1)
    seen: set[str] = set()
    found, other = False, "a mapping"
    if reader.at(pos, "}"):
        return pos + 1, found, other
    while True:
        if not reader.at(pos, '"'):
            reader.fail()
        name, pos = reader.decode(pos)
        if name in seen:
            reader.fail()  # a duplicate key, placed by the standard parser
        seen.add(name)
        pos = reader.skip(pos)
        if not reader.at(pos, ":"):
            reader.fail()
        pos = reader.skip(pos + 1)
        if name == key and reader.at(pos, "["):
            pos = yield from _array_items(reader, pos)
            found = True
        else:
            value, pos = reader.decode(pos)
            if name == key:
                other = kind_of(value)
        pos = reader.skip(pos)
        if reader.at(pos, ","):
            pos = reader.skip(pos + 1)
        elif reader.at(pos, "}"):
            return pos + 1, found, other
        else:
            reader.fail()


def _fail(path: Path, text: str, error: type[UserError], at: int | None = None) -> NoReturn:
    """The standard parser's word on a text the walk above found malformed (reading the value
    at offset `at`)."""
    load_json(path, text, error, at=at)
    raise error(f"{path}: not a JSON document")  # the parser found nothing wrong: not expected
