"""What :mod:`panel.report.confidence` remembers between calls, so that a large run's judges
are fitted once, not once a page, a command or an edit.

Three memos, each bounded, locked and single-flight (threads that miss the same key wait for
the one computing it, so concurrent misses pay one fit):

* the fit, keyed on a digest of what it is fitted to (every judged tool's votes in order, and
  the editors' reliabilities): a change that leaves the fit's input as it was (any editor's
  edit: the fit reads the models' verdicts) finds the fit already made;
* each tool's previous run and its verdict, keyed on the earlier runs it reads and their
  state (``Store.run_state``): an edit of this run leaves it as it was;
* the run's confidence whole, keyed on the run's state and the editors' labels, for the
  pages and commands that ask for it again and again while nothing changed.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from ..store import Store

__all__ = ["Memo", "clear", "digest", "previous_key"]

V = TypeVar("V")


@dataclass
class _Slot(Generic[V]):
    done: threading.Event = field(default_factory=threading.Event)
    value: V | None = None
    failed: bool = False
    waiting: int = 0


class Memo(Generic[V]):
    """At most ``size`` values by key, the least recently used dropped first. :meth:`get`
    computes a missing value once however many threads ask for it at the same time; a
    computation that raises is not remembered (the waiting threads then try themselves)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._done: OrderedDict[Hashable, V] = OrderedDict()
        self._running: dict[Hashable, _Slot[V]] = {}

    def get(self, key: Hashable, make: Callable[[], V]) -> V:
        while True:
            with self._lock:
                if key in self._done:
                    self._done.move_to_end(key)
                    return self._done[key]
                slot = self._running.get(key)
                mine = slot is None
                if slot is None:
                    slot = self._running[key] = _Slot()
                else:
                    slot.waiting += 1
            if mine:
                return self._make(key, slot, make)
            slot.done.wait()
            if not slot.failed:
                return slot.value  # type: ignore[return-value]

    def _make(self, key: Hashable, slot: _Slot[V], make: Callable[[], V]) -> V:
        try:
            value = make()
        except BaseException:
            with self._lock:
                slot.failed = True
                del self._running[key]
            slot.done.set()
            raise
        with self._lock:
            self._done[key] = value
            while len(self._done) > self.size:
                self._done.popitem(last=False)
            slot.value = value
            del self._running[key]
        slot.done.set()
        return value

    def waiting(self, key: Hashable) -> int:
        """How many threads wait for the value of ``key`` being computed (0 when none is)."""
        with self._lock:
            slot = self._running.get(key)
            return 0 if slot is None else slot.waiting

    def clear(self) -> None:
        with self._lock:
            self._done.clear()


#: fits of the judges (a 10,000-tool fit holds a few MB of estimates)
FITS: Memo[Any] = Memo(4)
#: each run's tools' previous runs and verdicts
BEFORE: Memo[Any] = Memo(8)
#: each run's confidence whole
RESULTS: Memo[Any] = Memo(4)


def clear() -> None:
    """Forget everything remembered (a benchmark's cold start; a test's fresh one)."""
    for memo in (FITS, BEFORE, RESULTS):
        memo.clear()


def digest(tools: Mapping[str, Any], reliabilities: Mapping[Any, Any] | None) -> str:
    """A digest of a fit's input: each tool as it is (in the run's order), then the editors'
    reliabilities (in a stable order). Two inputs with the same digest fit alike."""
    h = hashlib.blake2b(digest_size=20)
    for tool_id, tool in tools.items():
        h.update(repr((tool_id, tool)).encode())
    h.update(b"\0reliabilities")
    for judge, counts in sorted((reliabilities or {}).items()):
        h.update(repr((judge, [list(map(float, row)) for row in counts])).encode())
    return h.hexdigest()


def previous_key(store: Store, run_id: str, earlier: Mapping[str, str]) -> tuple[Hashable, ...]:
    """The key of a run's previous verdicts: the store, the run, each tool's earlier run
    (``Store.previous_runs``) and the state of each earlier run read (an edit or a
    regenerated review there moves it; one in this run does not)."""
    states = tuple((other, store.run_state(other)) for other in sorted(set(earlier.values())))
    return (str(store.path), run_id, tuple(sorted(earlier.items())), states)
