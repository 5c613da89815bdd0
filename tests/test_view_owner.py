"""`panel view` belongs to the one who started it: what another account of the machine, a
page on another port of the host, or a malformed request gets from it.

- the command, run as it is by default, prints one URL with a made token, and without that
  token nothing is read or written (401); the token reaches no log and no file of the store;
- two views on one host keep their own session cookies, and a request to another port of the
  host carries no cookie that opens either (a cookie jar that keeps to hosts and paths as a
  browser does, against real servers);
- a form the view cannot read, or a review number past any, is a 4xx with the usual headers;
- what an attacker's requests try: a session from another view, a tampered cookie, a stale
  CSRF token, another port's Origin.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from panel.store import Store
from panel.view.app import create_app
from panel.view.security import CSP, CSRF_FIELD

from .browser import cookie_recorder, serve
from .test_view import BASE
from .view_session import csrf, sign_in

ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 60
#: the limits of a form (panel.view.security's MAX_FIELDS and MAX_FORM_BYTES)
MAX_FIELDS, MAX_FORM_BYTES = 1000, 1 << 20


def _version(page: str, form_class: str) -> str:
    form = page.split(f'class="{form_class}"')[1].split("</form>")[0]
    found = re.search(r'name="version" value="([0-9a-f]+)"', form)
    assert found is not None
    return found.group(1)


@pytest.fixture
def view(runs_dir: Path, made: str) -> Iterator[tuple[str, str, subprocess.Popen[str], list[str]]]:
    """`panel view` as its owner starts it, with no token option: (the printed URL, the
    origin, the process, its stdout lines so far)."""
    env = {k: v for k, v in os.environ.items() if k != "PANEL_VIEW_TOKEN"}
    env.update(PYTHONUNBUFFERED="1", PYTHONPATH=str(ROOT), COLUMNS="300")
    command = [sys.executable, "-m", "panel", "view", "--runs", str(runs_dir), "--port", "0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or []], daemon=True)
    reader.start()
    seen: list[str] = []
    try:
        while not any(line.startswith("Ctrl-C") for line in seen):
            seen.append(lines.get(timeout=WAIT_S))
        opened = [line.split("open: ", 1)[1].strip() for line in seen if line.startswith("open: ")]
        assert len(opened) == 1, f"no URL to open printed: {seen}"
        origin = opened[0].split("/?", 1)[0]
        yield opened[0], origin, proc, seen
    finally:
        proc.terminate()
        proc.wait(WAIT_S)
        reader.join(WAIT_S)
        while not lines.empty():
            seen.append(lines.get())
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def test_by_default_no_one_without_the_printed_token_reads_or_writes(
    view: tuple[str, str, subprocess.Popen[str], list[str]], runs_dir: Path, made: str
) -> None:
    url, origin, proc, printed = view
    token = url.split("?token=", 1)[1]
    assert len(token) >= 24
    # another account of the machine: it can reach 127.0.0.1, but has no token
    stranger = [
        httpx.get(f"{origin}/"),
        httpx.get(f"{origin}/runs/{made}"),
        httpx.get(f"{origin}/editor"),
        httpx.post(f"{origin}/runs/{made}/approve-all", data={"version": "x"}),
        httpx.post(f"{origin}/runs/{made}/publish", data={"anyway": "1"}),
        httpx.post(f"{origin}/runs/{made}/review/regenerate", data={"reason": "spend their keys"}),
        httpx.get(f"{origin}/", params={"token": "guess"}),
        httpx.get(f"{origin}/", headers={"authorization": "Bearer guess"}),
    ]
    assert [r.status_code for r in stranger] == [401] * 6 + [403] * 2
    assert all(r.headers["content-security-policy"] == CSP for r in stranger)
    with Store(runs_dir, readonly=True) as store:
        assert store.approvals(made) == {}
    assert not (runs_dir / made / "published").exists()

    # the owner clicks the printed URL: sent on, without the token, into the view
    with httpx.Client(follow_redirects=True, timeout=WAIT_S) as owner:
        page = owner.get(url)
        assert page.status_code == 200 and "token" not in str(page.url)
        base = httpx.URL(str(page.url)).path.rstrip("/")
        name_form = owner.get(f"{origin}{base}/editor").text
        token_field = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', name_form)
        assert token_field is not None
        form = {CSRF_FIELD: token_field.group(1)}
        assert (
            owner.post(f"{origin}{base}/editor", data={**form, "editor": "Ana", "next": "/"}).status_code
            == 200
        )
        version = _version(owner.get(f"{origin}{base}/runs/{made}").text, "approve-all")
        approved = owner.post(f"{origin}{base}/runs/{made}/approve-all", data={**form, "version": version})
        assert approved.status_code == 200 and "4 of 4 reviews approved" in approved.text
        published = owner.post(f"{origin}{base}/runs/{made}/publish", data=form)
        assert published.status_code == 200 and "Published" in published.text
    proc.terminate()
    _, err = proc.communicate(timeout=WAIT_S)
    # the token: once, in the URL on the owner's terminal; in no log, no file of the store
    assert sum(line.count(token) for line in printed) == 1 and token not in err
    for path in runs_dir.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    record = (runs_dir / made / "published" / "comparison.json").read_text(encoding="utf-8")
    assert '"published_by": "Ana"' in record and '"approved_by": "Ana"' in record


def test_two_views_keep_their_cookies_and_another_port_gets_none(made: str, runs_dir: Path) -> None:
    first, second = create_app(runs_dir, token="first-t0ken"), create_app(runs_dir, token="second-t0ken")
    other = cookie_recorder()
    with (
        serve(first) as one,
        serve(second) as two,
        serve(other) as elsewhere,
        httpx.Client(follow_redirects=True, timeout=WAIT_S) as browser,  # keeps cookies as a browser does
    ):
        for origin, token in ((one, "first-t0ken"), (two, "second-t0ken")):
            assert browser.get(f"{origin}/", params={"token": token}).status_code == 200
        cookies = list(browser.cookies.jar)
        assert len(cookies) == 2 and len({c.name for c in cookies}) == 2  # one each, by port
        assert not any("t0ken" in str(c.value) for c in cookies)  # never the token itself
        # neither overwrote the other: both views still open, each under its own path
        for origin, app in ((one, first), (two, second)):
            page = browser.get(f"{origin}{app.guard.base}/runs/{made}")  # type: ignore[attr-defined]
            assert page.status_code == 200 and "Reviewer scorecard" in page.text
        # a link to another port of the host, as a catalog could hold one
        for path in ("/", f"/runs/{made}", "/static/view.css"):
            assert browser.get(f"{elsewhere}{path}").status_code == 200
        assert other.state.seen == ["", "", ""]  # no cookie of either view went there
        # a session of the first view opens nothing of the second, even sent there by hand
        (mine,) = [c for c in cookies if c.name.endswith(one.rsplit(":", 1)[1])]
        stolen = {mine.name.replace(one.rsplit(":", 1)[1], two.rsplit(":", 1)[1]): str(mine.value)}
        base_two = second.guard.base  # type: ignore[attr-defined]
        assert httpx.get(f"{two}{base_two}/", cookies=stolen).status_code == 401


@pytest.fixture
def client(made: str, runs_dir: Path) -> Iterator[TestClient]:
    app = create_app(runs_dir, token=None, port=8765)
    with TestClient(app, base_url=BASE, raise_server_exceptions=False) as test_client:
        yield test_client


def _headers_ok(response: Any) -> bool:
    return bool(
        response.headers.get("content-security-policy") == CSP
        and response.headers.get("x-content-type-options") == "nosniff"
    )


def _fields(count: int, token: str) -> str:
    return "&".join([*(f"f{i}=1" for i in range(count)), f"{CSRF_FIELD}={token}"])


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("multipart without boundary", 400),
        ("a file part", 400),
        ("too many fields", 400),
        ("too many multipart fields", 400),
        ("a body past the limit", 413),
    ],
)
def test_a_form_the_view_cannot_read_is_a_4xx_with_the_usual_headers(
    client: TestClient, made: str, runs_dir: Path, case: str, status: int
) -> None:
    token, url = csrf(client, f"/runs/{made}"), f"/runs/{made}/approve-all"
    form = "application/x-www-form-urlencoded"
    sent: dict[str, Any] = {
        "multipart without boundary": {
            "content": b"--x\r\n\r\n",
            "headers": {"content-type": "multipart/form-data"},
        },
        "a file part": {"data": {CSRF_FIELD: token}, "files": {"upload": ("a.txt", b"hello")}},
        "too many fields": {"content": _fields(MAX_FIELDS + 1, token), "headers": {"content-type": form}},
        "too many multipart fields": {
            "data": {CSRF_FIELD: token, **{f"f{i}": "1" for i in range(MAX_FIELDS)}},
            "files": {"x": (None, b"1")},
        },
        "a body past the limit": {
            "content": b"a=" + b"x" * MAX_FORM_BYTES,
            "headers": {"content-type": form},
        },
    }[case]
    response = client.post(url, **sent)
    assert response.status_code == status, response.text
    assert _headers_ok(response)
    with Store(runs_dir, readonly=True) as store:
        assert store.approvals(made) == {}


def test_a_review_number_past_any_is_a_4xx_with_the_usual_headers(client: TestClient, made: str) -> None:
    huge = str(1 << 63)  # 9223372036854775808: past SQLite's integers
    review = {"tool": "ollama", "persona": "builder", "member": "fake:schema", "repeat": huge}
    token = csrf(client, f"/runs/{made}")
    responses = [
        client.get(f"/runs/{made}/review/edit", params=review),
        client.post(f"/runs/{made}/review/edit", data={**review, CSRF_FIELD: token, "verdict_note": "x y"}),
        client.post(f"/runs/{made}/review/approve", data={**review, CSRF_FIELD: token, "approved": "1"}),
        client.post(f"/runs/{made}/review/regenerate", data={**review, CSRF_FIELD: token, "reason": "x"}),
        client.get("/", params={"page": huge}),
        client.get("/jobs/nope/events", params={"after": huge}),
    ]
    assert [r.status_code for r in responses] == [404, 404, 404, 404, 200, 404]
    assert all(_headers_ok(r) for r in responses)


def test_what_an_attacker_tries_is_refused(made: str, runs_dir: Path) -> None:
    app, other = (
        create_app(runs_dir, token="t0ken", port=8765),
        create_app(runs_dir, token="t0ken", port=8765),
    )
    base = app.guard.base  # type: ignore[attr-defined]
    with TestClient(app, base_url=BASE) as owner, TestClient(other, base_url=BASE) as elsewhere:
        owner.get("/", params={"token": "t0ken"})
        sign_in(owner, "Ana", base)
        token = csrf(owner, f"{base}/editor")
        (session,) = list(owner.cookies.jar)
        url = f"{base}/runs/{made}/approve-all"
        version = _version(owner.get(f"{base}/runs/{made}").text, "approve-all")
        form = {CSRF_FIELD: token, "version": version}
        # the same token, another view (another start): its session is not this one's
        elsewhere.cookies.set(session.name, str(session.value), path=base)
        assert elsewhere.get(f"{base}/").status_code == 401
        # a cookie whose payload (the session id, the editor's name) was edited
        payload, mac = str(session.value).rsplit(".", 1)
        with TestClient(app, base_url=BASE) as forger:
            forger.cookies.set(session.name, f"{payload[:-2]}AA.{mac}", path=base)
            assert forger.get(f"{base}/").status_code == 401
        # a page on another port of the host sets a cookie of the same name for the whole
        # host: the browser sends both, and the view still finds its own
        owner.cookies.set(session.name, "pushed-aside", path="/")
        assert owner.get(f"{base}/runs/{made}").status_code == 200
        # a page on another port of the host posting the owner's form
        other_port = owner.post(url, data=form, headers={"origin": "http://127.0.0.1:9999"})
        assert other_port.status_code == 403
        # a stale CSRF token: from the session before a new token visit
        owner.get("/", params={"token": "t0ken"})  # a new session for this browser
        stale = owner.post(url, data=form)
        assert stale.status_code == 403
        # a CSRF token that matches nothing, with the right session
        assert owner.post(url, data={**form, CSRF_FIELD: "A" * 43}).status_code == 403
        # the token in a form field is not a way in
        assert owner.post(f"/runs/{made}/approve-all", data={**form, "token": "t0ken"}).status_code == 401
    with Store(runs_dir, readonly=True) as store:
        assert store.approvals(made) == {}


def test_a_request_with_the_bearer_token_names_its_editor_in_a_header(made: str, runs_dir: Path) -> None:
    app = create_app(runs_dir, token="t0ken", port=8765)
    auth = {"authorization": "Bearer t0ken"}
    with TestClient(app, base_url=BASE) as script:
        version = _version(script.get(f"/runs/{made}", headers=auth).text, "approve-all")
        nameless = script.post(f"/runs/{made}/approve-all", data={"version": version}, headers=auth)
        assert nameless.status_code == 400 and "needs your name first" in nameless.text
        named = {**auth, "x-panel-editor": "release bot"}
        done = script.post(f"/runs/{made}/approve-all", data={"version": version}, headers=named)
        assert done.status_code == 200 and "4 of 4 reviews approved" in done.text
    with Store(runs_dir, readonly=True) as store:
        assert {a.editor for a in store.approvals(made).values()} == {"release bot"}
