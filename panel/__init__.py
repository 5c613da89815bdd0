"""panel: a panel of LLM personas reviews software and AI tools and drafts comparison records."""

from ._about import DISTRIBUTION, __version__
from .catalog import Catalog, Tool, load_catalog
from .personas import Persona, load_personas
from .report.record import RECORD_VERSION, ComparisonRecord

__all__ = [
    "DISTRIBUTION",
    "RECORD_VERSION",
    "Catalog",
    "ComparisonRecord",
    "Persona",
    "Tool",
    "__version__",
    "load_catalog",
    "load_personas",
]
