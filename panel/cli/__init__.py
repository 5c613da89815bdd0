"""The `panel` command. Each module of this package holds a group of commands; they parse,
show progress and print, and the work lives in the rest of the package."""

from __future__ import annotations

from ..errors import BackendBug, UserError
from ..text import for_console
from . import backends, batches, labels, past, personas, rank, run, triage
from .agreement import agreement
from .apps import app, err_console, notices
from .execute import RunInterrupted
from .regenerate import regenerate
from .view import view

__all__ = ["app", "main"]

# Importing a command group registers its commands on `app`.
COMMAND_GROUPS = (backends, batches, labels, past, personas, rank, run, triage)

app.command("agreement")(agreement)
app.command("view")(view)
app.command("regenerate")(regenerate)


def main() -> None:
    notices.reset()  # a run command sets its mode; main may run many times in one process
    try:
        app()
    except (UserError, BackendBug) as exc:
        if notices.mode == "jsonl":
            notices.say("error", f"error: {exc}")
        else:
            err_console.print(f"[bold red]error:[/] {for_console(exc)}", highlight=False, soft_wrap=True)
        raise SystemExit(exc.exit_code) from None
    except RunInterrupted as exc:
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
