"""The one end-of-run path (`panel.run.ending.running`), used by `run_plan` and regenerate: the
files are written before the run takes the status they carry, a failure leaves the run
`failed`, Ctrl-C or a cancel leaves it `interrupted`, and the members' clients are closed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from panel.backends.fake import FakeBackend
from panel.run.ending import running
from panel.store import Store


class Closing(FakeBackend):
    closed = 0

    async def aclose(self) -> None:
        self.closed += 1


def _store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "runs")
    store.create_run("r", "test", None, {}, [], [])
    return store


def _status(store: Store) -> str:
    run = store.get_run("r")
    assert run is not None
    return run.status


def test_the_files_are_written_while_the_run_is_running_then_it_takes_their_status(tmp_path: Path) -> None:
    store, backend = _store(tmp_path), Closing()
    written: list[tuple[str, str, str]] = []

    def write(run_id: str, status: str) -> None:
        written.append((run_id, status, _status(store)))

    async def work() -> None:
        async with running(store, "r", [backend]) as end:
            assert _status(store) == "running"
            end.finish("stopped", write)

    asyncio.run(work())
    assert written == [("r", "stopped", "running")]
    assert _status(store) == "stopped" and backend.closed == 1


def test_a_write_that_fails_leaves_the_run_failed_and_the_members_closed(tmp_path: Path) -> None:
    store, backend = _store(tmp_path), Closing()

    def write(run_id: str, status: str) -> None:
        raise OSError("disk full")

    async def work() -> None:
        async with running(store, "r", [backend]) as end:
            end.finish("done", write)

    with pytest.raises(OSError, match="disk full"):
        asyncio.run(work())
    assert _status(store) == "failed" and backend.closed == 1


@pytest.mark.parametrize("stop", [KeyboardInterrupt, asyncio.CancelledError])
def test_ctrl_c_or_a_cancel_leaves_the_run_interrupted_for_resume(
    tmp_path: Path, stop: type[BaseException]
) -> None:
    store, backend = _store(tmp_path), Closing()

    async def work() -> None:
        async with running(store, "r", [backend]):
            raise stop

    with pytest.raises(stop):
        asyncio.run(work())
    assert _status(store) == "interrupted" and backend.closed == 1


def test_a_run_left_with_batches_in_flight_writes_no_files(tmp_path: Path) -> None:
    store = _store(tmp_path)

    async def work() -> None:
        async with running(store, "r", []) as end:
            end.leave("interrupted")

    asyncio.run(work())
    assert _status(store) == "interrupted"
