"""A browser's session in the view's TestClient tests (not a test module): its CSRF token and
the editor's name, as the view's own pages hand them over.

- `csrf(client)`: the CSRF token the pages' forms carry for this client's session (a first
  GET makes the session when it has none);
- `sign_in(client, name)`: give the editor's name through the view's own form, as a
  browser does once.
"""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from panel.view.security import CSRF_FIELD

__all__ = ["csrf", "sign_in"]

_FIELD = re.compile(rf'name="{CSRF_FIELD}" value="([^"]+)"')


def csrf(client: TestClient, page: str = "/editor") -> str:
    """The CSRF token of `page`'s forms (the editor's name form has one on every view)."""
    found = _FIELD.search(client.get(page).text)
    assert found is not None, f"no form with a CSRF token on {page}"
    return found.group(1)


def sign_in(client: TestClient, name: str = "Ana", base: str = "") -> None:
    """Say who edits, through POST /editor (under the view's `base` path)."""
    token = csrf(client, f"{base}/editor")
    saved = client.post(
        f"{base}/editor", data={CSRF_FIELD: token, "editor": name, "next": "/"}, follow_redirects=False
    )
    assert saved.status_code == 303, saved.text
