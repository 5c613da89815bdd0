"""The catalog `panel view` drafts against: read once, and again only when its file changes.

A catalog of thousands of tools takes seconds to read, and the new-tool form needs it on every
visit; the file's stamp (device, inode, size, modification time) tells an edit or a
replacement, so a saved change is seen on the next visit without a restart.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ..catalog import Catalog, load_catalog

__all__ = ["CatalogCache"]


class CatalogCache:
    """The last catalog read, by path; thread-safe (pages are served from a thread pool)."""

    def __init__(self, catalog: Catalog | None = None) -> None:
        self._lock = threading.Lock()
        self._catalog = catalog

    def get(self, path: Path) -> Catalog:
        """The catalog at `path`, read again if the file changed since it was read (a
        CatalogError while the file is bad, and each visit tries it again)."""
        with self._lock:
            catalog = self._catalog
            if catalog is None or catalog.path != path or catalog.changed():
                catalog = load_catalog(path)
                self._catalog = catalog
            return catalog
