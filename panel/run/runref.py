"""Which run a command-line argument names: `last`, a whole run id, or a unique prefix of
one (as git takes a short hash). Every command that takes a run reads it here."""

from __future__ import annotations

from collections.abc import Callable

from ..errors import UserError
from ..store import Store

__all__ = ["LAST", "resolve_run"]

#: the word that names the newest run of the kind a command reads
LAST = "last"
#: at most this many candidates are named in the line about an ambiguous prefix
_NAMED = 8


def resolve_run(
    store: Store,
    ref: str,
    *,
    newest: Callable[[], str | None] | None = None,
    what: str = "finished run",
    flag: str = "",
) -> str:
    """The whole id of the run `ref` names; a UserError (one line, exit 2) for none or several.

    `last` is what `newest` finds (default: the newest finished run, as `--since last` and
    `agreement last` read it), `what` says what it looks for, and `flag` (`--resume`,
    `--since`) opens the line of an error.
    """
    said = f"{flag}: " if flag else ""
    if ref == LAST:
        found = (newest or store.latest_run)()
        if found is None:
            named = f"{flag} {LAST}" if flag else f"'{LAST}'"
            raise UserError(f"{named}: no {what} in {store.root}")
        return found
    ids = store.run_ids_from(ref) if ref else []
    if ref in ids or len(ids) == 1:
        return ref if ref in ids else ids[0]
    if not ids:
        raise UserError(f"{said}no run '{ref}' in {store.path}")
    named = ", ".join(ids[:_NAMED]) + (f" and {len(ids) - _NAMED} more" if len(ids) > _NAMED else "")
    raise UserError(f"{said}'{ref}' is the start of {len(ids)} runs: {named}; give more of the id")
