"""The console entry of both scripts, `toolpanel` and `panel`.

This project's import package is `panel`, a name HoloViz Panel (a data-app framework, also
with a `panel` command) uses too. Installed into one environment, the two write into the same
`panel/` folder and the last one installed wins it. So, before anything imports `panel`, this
module checks which project that import would load and whether the `panel` on PATH is this
project's, and says so in one line with the fix instead of failing with someone else's
traceback. It imports nothing of `panel` until the check has passed.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import shutil
import sys
from pathlib import Path

__all__ = ["check_install", "main"]

DISTRIBUTION = "toolpanel"
# Only this project's `panel/__init__.py` holds this line.
_MARKER = "from ._about import DISTRIBUTION"
_FIX = f"install {DISTRIBUTION} in a virtual environment of its own (pipx install, uv tool install)"


def _read(path: Path, limit: int = 65536) -> str:
    try:
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            return fh.read(limit)
    except OSError:
        return ""


def _foreign_package() -> str | None:
    """Where `import panel` would load another project's package from, else None."""
    spec = importlib.util.find_spec("panel")
    if spec is None or spec.origin is None:
        return None  # not installed at all: the import error itself says so
    origin = Path(spec.origin)
    return None if _MARKER in _read(origin) else str(origin.parent)


def _other_distribution() -> str | None:
    """Another installed distribution that also owns the `panel` folder (HoloViz Panel is `panel`)."""
    try:
        other = importlib.metadata.distribution("panel")
    except importlib.metadata.PackageNotFoundError:
        return None
    return f"{other.metadata['Name']} {other.version}"


def _foreign_script() -> str | None:
    """The `panel` on PATH, when it runs another program than this one."""
    found = shutil.which("panel")
    if found is None:
        return None
    head = _read(Path(found), 4096)
    # pip and uv write console scripts that import their entry module by name.
    return None if "toolpanel" in head or "panel.cli" in head else found


def check_install(invoked_as: str) -> tuple[str | None, str | None, str | None]:
    """About name clashes: (an error that stops the run, a clash inside this environment,
    a clash on PATH), each a line or None."""
    foreign = _foreign_package()
    other = _other_distribution()
    if foreign is not None:
        owner = f" ({other})" if other else ""
        return (
            f"error: `import panel` loads another project's package{owner} from {foreign}, "
            f"not {DISTRIBUTION}'s: {_FIX}",
            None,
            None,
        )
    clash = None
    if other is not None:
        clash = (
            f"note: {other} is installed here too and shares the `panel` package folder with "
            f"{DISTRIBUTION}, so one of them is broken in this environment: {_FIX}"
        )
    on_path = None
    script = _foreign_script() if invoked_as != "panel" else None
    if script is not None:
        on_path = (
            f"note: `panel` on your PATH ({script}) is another program; run this tool as `{DISTRIBUTION}`"
        )
    return None, clash, on_path


def main() -> None:
    invoked_as = Path(sys.argv[0]).name if sys.argv else DISTRIBUTION
    asked_version = sys.argv[1:2] == ["--version"]
    error, clash, on_path = check_install(invoked_as)
    if error is not None:
        sys.stderr.write(error + "\n")
        raise SystemExit(2)
    if clash is not None:
        sys.stderr.write(clash + "\n")
    # Another program named `panel` elsewhere on PATH breaks nothing here: worth a line where a
    # person reads it, not in every script's log.
    if on_path is not None and (asked_version or sys.stderr.isatty()):
        sys.stderr.write(on_path + "\n")
    from panel.cli import main as run

    run()


if __name__ == "__main__":
    main()
