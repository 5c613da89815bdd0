"""A folder whose files are replaced as a set: a reader finds every file of the last write, or
every file of the one before, never some of each, whatever moment the writer was stopped at.

The files live in a version folder, and one symlink, `.current`, names the version in force;
each file's own name in the folder is a symlink through it::

    published/comparison.json -> .current/comparison.json
    published/.current        -> .v-k3j9x0ab
    published/.v-k3j9x0ab/comparison.json

A write puts the new files whole into a new version folder, then swaps `.current` to it with
one `os.replace` of a symlink (atomic on POSIX): that rename is the moment the set changes.
Then the old version goes. Whatever a stopped writer left (a version never swapped in, a link
made for a swap, a temporary file of the one-file-at-a-time writer before this one) is swept
at the next write.

A folder of plain files (as panel wrote it before) is taken over without a mixed moment: its
files are linked into a version of their own, `.current` is pointed at it, and each plain file
is replaced by its symlink, which shows the same bytes; only then comes the new version.

One writer at a time: the caller holds the store's lock.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from ..errors import UserError
from .files import os_reason, umask

__all__ = ["CURRENT", "read_current", "write_set"]

#: the symlink naming the version in force
CURRENT = ".current"
_VERSION = ".v-"
_LINK = ".link-"


def write_set(folder: Path, files: Mapping[str, str | bytes]) -> list[Path]:
    """Replace the files of `folder` named in `files` with their new contents, all at once.

    A file that cannot be written (a full disk, no permission, a folder in the way) is one
    line naming it, and the set in force is left as it was.
    """
    for name in files:
        if not name or name.startswith(".") or "/" in name or "\\" in name:
            raise ValueError(f"{name!r} is not a plain file name")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _sweep(folder, files)
        _adopt(folder, files)
        version = _new_version(folder)
        for name, content in files.items():
            _write(version / name, content)
        _sync(version)
        _point(folder / CURRENT, version.name)  # the set changes here, at once
        _sync(folder)
        _sweep(folder, files)
    except OSError as exc:
        raise UserError(f"cannot write {folder}: {os_reason(exc)}") from None
    return [folder / name for name in files]


def read_current(folder: Path, name: str) -> bytes | None:
    """The bytes of `name` in the set in force, or None when it has none.

    The version is looked up first and the file read inside it, so a write meanwhile cannot
    hand over a file it is about to remove: the read is tried again on the new version.
    """
    for _ in range(3):
        try:
            target = _target(folder)
            return (folder / target / name if target else folder / name).read_bytes()
        except FileNotFoundError:
            continue  # swapped and swept between the look-up and the read, or not there
        except OSError:
            return None
    return None


def _target(folder: Path) -> str | None:
    """The name of the version `.current` points at; None before the first write."""
    try:
        target = os.readlink(folder / CURRENT)
    except FileNotFoundError:
        return None
    return target if target.startswith(_VERSION) and "/" not in target else None


def _sweep(folder: Path, names: Mapping[str, object]) -> None:
    """Remove what is not in force: other versions, links made for a swap, and the
    temporary files an older writer left beside the files (`.comparison.json.x1y2.tmp`)."""
    in_force = _target(folder)
    for entry in os.scandir(folder):
        name = entry.name
        stale = (
            (name.startswith(_VERSION) and name != in_force)
            or name.startswith(_LINK)
            or any(name.startswith(f".{n}.") and name.endswith(".tmp") for n in names)
        )
        if not stale:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


def _adopt(folder: Path, names: Mapping[str, object]) -> None:
    """Make every name a symlink through `.current`, showing what the folder shows now."""
    if _target(folder) is None:
        old = _new_version(folder)
        for name in names:
            plain = folder / name
            if plain.is_file() and not plain.is_symlink():
                try:
                    os.link(plain, old / name)
                except OSError:
                    shutil.copy2(plain, old / name)
        _sync(old)
        _point(folder / CURRENT, old.name)
    for name in names:
        path, through = folder / name, f"{CURRENT}/{name}"
        if path.is_symlink() and os.readlink(path) == through:
            continue
        if path.is_dir() and not path.is_symlink():
            raise UserError(f"cannot write {path}: it is a folder")
        _point(path, through)


def _new_version(folder: Path) -> Path:
    version = Path(tempfile.mkdtemp(prefix=_VERSION, dir=folder))
    os.chmod(version, 0o777 & ~umask())  # mkdtemp's folder is private; the files are not
    return version


def _write(path: Path, content: str | bytes) -> None:
    data = content.encode("utf-8") if isinstance(content, str) else content
    with open(path, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _point(link: Path, target: str) -> None:
    """Make `link` a symlink to `target` in one rename (a link of that name replaced whole)."""
    made = link.with_name(f"{_LINK}{secrets.token_hex(8)}")
    os.symlink(target, made)
    os.replace(made, link)


def _sync(folder: Path) -> None:
    """Flush a folder's entries to the disk, so a power cut keeps what the renames said."""
    fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
