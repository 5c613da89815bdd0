"""Reading the files a user writes: catalogs, persona files, price files and panel.toml.

One place decides what a readable input is: a regular file of UTF-8 text without control
characters (here); YAML with bounded aliases and nesting and without duplicate keys
(`panel.yaml_loader`); JSON without duplicate keys (`panel.json_loader`). Each problem
becomes one UserError line naming the file and, where known, the line, so a hand-edited
file never meets a traceback, a last-wins key or an exponential expansion.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError

__all__ = [
    "FileStamp", "TextFile", "cut", "file_kind", "first_clause", "kind_of", "load_toml", "read_text",
]  # fmt: skip

# C0 controls but tab, line feed and carriage return; DEL; C1 controls (U+009B opens a
# terminal escape sequence as ESC [ does).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BOM = b"\xef\xbb\xbf"
#: how much of a file is read at a time (then up to the next line feed)
BLOCK_BYTES = 1 << 20


@dataclass(frozen=True)
class FileStamp:
    """What tells one version of a file from another: device, inode, size, modification time."""

    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, info: os.stat_result) -> FileStamp:
        return cls(info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)

    @classmethod
    def now(cls, path: str | Path) -> FileStamp | None:
        """The file's stamp as it is now, None when it cannot be read."""
        try:
            return cls.of(os.stat(path))
        except (OSError, ValueError):
            return None


class TextFile:
    """A regular UTF-8 file without control characters, read in blocks of whole lines.

    Opening refuses a folder, a FIFO or a device before any read, so a wrong path cannot
    block; each block is checked as it is read, and a problem becomes `error` naming the line.
    At the end, a file that is no longer as it was opened is refused: saved over in place
    while it was read, its text would be part one version and part the other.
    `what` names the file in messages ("catalog file", "price file"). Use it as a context
    manager; `stamp` is the file's as it was opened.
    """

    def __init__(self, path: str | Path, error: type[UserError], what: str) -> None:
        self.path, self.error, self.what = Path(path), error, what
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise error(f"{self.path}: {what} not found") from None
        except OSError as exc:
            kind = _kind_at(self.path)  # a socket cannot be opened at all
            if kind is not None:
                raise error(f"{self.path}: the {what} is {kind}") from None
            raise error(f"{self.path}: cannot read the {what}: {exc.strerror or exc}") from None
        info = os.fstat(fd)
        kind = file_kind(info.st_mode)
        if kind is not None:
            # Checked before open(fd): Python refuses to wrap a folder's descriptor at all.
            os.close(fd)
            raise error(f"{self.path}: the {what} is {kind}")
        self.stamp = FileStamp.of(info)
        self._handle = open(fd, "rb")  # noqa: SIM115 - closed by close() / __exit__
        #: lines handed out so far (the line number of the next block's first line, less one)
        self.lines_read = 0
        self._pending = b""
        self._started = False

    def __enter__(self) -> TextFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._handle.close()

    def blocks(self) -> Iterator[str]:
        """The text in blocks that end at a line feed (but the last), each checked."""
        while True:
            block = self._next_block()
            if block is None:
                return
            yield block

    def lines(self) -> Iterator[tuple[int, str]]:
        """Each line with its number, without its line feed, a block at a time.

        Lines end at line feeds only: U+2028 and the like are text (JSON allows them in a string).
        """
        number = 0
        for block in self.blocks():
            lines = block.split("\n")
            if lines[-1] == "":
                lines.pop()  # the block's closing line feed
            for line in lines:
                number += 1
                yield number, line

    def read(self, size: int = -1) -> str:
        """File-like: the next block (at least one line), "" at the end; `size` is a hint."""
        return self._next_block() or ""

    def _next_block(self) -> str | None:
        parts = [self._pending]
        while True:
            try:
                chunk = self._handle.read(BLOCK_BYTES)
            except OSError as exc:
                raise self.error(f"{self.path}: cannot read the {self.what}: {exc.strerror or exc}") from None
            cut = chunk.rfind(b"\n")
            if cut < 0:
                parts.append(chunk)
                if chunk:
                    continue  # a line longer than a block: read on to its end
                self._pending = b""
                self._unchanged()
            else:
                parts.append(chunk[: cut + 1])
                self._pending = chunk[cut + 1 :]
            break
        data = b"".join(parts)
        if not data:
            return None
        skip = 0
        if not self._started:
            self._started = True
            skip = len(_BOM) if data.startswith(_BOM) else 0
        text = self._checked(data, skip)
        self.lines_read += text.count("\n")
        return text

    def _unchanged(self) -> None:
        if FileStamp.of(os.fstat(self._handle.fileno())) != self.stamp:
            raise self.error(f"{self.path}: the {self.what} changed while it was read")

    def _checked(self, data: bytes, skip: int) -> str:
        try:
            text = data[skip:].decode("utf-8")
        except UnicodeDecodeError as exc:
            at = skip + exc.start
            line, column = self.lines_read + data.count(b"\n", 0, at) + 1, at - data.rfind(b"\n", 0, at)
            raise self.error(
                f"{self.path}:{line}: not UTF-8 text (byte 0x{data[at]:02x} at column {column}); "
                f"save the {self.what} as UTF-8"
            ) from None
        control = _CONTROL.search(text)
        if control:
            at = control.start()
            line, column = self.lines_read + text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
            raise self.error(
                f"{self.path}:{line}:{column}: control character U+{ord(control.group()):04X} in the "
                f"{self.what} (only tab, line feed and carriage return are allowed)"
            )
        return text


def read_text(path: str | Path, error: type[UserError], what: str) -> str:
    """The whole text of a regular UTF-8 file without control characters (see `TextFile`)."""
    with TextFile(path, error, what) as file:
        return "".join(file.blocks())


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
        raise error(f"{path}: cannot read a value: {first_clause(exc)}") from None


def cut(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def first_clause(exc: Exception) -> str:
    # Python's own advice after the ';' (sys.set_int_max_str_digits) is not for the user.
    return cut(str(exc).split(";")[0])


def kind_of(value: Any) -> str:
    """What a value read from a file is, in words: "a mapping", "a list", "a string", "int"."""
    return {dict: "a mapping", list: "a list", str: "a string", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
)


def file_kind(mode: int) -> str | None:
    """What a file that is not a regular file is ("a folder", "a character device" ...), from
    its `st_mode`; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _kind_at(path: Path) -> str | None:
    try:
        return file_kind(os.stat(path).st_mode)
    except (OSError, ValueError):
        return None
