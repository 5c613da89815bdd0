"""The distribution's name and version, and the install line built from them.

The import package is `panel`, but `panel` on PyPI is another project (HoloViz Panel), so
this project is distributed as `toolpanel`. Every install hint is written from here.
"""

from __future__ import annotations

__all__ = ["DISTRIBUTION", "SCRIPT", "__version__", "install_hint"]

DISTRIBUTION = "toolpanel"
#: the console script that clashes with nothing; `panel` is installed too
SCRIPT = "toolpanel"
__version__ = "0.1.0"


def install_hint(extra: str) -> str:
    """The pip command that installs an optional extra of this project."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"
