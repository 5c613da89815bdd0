"""One writer per runs folder: an exclusive `flock` on `panel.lock`, naming its holder.

Two processes writing one store would each send every request the other has not yet
answered. The writer holds the lock for as long as its store is open; the file says which
process and which run hold it, so a refused second writer can say so. The kernel drops a
flock when its process dies, so a crash (even kill -9) leaves no stale lock to clear.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path

from ..errors import UserError

__all__ = ["StoreBusyError", "WriteLock", "writer_alive"]

LOCK_NAME = "panel.lock"


class StoreBusyError(UserError):
    """Another process is writing to the same runs folder."""


class WriteLock:
    """The held lock of a runs folder; `release()` (or the process's end) lets it go."""

    def __init__(self, root: Path) -> None:
        try:
            fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise UserError(f"cannot write in the runs folder {root}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise StoreBusyError(
                f"{root} is in use by {holder}: wait for it to finish, or give another --out"
            ) from None
        self._fd: int | None = fd
        self.claim(None)

    def claim(self, run_id: str | None) -> None:
        """Write which process, making which run, holds the lock."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, json.dumps({"pid": os.getpid(), "run": run_id}).encode(), 0)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


def writer_alive(root: Path) -> bool:
    """Whether a live process holds the lock; a reader asks without taking it or making a file."""
    try:
        fd = os.open(root / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return False
    try:
        pid = int(json.loads(os.pread(fd, 4096, 0))["pid"])
        os.kill(pid, 0)
    except PermissionError:
        return True  # alive, run by another user
    except (OSError, ValueError, TypeError, KeyError):
        return False
    finally:
        os.close(fd)
    return True


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        holder = json.loads(os.pread(fd, 4096, 0))
        pid, run = int(holder["pid"]), holder.get("run")
        return f"run {run} (pid {pid})" if run else f"another panel process (pid {pid})"
    return "another panel process"
