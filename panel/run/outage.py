"""A member whose server went away: the run stops sending to it, and says so in one line.

A refused connection means that nothing listens at the server's address: the server was
never started, or its process died (llama-cpp-python's dies on a grammar it cannot compile).
Sending every remaining review of the member to a closed port would spend each review's
attempts and then store it as failed, which `--resume` would not make again. So once a
review's request has met a refused connection on its last try, the engine stops the member
(`Engine.stop_member`):

- its workers take no more cells, and its requests still in flight end at their next try;
- its cells not yet reviewed, the one whose request met the closed port included, stay
  unstored, so `panel review --resume RUN` makes them once the server is back, as it finishes
  a run stopped at the budget (a failed review would be kept, and count against the member);
- the reason names the server's error and the last of the member's requests the server took
  before it went away: when a request kills a server that takes one at a time, the culprit.
  With several in flight (concurrency above 1, or other members on the same server) it is
  one of the requests the server held, not necessarily the one that killed it.

The rest of the panel carries on; the run ends `stopped`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import BackendError, FatalError

__all__ = ["MemberStopped", "ServerWatch"]


class MemberStopped(FatalError):
    """A request of a member the run has stopped sending to: never sent, never retried."""


@dataclass
class ServerWatch:
    """What one run saw of a member's server."""

    #: requests the server took (answered, or failed with anything but a refused connection)
    answered: int = 0
    #: the last of them, as `tool / persona`
    last_taken: str | None = None
    #: why the run stopped sending to the member, once it has
    stopped: str | None = None

    def took(self, what: str) -> None:
        self.answered += 1
        self.last_taken = what

    def gone(self, exc: BackendError, tries: int) -> str:
        """The reason the member stops, after a request met a closed port on its last try."""
        if self.last_taken is None:
            where = f"its server refused every connection ({tries} tries)"
        else:
            where = (
                f"its server stopped answering after it took the request for {self.last_taken} "
                f"(refused on the last of {tries} tries)"
            )
        return f"{where}: {exc}"
