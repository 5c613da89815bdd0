"""panel: a panel of LLM personas reviews software and AI tools and drafts comparison records."""

from .catalog import Catalog, Tool, load_catalog
from .personas import Persona, load_personas
from .record import RECORD_VERSION, ComparisonRecord

__all__ = [
    "RECORD_VERSION",
    "Catalog",
    "ComparisonRecord",
    "Persona",
    "Tool",
    "load_catalog",
    "load_personas",
]
__version__ = "0.1.0"
