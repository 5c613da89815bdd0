"""A catalog file's entries, read one at a time in each format, and where each one is.

Each format is read a block of lines at a time, and each entry comes with its place: the
line it starts on (YAML, JSONL) or its offset in the text (JSON). A place becomes a line only
when an error needs one, and the line of each field of the entry being read (YAML) likewise,
so a catalog of 200,000 tools is read in one pass and a problem is still named by its line.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from .errors import CatalogError, shown
from .json_loader import json_items, load_json
from .loaders import FileStamp, TextFile
from .yaml_loader import node_lines, yaml_items

__all__ = ["FORMATS", "CatalogFile", "open_catalog_file"]

_WHAT = "catalog file"


class CatalogFile(abc.ABC):
    """One catalog file being read: its entries, and the line of a place in it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        #: the file as it was opened
        self.stamp: FileStamp | None = None

    @abc.abstractmethod
    def entries(self) -> Iterator[tuple[Any, int]]:
        """Each entry (as read, not yet checked) with its place."""

    def line(self, place: int) -> int:
        """The line an entry's place is on (0: not known)."""
        return place

    def field_lines(self) -> dict[str, int]:
        """The line of each field of the entry read last, by dotted path, where the format says."""
        return {}


class YamlCatalog(CatalogFile):
    """A list of tools, or a mapping whose `tools` is one; an item's nodes live while it is read."""

    _node: yaml.Node | None = None

    def entries(self) -> Iterator[tuple[Any, int]]:
        with TextFile(self.path, CatalogError, _WHAT) as file:
            self.stamp = file.stamp
            expected = "a catalog is a list of tools (or a mapping with a 'tools' list)"
            for raw, node in yaml_items(self.path, file, CatalogError, "tools", expected):
                self._node = node
                yield raw, node.start_mark.line + 1
        self._node = None

    def field_lines(self) -> dict[str, int]:
        return node_lines(self._node)


class JsonCatalog(CatalogFile):
    """An array of tools, or an object whose `tools` is one, read a block at a time; a place
    is an offset in the text."""

    def entries(self) -> Iterator[tuple[Any, int]]:
        with TextFile(self.path, CatalogError, _WHAT) as file:
            self.stamp = file.stamp
            expected = "a catalog is a list of tools (or an object with a 'tools' list)"
            yield from json_items(self.path, file.blocks(), CatalogError, "tools", expected, self._text)

    def _text(self) -> str:
        """The whole text again (for an error): the file as read, or a CatalogError."""
        if self.stamp is None or FileStamp.now(self.path) != self.stamp:
            raise CatalogError(f"{self.path}: the catalog file changed while it was read")
        with TextFile(self.path, CatalogError, _WHAT) as file:
            return "".join(file.blocks())

    def line(self, place: int) -> int:
        # The text is read again, only for an error, and only from the file the offset is in.
        try:
            text = self._text()
        except CatalogError:
            return 0
        return text.count("\n", 0, place) + 1


class JsonlCatalog(CatalogFile):
    """One tool a line, read a block of lines at a time; blank lines are skipped."""

    def entries(self) -> Iterator[tuple[Any, int]]:
        with TextFile(self.path, CatalogError, _WHAT) as file:
            self.stamp = file.stamp
            for number, line in file.lines():
                if line.strip():
                    yield load_json(self.path, line, CatalogError, first_line=number), number


FORMATS: dict[str, type[CatalogFile]] = {
    ".yaml": YamlCatalog,
    ".yml": YamlCatalog,
    ".json": JsonCatalog,
    ".jsonl": JsonlCatalog,
}


def open_catalog_file(path: Path) -> CatalogFile:
    """The reader of a catalog file by its suffix; CatalogError for one it does not know."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise CatalogError(f"{path}: unknown catalog format {shown(suffix)} (use .yaml, .json or .jsonl)")
    return FORMATS[suffix](path)
