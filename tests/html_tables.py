"""The tables of an HTML page as text, for tests that read figures the way a reader does
(not a test module): `tables(html)` maps each table's caption to its rows of cell texts,
the head row first, each cell's text with its whitespace collapsed (the parts of a cell in
elements of their own, such as an estimate and its interval, are separated by a space)."""

from __future__ import annotations

from html.parser import HTMLParser

__all__ = ["tables"]


class _Tables(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: dict[str, list[list[str]]] = {}
        self._caption: list[str] | None = None
        self._rows: list[list[str]] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._rows, self._caption = [], []
        elif tag == "caption" and self._rows is not None:
            self._cell = self._caption
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th") and self._rows:
            self._cell = []
        elif self._cell is not None:
            self._cell.append(" ")  # a part of a cell in its own element: a word of its own

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._rows and self._cell is not None:
            self._rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "caption":
            self._cell = None
        elif tag == "table" and self._rows is not None:
            caption = " ".join("".join(self._caption or []).split())
            self.found[caption] = self._rows
            self._rows = self._caption = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables(html: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    parser.close()
    return parser.found
