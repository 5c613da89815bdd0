"""YAML as the panel reads it: safe, with aliases, nesting and keys bounded.

The events come from libyaml when PyYAML was built with it (PyYAML's own C parser, several
times faster than the pure-Python one) and from the pure-Python parser otherwise; the nodes
are composed and constructed in Python either way, so the bounds below hold in both. A long
list (a catalog's tools) can be read an item at a time: only the item being read is held as
nodes, with the anchors the file has defined so far.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any, Protocol

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.resolver import Resolver

from .errors import UserError, shown
from .loaders import cut, first_clause, kind_of

__all__ = [
    "ALIAS_BUDGET",
    "ALIAS_RATIO",
    "MAX_DEPTH",
    "WITH_LIBYAML",
    "load_yaml",
    "node_lines",
    "yaml_items",
]

#: Deeper than any catalog, persona or price file needs; the bound keeps a crafted file
#: from exhausting the parser's stack.
MAX_DEPTH = 64
#: How many values YAML aliases may add to a file once expanded: ALIAS_BUDGET, or ALIAS_RATIO
#: times the values the file writes out itself, whichever is more. A long file a YAML writer
#: wrote with a value many entries share (an anchor, then an alias at each other use) adds a
#: share of its own size; nested aliases add exponentially more.
ALIAS_BUDGET = 100_000
ALIAS_RATIO = 10
#: whether events come from libyaml
WITH_LIBYAML: bool = bool(getattr(yaml, "__with_libyaml__", False))

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"
_LIBYAML_TOO_DEEP = "exceeded maximum nesting depth"
#: the measure of a scalar: one value, one level
_SCALAR = (1, 1)
# A node's (values in it once aliases are expanded, its depth so expanded), kept on the node
# itself: keyed by id(), a freed item's entry could be taken for a new node's.
_MEASURE = "_panel_measure"


class _Source(Protocol):
    def read(self, size: int = -1) -> str: ...


class _Refused(Exception):
    def __init__(self, mark: Any, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


if WITH_LIBYAML:
    from yaml._yaml import CParser

    class _Events(CParser):
        """libyaml's parser, for its events only: the composing is ours."""

else:  # pragma: no cover - PyYAML is built with libyaml where the tests run

    class _Events(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str | _Source) -> None:
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)


class _StrictLoader(_Events, Composer, SafeConstructor, Resolver):
    """The safe loader, with aliases, nesting and keys bounded.

    An alias is shared, not copied, while parsing, but everything that walks the data
    afterwards (validation, line lookup, hashing) meets it expanded: nine aliases of nine
    aliases of ... make a few hundred bytes worth gigabytes. So each node's expanded size
    and depth are measured as it is composed, and the file is refused, at the alias that
    crosses the bound, once aliases would add more than ALIAS_BUDGET values and more than
    ALIAS_RATIO times the values the file wrote out so far. Aliases a YAML writer emits for a shared
    mapping (PyYAML's `&id001`, once a tool) stay far below that, in a catalog of any length.
    """

    def __init__(self, stream: str | _Source) -> None:
        _Events.__init__(self, stream)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self.depth = 0
        #: values aliases add once expanded, and values the file writes out (aliases aside)
        self.expanded = 0
        self.written = 0

    # libyaml's parser brings a composer of its own, which would skip the bounds.
    def check_node(self) -> bool:
        return Composer.check_node(self)

    def get_node(self) -> yaml.Node | None:
        return Composer.get_node(self)

    def get_single_node(self) -> yaml.Node | None:
        return Composer.get_single_node(self)

    def next_event(self) -> Any:
        """The event the parser reads next, left for the next get_event."""
        return self.peek_event()

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: Any = self.peek_event()
        if isinstance(event, AliasEvent):
            node = Composer.compose_node(self, parent, index)
            name = cut(event.anchor or "", 40)
            measure = _SCALAR if isinstance(node, yaml.ScalarNode) else getattr(node, _MEASURE, None)
            if measure is None:
                raise _Refused(event.start_mark, f"YAML alias *{name} refers to a value that contains it")
            self.expanded += measure[0]
            bound = max(ALIAS_BUDGET, ALIAS_RATIO * self.written)
            if self.expanded > bound:
                raise _Refused(
                    event.start_mark,
                    f"YAML aliases expand the file past {bound:,} values (at alias *{name}); "
                    "write the values out",
                )
            return node
        if self.depth >= MAX_DEPTH:
            raise _Refused(event.start_mark, f"nested more than {MAX_DEPTH} levels deep")
        self.written += 1
        if isinstance(event, ScalarEvent):
            if event.anchor is None and not self.yaml_path_resolvers:
                # what compose_node comes to, less its steps (the stub's anchor type is wrong)
                return self.compose_scalar_node(None)  # type: ignore[arg-type]
            return Composer.compose_node(self, parent, index)
        self.depth += 1
        try:
            node = Composer.compose_node(self, parent, index)
        finally:
            self.depth -= 1
        if node is None:
            return None
        # A container's measure from its children's; a scalar's is _SCALAR, never stored.
        size, deepest = 1, 0
        parts = (
            node.value if isinstance(node, yaml.SequenceNode) else [p for pair in node.value for p in pair]
        )
        for child in parts:
            child_size, child_depth = getattr(child, _MEASURE, _SCALAR)
            size += child_size
            deepest = max(deepest, child_depth)
        if deepest >= MAX_DEPTH:
            raise _Refused(node.start_mark, f"nested more than {MAX_DEPTH} levels deep (through aliases)")
        setattr(node, _MEASURE, (size, deepest + 1))
        return node

    def construct_document(self, node: yaml.Node) -> Any:
        try:
            return super().construct_document(node)
        except ValueError as exc:  # a date like 2024-13-45, an integer of 5,000 digits
            mark, problem = self._value_error(node) or (node.start_mark, first_clause(exc))
            raise _Refused(mark, f"cannot read the value: {problem}") from None

    def _value_error(self, root: yaml.Node) -> tuple[Any, str] | None:
        """The scalar under `root` that cannot be built, and why: each is built on its own
        (only once building the whole has failed, so the common path checks nothing)."""
        self.constructed_objects, self.recursive_objects, self.state_generators = {}, {}, []
        stack: list[yaml.Node] = [root]
        seen: set[int] = set()
        while stack:
            node = stack.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, yaml.ScalarNode):
                try:
                    self.construct_object(node)
                except ValueError as exc:
                    return node.start_mark, first_clause(exc)
            elif isinstance(node, yaml.SequenceNode):
                stack.extend(reversed(node.value))
            elif isinstance(node, yaml.MappingNode):
                stack.extend(reversed([p for pair in node.value for p in pair]))
        return None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode) and not _plain_unique_keys(node):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:
                    continue
                self.first_time(self.construct_object(key_node, deep=True), key_node.start_mark, first)
        return super().construct_mapping(node, deep=deep)

    @staticmethod
    def first_time(key: Any, mark: Any, first: dict[Any, int]) -> None:
        """Refuse a key already in `first` (key -> line), else note its line."""
        try:
            if key in first:
                raise _Refused(mark, f"duplicate key {shown(key)} (already at line {first[key]})")
            first[key] = mark.line + 1
        except TypeError:
            pass  # an unhashable key: the constructor reports it with its place

    def compose_data(self, node: yaml.Node) -> Any:
        """Construct one node on its own (as a document of its own), so nothing is kept after."""
        return self.construct_document(node)


def _plain_unique_keys(node: yaml.MappingNode) -> bool:
    """Whether every key is a string scalar and no two are the same: the common case, told
    without building the keys."""
    keys = [k.value for k, _ in node.value if k.tag == _STR_TAG and isinstance(k, yaml.ScalarNode)]
    return len(keys) == len(node.value) and len(set(keys)) == len(keys)


class _Translate:
    """Turns what the loader raises into `error`, one line naming the file and the line."""

    def __init__(self, path: Path, error: type[UserError]) -> None:
        self.path, self.error = path, error

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        path = self.path
        if isinstance(exc, _Refused):
            raise self.error(f"{path}:{exc.mark.line + 1}: {exc.message}") from None
        if isinstance(exc, yaml.MarkedYAMLError):
            mark = exc.problem_mark or exc.context_mark
            if mark and (exc.problem or "").startswith(_LIBYAML_TOO_DEEP):
                # libyaml's own bound (1,000 levels), met while it reads ahead of ours
                raise self.error(
                    f"{path}:{mark.line + 1}: nested more than {MAX_DEPTH} levels deep"
                ) from None
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
            context = ""
            if exc.context and exc.context_mark and exc.context_mark is not mark:
                context = f" ({cut(exc.context)} at line {exc.context_mark.line + 1})"
            raise self.error(f"{where}: YAML syntax error: {cut(exc.problem or str(exc))}{context}") from None
        if isinstance(exc, yaml.YAMLError):
            raise self.error(f"{path}: YAML error: {cut(str(exc))}") from None


def load_yaml(path: Path, text: str | _Source, error: type[UserError]) -> tuple[Any, yaml.Node | None]:
    """The data of a one-document YAML text, and its node tree for line numbers; parsed once."""
    loader = _StrictLoader(text)
    try:
        with _Translate(path, error):
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return data, node


def yaml_items(
    path: Path, source: str | _Source, error: type[UserError], key: str, expected: str
) -> Iterator[tuple[Any, yaml.Node]]:
    """Each item of a one-document YAML list, or of the list under `key` of a mapping, with
    its node (for line numbers), one at a time: an item's nodes are let go once the next is
    read. Anything else raises `error`: "{path}: {expected}, got {what the document is}".

    An item is handed out once the next one is read (the last once the document is): a line
    indented off ends an item early and is a syntax error a little further on, and the syntax
    error is the problem to report, not the item it cut short.
    """
    loader = _StrictLoader(source)
    try:
        with _Translate(path, error):
            loader.get_event()  # stream start
            if loader.check_event(StreamEndEvent):
                raise error(f"{path}: {expected}, got nothing")
            document = loader.next_event()
            loader.get_event()
            found, other, tail = yield from _document_items(loader, key)
            loader.get_event()  # document end
            if not loader.check_event(StreamEndEvent):
                event = loader.next_event()
                raise yaml.composer.ComposerError(
                    "expected a single document in the stream", document.start_mark,
                    "but found another document", event.start_mark,
                )  # fmt: skip
            if not found:
                raise error(f"{path}: {expected}, got {other}")
            yield from tail
    finally:
        loader.dispose()


_Item = tuple[Any, yaml.Node]


def _document_items(loader: _StrictLoader, key: str) -> Generator[_Item, None, tuple[bool, str, list[_Item]]]:
    """Yield the items but the last ones; return whether the document was such a list, what
    it was instead, and the last items."""
    if loader.check_event(SequenceStartEvent):
        tail = yield from _list_items(loader)
        return True, "", tail
    if not loader.check_event(MappingStartEvent):
        node = loader.compose_node(None, None)
        return False, kind_of(loader.compose_data(node) if node is not None else None), []
    start = loader.next_event()
    loader.get_event()
    holder = _placeholder(loader, start, yaml.MappingNode)
    loader.depth = 1
    first: dict[Any, int] = {}
    found, other, tail = False, "a mapping", list[_Item]()
    while not loader.check_event(MappingEndEvent):
        key_node = loader.compose_node(holder, None)
        name = loader.compose_data(key_node) if key_node is not None else None
        if key_node is not None and key_node.tag != _MERGE_TAG:
            loader.first_time(name, key_node.start_mark, first)
        if name == key and loader.check_event(SequenceStartEvent):
            tail = yield from _list_items(loader)
            found = True
            continue
        value = loader.compose_node(holder, key_node)
        if name == key:
            data = loader.compose_data(value) if value is not None else None
            if isinstance(data, list) and isinstance(value, yaml.SequenceNode):  # an alias of a list
                yield from zip(data, value.value, strict=True)
                found = True
            else:
                other = kind_of(data)
    loader.get_event()
    setattr(holder, _MEASURE, (1, 1))
    loader.depth = 0
    return found, other, tail


def _list_items(loader: _StrictLoader) -> Generator[_Item, None, list[_Item]]:
    """Yield each item of the list starting here once the next one is read and another
    follows it; return the last two (a syntax error after the list can still be theirs)."""
    start = loader.next_event()
    loader.get_event()
    holder = _placeholder(loader, start, yaml.SequenceNode)
    loader.depth += 1
    index = 0
    pending: list[_Item] = []
    while not loader.check_event(SequenceEndEvent):
        node = loader.compose_node(holder, index)
        if node is not None:
            pending.append((loader.compose_data(node), node))
        if len(pending) > 1 and not loader.check_event(SequenceEndEvent):
            yield pending.pop(0)
        index += 1
    loader.get_event()
    loader.depth -= 1
    # Measured as one value: the list itself is never composed, so an alias to it (later in
    # the file) stands for nothing that could grow.
    setattr(holder, _MEASURE, (1, 1))
    return pending


def _placeholder(loader: _StrictLoader, start: Any, kind: type[yaml.CollectionNode]) -> yaml.Node:
    """A node standing for a container read item by item: an anchor on it is known (an alias
    to it from inside is refused as containing itself) without holding its items."""
    tag = "tag:yaml.org,2002:seq" if kind is yaml.SequenceNode else "tag:yaml.org,2002:map"
    holder = kind(tag, [], start.start_mark, start.end_mark)
    if start.anchor is not None:
        if start.anchor in loader.anchors:
            raise yaml.composer.ComposerError(
                f"found duplicate anchor {start.anchor!r}; first occurrence",
                loader.anchors[start.anchor].start_mark, "second occurrence", start.start_mark,
            )  # fmt: skip
        loader.anchors[start.anchor] = holder
    return holder


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
