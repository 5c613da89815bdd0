"""Reading the files a user writes: catalogs, persona files, price files and panel.toml.

One place decides what a readable input is: a regular file of UTF-8 text without control
characters; YAML with bounded aliases and nesting and without duplicate keys; JSON
without duplicate keys. Each problem becomes one UserError line naming the file and, where known, the line,
so a hand-edited file never meets a traceback, a last-wins key or an exponential expansion.
"""

from __future__ import annotations

import json
import os
import re
import stat
import tomllib
from json import JSONDecodeError
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError, shown

__all__ = ["ALIAS_BUDGET", "MAX_DEPTH", "load_json", "load_toml", "load_yaml", "node_lines", "read_text"]

#: Deeper than any catalog, persona or price file needs; the bound keeps a crafted file
#: from exhausting the parser's stack.
MAX_DEPTH = 64
#: How many values YAML aliases may add to a file once expanded.
ALIAS_BUDGET = 100_000

# C0 controls but tab, line feed and carriage return; DEL; C1 controls (U+009B opens a
# terminal escape sequence as ESC [ does).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BOM = b"\xef\xbb\xbf"
_MERGE_TAG = "tag:yaml.org,2002:merge"


def read_text(path: str | Path, error: type[UserError], what: str) -> str:
    """The text of a regular UTF-8 file without control characters, else `error` naming the spot.

    `what` names the file in messages ("catalog file", "price file"). A folder, a FIFO or a
    device is refused before any read, so a wrong path cannot block.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{path}: {what} not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        # Checked before open(fd): Python refuses to wrap a folder's descriptor at all.
        os.close(fd)
        kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        raise error(f"{path}: the {what} is {kind}")
    with open(fd, "rb") as handle:
        try:
            data = handle.read()
        except OSError as exc:
            raise error(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    skip = len(_BOM) if data.startswith(_BOM) else 0
    try:
        text = data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = skip + exc.start
        line, column = data.count(b"\n", 0, at) + 1, at - data.rfind(b"\n", 0, at)
        raise error(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[at]:02x} at column {column}); "
            f"save the {what} as UTF-8"
        ) from None
    control = _CONTROL.search(text)
    if control:
        at = control.start()
        line, column = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
        raise error(
            f"{path}:{line}:{column}: control character U+{ord(control.group()):04X} in the {what} "
            "(only tab, line feed and carriage return are allowed)"
        )
    return text


# --- YAML ---------------------------------------------------------------------------------


class _Refused(Exception):
    def __init__(self, mark: yaml.Mark, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


class _StrictLoader(yaml.SafeLoader):
    """The safe loader, with aliases, nesting and keys bounded.

    An alias is shared, not copied, while parsing, but everything that walks the data
    afterwards (validation, line lookup, hashing) meets it expanded: nine aliases of nine
    aliases of ... make a few hundred bytes worth gigabytes. So each node's expanded size
    and depth are measured as it is composed, and the file is refused, at the alias that
    crosses the bound, once aliases would add more than ALIAS_BUDGET values. Aliases a
    YAML writer emits for a shared mapping (PyYAML's `&id001`) stay far below that.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0
        self.expanded = 0
        # id(node) -> (values in it once aliases are expanded, its depth so expanded)
        self.measures: dict[int, tuple[int, int]] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            alias = self.peek_event()  # type: ignore[no-untyped-call]
            node = super().compose_node(parent, index)
            name = _cut(alias.anchor, 40)
            measure = self.measures.get(id(node)) if node is not None else None
            if measure is None:
                raise _Refused(alias.start_mark, f"YAML alias *{name} refers to a value that contains it")
            self.expanded += measure[0]
            if self.expanded > ALIAS_BUDGET:
                raise _Refused(
                    alias.start_mark,
                    f"YAML aliases expand the file past {ALIAS_BUDGET:,} values (at alias *{name}); "
                    "write the values out",
                )
            return node
        if self.depth >= MAX_DEPTH:
            place = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise _Refused(place, f"nested more than {MAX_DEPTH} levels deep")
        self.depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        if node is None:
            return None
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        measures = [self.measures[id(child)] for child in children]
        depth = 1 + max((m[1] for m in measures), default=0)
        if depth > MAX_DEPTH:
            raise _Refused(node.start_mark, f"nested more than {MAX_DEPTH} levels deep (through aliases)")
        self.measures[id(node)] = (1 + sum(m[0] for m in measures), depth)
        return node

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except ValueError as exc:  # a date like 2024-13-45, an integer of 5,000 digits
            raise _Refused(node.start_mark, f"cannot read the value: {_first_clause(exc)}") from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key in first:
                        raise _Refused(
                            key_node.start_mark,
                            f"duplicate key {shown(key)} (already at line {first[key]})",
                        )
                    first[key] = line
                except TypeError:
                    continue  # an unhashable key: the base class reports it with its place
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: Path, text: str, error: type[UserError]) -> tuple[Any, yaml.Node | None]:
    """The data of a one-document YAML text, and its node tree for line numbers; parsed once."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except _Refused as exc:
        raise error(f"{path}:{exc.mark.line + 1}: {exc.message}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        context = ""
        if exc.context and exc.context_mark and exc.context_mark is not mark:
            context = f" ({_cut(exc.context)} at line {exc.context_mark.line + 1})"
        raise error(f"{where}: YAML syntax error: {_cut(exc.problem or str(exc))}{context}") from None
    except yaml.YAMLError as exc:
        raise error(f"{path}: YAML error: {_cut(str(exc))}") from None
    finally:
        loader.dispose()
    return data, node


def node_lines(node: yaml.Node | None, prefix: str = "") -> dict[str, int]:
    """Line of each field under a YAML node, by dotted path ('pricing.model', 'questions.0.key')."""
    out: dict[str, int] = {}
    stack: list[tuple[yaml.Node | None, str]] = [(node, prefix)]
    while stack:
        current, at = stack.pop()
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                name = f"{at}{key.value}"
                out.setdefault(name, key.start_mark.line + 1)
                stack.append((value, name + "."))
        elif isinstance(current, yaml.SequenceNode):
            for i, value in enumerate(current.value):
                name = f"{at}{i}"
                out[name] = value.start_mark.line + 1
                stack.append((value, name + "."))
    return out


# --- JSON ---------------------------------------------------------------------------------


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


def load_json(path: Path, text: str, error: type[UserError], first_line: int = 1) -> Any:
    """The data of a JSON text (one line of a JSONL file starts at `first_line`), keys unique."""
    try:
        return json.loads(text, object_pairs_hook=_unique)
    except JSONDecodeError as exc:
        line = exc.lineno + first_line - 1
        raise error(f"{path}:{line}:{exc.colno}: JSON syntax error: {exc.msg}") from None
    except _DuplicateKey as exc:
        found = _locate_duplicate(text) or exc
        if found.at < 0:
            raise error(f"{path}: duplicate key {shown(found.key)} in one object") from None
        line = text.count("\n", 0, found.at) + first_line
        first = text.count("\n", 0, found.first) + first_line
        raise error(f"{path}:{line}: duplicate key {shown(found.key)} (already at line {first})") from None
    except RecursionError:
        raise error(f"{path}: JSON nested too deeply") from None
    except ValueError as exc:  # an integer of 5,000 digits
        raise error(f"{path}: cannot read a value: {_first_clause(exc)}") from None


_WHITESPACE = re.compile(r"[ \t\n\r]*")


def _locate_duplicate(text: str) -> _DuplicateKey | None:
    """Where the first repeated key is, walking the text the way the parser did.

    Only called once a duplicate is known to exist, so it may be slow; strings and numbers
    are read by the standard decoder, so their escapes need no code here.
    """
    decoder = json.JSONDecoder()

    def skip(pos: int) -> int:
        return _WHITESPACE.match(text, pos).end()  # type: ignore[union-attr]  # matches empty too

    def walk(pos: int) -> int:
        pos = skip(pos)
        opener = text[pos]
        if opener not in "{[":
            return int(decoder.raw_decode(text, pos)[1])
        closer, seen = ("}" if opener == "{" else "]"), dict[str, int]()
        pos = skip(pos + 1)
        while text[pos] != closer:
            if opener == "{":
                key, after = decoder.raw_decode(text, pos)
                if key in seen:
                    raise _DuplicateKey(key, pos, seen[key])
                seen[key] = pos
                pos = skip(after) + 1  # past ':'
            pos = skip(walk(pos))
            if text[pos] == ",":
                pos = skip(pos + 1)
        return pos + 1

    try:
        walk(0)
    except _DuplicateKey as found:
        return found
    except (ValueError, IndexError, RecursionError):
        return None
    return None


# --- TOML ---------------------------------------------------------------------------------

_TOML_PLACE = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


def load_toml(path: str | Path, error: type[UserError], what: str) -> dict[str, Any]:
    """The table of a TOML file, read through read_text. TOML itself refuses duplicate keys."""
    path = Path(path)
    text = read_text(path, error, what)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        place = _TOML_PLACE.search(message)
        if place:
            where = f"{path}:{place.group(1)}:{place.group(2)}"
            raise error(f"{where}: TOML syntax error: {message[: place.start()]}") from None
        raise error(f"{path}: TOML syntax error: {message}") from None
    except RecursionError:
        raise error(f"{path}: TOML nested too deeply") from None
    except ValueError as exc:
        raise error(f"{path}: cannot read a value: {_first_clause(exc)}") from None


def _cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _first_clause(exc: Exception) -> str:
    # Python's own advice after the ';' (sys.set_int_max_str_digits) is not for the user.
    return _cut(str(exc).split(";")[0])
