"""Publishing replaces the three files as one set: killed (SIGKILL) at any step, the published
folder shows the old three or the new three, never a mix, and the next publish leaves no
temporary file or folder behind.

A forked child publishes with an audit hook that counts every operation that changes a file
(an open for writing, mkdir, rename, symlink, link, remove, chmod ...) and kills itself with
SIGKILL at the Nth; the test runs N = 1, 2, ... until the child finishes untouched, so every
step of a publish is a place it was killed at once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from panel.report.publish import publish
from panel.store import CellKey, Store

KEY = CellKey("ollama", "builder", "fake:schema")
OLD, NEW = "Old note 7f3a", "New note 9c2e"
NAMES = ("comparison.html", "comparison.json", "comparison.md")
CURRENT = ".current"  # the symlink naming the version in force (panel.report.fileset)
_MUTATING = {"os.mkdir", "os.rename", "os.symlink", "os.link", "os.remove", "os.rmdir", "os.chmod",
             "os.truncate", "shutil.rmtree", "shutil.copyfile"}  # fmt: skip
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")


def _changes_a_file(event: str, args: tuple[Any, ...]) -> bool:
    if event in _MUTATING:
        return True
    if event == "open" and len(args) >= 3:
        mode, flags = args[1], args[2]
        return (isinstance(mode, str) and any(c in mode for c in "wxa+")) or bool(
            isinstance(flags, int) and flags & _WRITE_FLAGS
        )
    return False


def _publish_killed_at(runs: Path, run_id: str, folder: Path, step: int) -> bool:
    """Publish in a child killed at its `step`-th file-changing operation; True if it finished."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 4
        try:
            with Store(runs) as store:
                seen = 0

                def hook(event: str, args: tuple[Any, ...]) -> None:
                    nonlocal seen
                    if _changes_a_file(event, args):
                        seen += 1
                        if seen == step:
                            os.kill(os.getpid(), signal.SIGKILL)

                sys.addaudithook(hook)
                publish(store, run_id, folder, allow_unapproved=True)
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return False
    assert os.WEXITSTATUS(status) == 0, "the child failed without being killed"
    return True


def _note(runs: Path, run_id: str, note: str) -> None:
    with Store(runs) as store:
        store.edit_review(run_id, KEY, "verdict_note", note, editor="ana")


def _shown(folder: Path, notes: tuple[str, ...]) -> set[str | None]:
    """Which note each published file carries, read through its documented name (None: absent).
    Each file present must be whole: the JSON parses, the page ends."""
    found: set[str | None] = set()
    for name in NAMES:
        path = folder / name
        if not path.is_file():
            found.add(None)
            continue
        text = path.read_text(encoding="utf-8")
        if name.endswith(".json"):
            json.loads(text)
        if name.endswith(".html"):
            assert text.rstrip().endswith("</html>"), name
        (carried,) = [n for n in notes if n in text]
        found.add(carried)
    return found


def _clean(folder: Path) -> None:
    """After a publish that finished, nothing but the three names and the set they show:
    `.current` and the one version it names (no temporary file, no version left over)."""
    extra = sorted(p.name for p in folder.iterdir() if p.name not in NAMES)
    in_force = os.readlink(folder / CURRENT) if (folder / CURRENT).is_symlink() else None
    assert extra in ([], [CURRENT, in_force]), f"left behind: {extra}"


def _kill_at_every_step(runs: Path, run_id: str, folder: Path, before: Path | None, old: str | None) -> int:
    """For N = 1, 2, ...: lay the folder out as `before` (None: no folder), publish the note
    NEW killed at step N, check the folder shows all old or all new, then publish again and
    check it is clean. Returns the steps a whole publish takes."""
    notes = (NEW,) if old is None else (old, NEW)
    step = 0
    while True:
        step += 1
        shutil.rmtree(folder, ignore_errors=True)
        if before is not None:
            shutil.copytree(before, folder, symlinks=True)
        finished = _publish_killed_at(runs, run_id, folder, step)
        shown = _shown(folder, notes)
        assert shown in ({old}, {NEW}), f"killed at step {step}: the folder shows {shown}"
        with Store(runs) as store:
            publish(store, run_id, folder, allow_unapproved=True)  # the next publish
        assert _shown(folder, notes) == {NEW}
        _clean(folder)
        if finished:
            return step - 1
        assert step < 200, "the publish never finished"


def _layout(made: str, runs_dir: Path, tmp_path: Path, kind: str) -> tuple[Path | None, str | None]:
    """The published folder as a publish finds it: none yet, files of the writer before this
    one (with the empty temporary file a kill left), or a set published as it is now."""
    if kind == "none":
        return None, None
    before = tmp_path / "before"
    _note(runs_dir, made, OLD)
    with Store(runs_dir) as store:
        publish(store, made, before, allow_unapproved=True)
    if kind == "plain":
        for name in NAMES:
            content = (before / name).read_bytes()
            (before / name).unlink()
            (before / name).write_bytes(content)
        (before / CURRENT).unlink(missing_ok=True)
        for version in before.glob(".v-*"):
            shutil.rmtree(version)
        (before / ".comparison.html.k2j3x9.tmp").write_bytes(b"")
    return before, OLD


@pytest.mark.parametrize("kind", ["none", "plain", "published"])
def test_a_publish_killed_at_any_step_leaves_all_old_or_all_new(
    made: str, runs_dir: Path, tmp_path: Path, kind: str
) -> None:
    before, old = _layout(made, runs_dir, tmp_path, kind)
    _note(runs_dir, made, NEW)
    folder = tmp_path / "published"
    steps = _kill_at_every_step(runs_dir, made, folder, before, old)
    print(f"{kind}: killed at each of {steps} steps")
    assert steps >= 10  # the folder, three files, the swap, the sweep: each a place to be killed


def test_a_reader_of_one_file_gets_it_from_the_set_in_force(
    made: str, runs_dir: Path, tmp_path: Path
) -> None:
    from panel.report.fileset import read_current

    folder = tmp_path / "published"
    with Store(runs_dir) as store:
        publish(store, made, folder, allow_unapproved=True)
    first = read_current(folder, "comparison.json")
    assert first is not None and first == (folder / "comparison.json").read_bytes()
    assert read_current(folder, "comparison.txt") is None
    assert read_current(tmp_path / "nowhere", "comparison.json") is None
