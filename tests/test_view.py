"""`panel view`: the runs list and comparison pages over a store made with the `fake` backend,
the headers and refusals every request meets, and the command's choice of address and token."""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from panel.errors import UserError
from panel.report.confidence import run_confidence
from panel.run.plan import RunOptions, plan_compare, run_plan
from panel.store import Store
from panel.view.app import create_app
from panel.view.bind import decide_binding
from panel.view.security import CSP, CSRF_FIELD
from panel.view.session import cookie_name

from .conftest import EXAMPLE_CATALOG, hide_module
from .view_session import csrf as csrf_of
from .view_store import build_store, run_ids

BASE = "http://127.0.0.1:8765"


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with a compare run of a hostile tool, a stopped compare run and a review run."""
    return build_store(tmp_path_factory.mktemp("view"))


def _runs(store_dir: Path) -> dict[str, str]:
    return run_ids(store_dir)


@pytest.fixture
def client(store_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(store_dir, token=None, port=8765), base_url=BASE) as test_client:
        yield test_client


def test_runs_list_shows_every_run_with_its_figures(client: TestClient, store_dir: Path) -> None:
    ids = _runs(store_dir)
    page = client.get("/")
    assert page.status_code == 200
    for run_id in ids.values():
        assert f'href="/runs/{run_id}"' in page.text
    assert "fake:other" in page.text  # members
    assert "vLLM" in page.text and "Moondream" in page.text  # tools
    assert page.text.count('class="status status-done"') == 2
    assert page.text.count('class="status status-stopped"') == 1
    assert "3 runs" in page.text


def test_runs_list_filters_by_status_and_tool(client: TestClient, store_dir: Path) -> None:
    ids = _runs(store_dir)
    stopped = client.get("/", params={"status": "stopped"}).text
    assert ids["stopped"] in stopped and ids["hostile"] not in stopped and ids["review"] not in stopped
    by_tool = client.get("/", params={"tool": "moondream2"}).text
    assert ids["stopped"] in by_tool and ids["review"] in by_tool and ids["hostile"] not in by_tool
    both = client.get("/", params={"status": "done", "tool": "moondream2"}).text
    assert ids["review"] in both and ids["stopped"] not in both
    # the form keeps what was chosen
    assert '<option value="moondream2" selected>' in both
    assert client.get("/", params={"status": "bogus"}).status_code == 400


def test_comparison_page_shows_the_tools_and_reviews(client: TestClient, store_dir: Path) -> None:
    page = client.get(f"/runs/{_runs(store_dir)['hostile']}")
    assert page.status_code == 200
    assert "Reviewer scorecard" in page.text and "vLLM" in page.text
    assert page.text.count('<article class="review') == 16  # 2 tools x 4 personas x 2 members
    assert 'href="/static/comparison.css"' in page.text
    # the strict CSP forbids inline style: the bars are classes, the CSS a file
    assert " style=" not in page.text and "<style" not in page.text
    assert re.search(r'class="bar-fill w-\d{1,3}"', page.text)
    css = client.get("/static/comparison.css")
    assert css.headers["content-type"].startswith("text/css")
    assert "--paper" in css.text and ".w-100 { width: 100%; }" in css.text
    assert client.get("/static/view.css").status_code == 200


def test_review_run_lists_its_tools_each_linking_to_its_record(client: TestClient, store_dir: Path) -> None:
    run_id = _runs(store_dir)["review"]
    page = client.get(f"/runs/{run_id}")
    assert page.status_code == 200
    links = re.findall(rf'href="/runs/{run_id}/tools/([^"]+)"', page.text)
    assert links == ["smolvlm2-2b", "mistral-large-3", "moondream2"]
    record = client.get(f"/runs/{run_id}/tools/moondream2")
    assert record.status_code == 200
    assert "Moondream" in record.text and "Reviewer scorecard" in record.text
    assert "Mistral Large" not in record.text


def test_review_run_and_tool_pages_show_each_tools_confidence(client: TestClient, store_dir: Path) -> None:
    run_id = _runs(store_dir)["review"]
    with Store(store_dir, readonly=True) as store:
        found = run_confidence(store, run_id)
    page = client.get(f"/runs/{run_id}").text
    cells = re.findall(r"<td>((?:[0-9.]+ <span class=\"of\">\([^<]*\)</span>|<span class=\"of\">cannot be "
                       r"estimated</span>)[^\n]*)</td>", page)  # fmt: skip
    assert len(cells) == 3
    for cell, c in zip(cells, found.values(), strict=True):
        assert (c.ship is None) == ("cannot be estimated" in cell)
        assert ("contested" in cell) == c.contested
    record = client.get(f"/runs/{run_id}/tools/moondream2").text
    assert '<p class="confidence">' in record


def test_unknown_pages_are_a_404_page(client: TestClient, store_dir: Path) -> None:
    for path in ("/runs/nope", "/nowhere", f"/runs/{_runs(store_dir)['review']}/tools/nope"):
        page = client.get(path)
        assert page.status_code == 404, path
        assert "Back to the runs" in page.text


class _Visible(HTMLParser):
    """The text a reader sees on a page: not the head (its title is the tab's), nor scripts."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.text = ""
        self._hidden = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._hidden += tag in ("head", "script", "style")

    def handle_endtag(self, tag: str) -> None:
        self._hidden -= tag in ("head", "script", "style")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.text += data


def test_panel_view_is_named_once_on_every_page(client: TestClient, store_dir: Path) -> None:
    ids = _runs(store_dir)
    for path in (
        "/",
        "/tools/new",
        f"/runs/{ids['hostile']}",
        f"/runs/{ids['review']}",
        "/editor",
        "/nowhere",
    ):
        page = client.get(path)
        assert page.status_code in (200, 404), path
        seen = _Visible(page.text).text.lower()
        assert seen.count("panel view") == 1, (path, seen.count("panel view"))  # the bar's home link


def test_hostile_text_is_escaped_everywhere(client: TestClient, store_dir: Path) -> None:
    ids = _runs(store_dir)
    pages = [
        client.get("/"),
        client.get(f"/runs/{ids['hostile']}"),
        client.get("/runs/<img src=x onerror=alert(1)>"),
    ]
    for page in pages:
        assert "<script" not in page.text and "<img" not in page.text
        assert "\x1b" not in page.text and "\u202e" not in page.text and "\x07" not in page.text
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in pages[0].text
    assert "&lt;img src=x onerror=" in pages[1].text
    assert "There is no run &#39;&lt;img src=x onerror=alert(1)&gt;&#39;" in pages[2].text  # in a 404


def test_every_response_carries_the_security_headers(store_dir: Path) -> None:
    app = create_app(store_dir, token="s3cret-token", port=8765)
    with TestClient(app, base_url=BASE) as test_client:
        responses = [
            test_client.get("/"),  # refused: no token
            test_client.get("/", headers={"host": "evil.example:8765"}),  # refused: host
            test_client.get("/", headers={"authorization": "Bearer s3cret-token"}),
            test_client.get("/static/view.css", headers={"authorization": "Bearer s3cret-token"}),
            test_client.get("/nowhere", headers={"authorization": "Bearer s3cret-token"}),
        ]
    assert [r.status_code for r in responses] == [401, 403, 200, 200, 404]
    for response in responses:
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"


def test_with_a_token_requests_without_it_are_refused(store_dir: Path) -> None:
    app = create_app(store_dir, token="s3cret-token", host="0.0.0.0", port=8765)
    base = app.guard.base  # type: ignore[attr-defined]
    with TestClient(app, base_url="http://192.0.2.7:8765") as test_client:
        assert test_client.get("/").status_code == 401
        assert test_client.get(f"{base}/").status_code == 401  # the base path alone is not a key
        assert test_client.get("/", headers={"authorization": "Bearer wrong"}).status_code == 403
        assert test_client.get("/", params={"token": "wrong"}).status_code == 403
        assert test_client.get("/", headers={"authorization": "Bearer s3cret-token"}).status_code == 200
        # the first visit brings it in the URL, is sent on without it to the view's base path,
        # and a session cookie (not the token) kept to that path carries it after
        first = test_client.get(
            "/", params={"token": "s3cret-token", "status": "done"}, follow_redirects=False
        )
        assert first.status_code == 303 and first.headers["location"] == f"{base}/?status=done"
        cookie = first.headers["set-cookie"]
        assert cookie.startswith(f"{cookie_name(8765)}=") and "s3cret-token" not in cookie
        assert f"; Path={base};" in cookie and "SameSite=Strict" in cookie and "HttpOnly" in cookie
        assert "Domain" not in cookie and "Max-Age" not in cookie and "Expires" not in cookie
        page = test_client.get(f"{base}/")
        assert page.status_code == 200 and f'href="{base}/runs/' in page.text  # the cookie
        assert test_client.get("/").status_code == 401  # outside the base path it is not sent
        assert test_client.get(base, follow_redirects=False).headers["location"] == f"{base}/"
    # "//host" after the redirect would leave the site
    with TestClient(app, base_url="http://192.0.2.7:8765") as test_client:
        away = test_client.get(
            "http://192.0.2.7:8765//evil.example/?token=s3cret-token", follow_redirects=False
        )
        assert away.headers["location"] == f"{base}/evil.example/"


def _echo_app(store_dir: Path) -> Any:
    async def echo(request: Request) -> Response:
        form = await request.form()
        return PlainTextResponse(f"echo {form.get('text')}")

    return create_app(store_dir, token=None, port=8765, extra_routes=[Route("/echo", echo, methods=["POST"])])


def test_a_post_needs_the_csrf_token_of_its_session(store_dir: Path) -> None:
    with TestClient(_echo_app(store_dir), base_url=BASE) as test_client:
        # no session yet: refused, and the response opens one
        refused = test_client.post("/echo", data={"text": "hi", CSRF_FIELD: "guess"})
        assert refused.status_code == 403
        assert "SameSite=Strict" in refused.headers["set-cookie"]
        csrf = csrf_of(test_client)
        assert test_client.post("/echo", data={"text": "hi"}).status_code == 403
        assert test_client.post("/echo", data={"text": "hi", CSRF_FIELD: "x" * 43}).status_code == 403
        accepted = test_client.post("/echo", data={"text": "hi", CSRF_FIELD: csrf})
        assert accepted.status_code == 200 and accepted.text == "echo hi"  # the body reaches the route
        assert (
            test_client.post("/echo", data={"text": "hi"}, headers={"x-csrf-token": csrf}).status_code == 200
        )
        other_site = test_client.post(
            "/echo", data={"text": "hi", CSRF_FIELD: csrf}, headers={"origin": "http://evil.example"}
        )
        assert other_site.status_code == 403


def _form_tokens(html: str) -> list[str]:
    """The CSRF field's value in each POST form of a page ('' for a form without the field)."""
    forms = re.findall(r'<form[^>]*method="post".*?</form>', html, re.DOTALL)
    return [(re.findall(rf'name="{CSRF_FIELD}" value="([^"]*)"', form) or [""])[0] for form in forms]


def test_pages_give_forms_the_csrf_token(store_dir: Path) -> None:
    with TestClient(_echo_app(store_dir), base_url=BASE) as test_client:
        page = test_client.get("/")
        assert page.cookies.get(cookie_name(8765))
        tokens = _form_tokens(page.text)
        assert tokens and all(token == tokens[0] != "" for token in tokens)  # every form, one token
        # the token the form holds is the one this session's POSTs are checked against
        sent = test_client.post("/echo", data={"text": "hi", CSRF_FIELD: tokens[0]})
        assert sent.status_code == 200 and sent.text == "echo hi"
        again = test_client.get("/")
        assert "set-cookie" not in again.headers  # one token per browser session, kept
        assert _form_tokens(again.text) == tokens
    with TestClient(_echo_app(store_dir), base_url=BASE) as other_browser:
        assert _form_tokens(other_browser.get("/").text)[0] != tokens[0]  # another session, another token


def test_a_host_header_naming_another_host_is_refused(client: TestClient) -> None:
    assert client.get("/", headers={"host": "attacker.example:8765"}).status_code == 403
    assert client.get("/", headers={"host": "127.0.0.1:9999"}).status_code == 403
    assert client.get("/", headers={"host": "localhost:8765"}).status_code == 200
    assert client.get("/", headers={"host": "[::1]:8765"}).status_code == 200


def test_no_store_yet_is_a_page_not_an_error(tmp_path: Path) -> None:
    with TestClient(create_app(tmp_path / "runs", token=None), base_url=BASE) as test_client:
        page = test_client.get("/")
    assert page.status_code == 200 and "No runs yet" in page.text


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "192.0.2.7", "::", "example.org", "127.0.0.1", "localhost", "::1"]
)
def test_every_address_gets_a_generated_token_by_default(host: str) -> None:
    binding = decide_binding(host, 8765, None)
    assert binding.generated and binding.token and len(binding.token) >= 24
    assert binding.first_url.endswith(f"?token={binding.token}")
    assert decide_binding(host, 8765, "given").token == "given"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_no_token_is_an_explicit_choice_on_loopback_only(host: str) -> None:
    binding = decide_binding(host, 8765, None, no_token=True)
    assert binding.token is None and not binding.generated and binding.loopback
    with pytest.raises(UserError, match="--no-token and a token"):
        decide_binding(host, 8765, "given", no_token=True)
    with pytest.raises(UserError, match=r"--no-token: 0\.0\.0\.0 is not a loopback address"):
        decide_binding("0.0.0.0", 8765, None, no_token=True)


def test_the_command_refuses_a_blank_token_and_a_busy_port(cli: Any, tmp_path: Path) -> None:
    result = cli("view", "--runs", str(tmp_path), "--host", "0.0.0.0", "--token", " ")
    assert result.code == 2 and "--token" in result.err
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli("view", "--runs", str(tmp_path), "--port", str(port))
    assert result.code == 2 and f"cannot listen on 127.0.0.1 port {port}" in result.err


def test_the_command_names_the_extra_when_it_is_missing(cli: Any, tmp_path: Path, monkeypatch: Any) -> None:
    hide_module(monkeypatch, "uvicorn")
    result = cli("view", "--runs", str(tmp_path))
    assert result.code == 2
    assert (
        result.err.strip()
        == "error: panel view needs the Python package 'uvicorn': pip install 'toolpanel[view]'"
    )


def test_runs_list_pages(client: TestClient, store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from panel.view import data

    monkeypatch.setattr(data, "PER_PAGE", 2)
    ids = _runs(store_dir)
    first, second = client.get("/").text, client.get("/", params={"page": "2"}).text
    assert "3 runs, page 1 of 2" in first and 'rel="next"' in first and 'rel="prev"' not in first
    assert ids["review"] in first and ids["stopped"] in first and ids["hostile"] not in first
    assert ids["hostile"] in second and 'rel="prev"' in second
    assert "page 2 of 2" in client.get("/", params={"page": "99"}).text  # past the end: the last page
    only_done = client.get("/", params={"status": "done", "page": "x"}).text
    assert "2 runs" in only_done and "page" not in only_done.split("<caption>")[1].split("</caption>")[0]


def _files(folder: Path) -> dict[str, str]:
    """Every file under `folder`, by its path, with a digest of its bytes; not SQLite's
    `-shm`, the WAL's shared-memory index, where every reader leaves its read mark."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.endswith("-shm")
    }


def test_viewing_takes_no_lock_and_writes_nothing(tmp_path: Path) -> None:
    """A run can be going (its writer holding the store's lock) while the view reads."""
    runs = tmp_path / "runs"
    plan = plan_compare(["ollama", "vllm"], catalog=EXAMPLE_CATALOG, backends=["fake"])
    with Store(runs) as writer:
        run_id, _ = asyncio.run(run_plan(plan, writer, "panel compare", options=RunOptions(kind="compare")))
        before = _files(runs)
        with TestClient(create_app(runs, token=None), base_url=BASE) as test_client:
            assert test_client.get("/").status_code == 200
            assert test_client.get(f"/runs/{run_id}").status_code == 200
        assert _files(runs) == before


def test_a_form_from_a_hidden_origin_is_refused_even_with_a_matching_token(store_dir: Path) -> None:
    """`Origin: null` is another page (a sandboxed frame, a page hiding its origin): its POST is
    refused even when it set the CSRF cookie itself and sends the same value; the view's own
    forms carry their real origin (`Referrer-Policy: same-origin`)."""
    with TestClient(_echo_app(store_dir), base_url=BASE) as test_client:
        csrf = csrf_of(test_client)
        own = test_client.post("/echo", data={"text": "hi", CSRF_FIELD: csrf}, headers={"origin": BASE})
        assert own.status_code == 200 and own.text == "echo hi"
        hidden = test_client.post("/echo", data={"text": "hi", CSRF_FIELD: csrf}, headers={"origin": "null"})
        assert hidden.status_code == 403


def test_the_token_options_refuse_what_would_expose_the_view(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = importlib.import_module("panel.cli.view")  # the module, not the command

    served: list[Any] = []
    monkeypatch.setattr(
        view, "_serve", lambda runs, binding, sock, *rest: (served.append(binding), sock.close())
    )
    monkeypatch.delenv("PANEL_VIEW_TOKEN", raising=False)
    runs = ["view", "--runs", str(tmp_path), "--port", "0"]
    refused = cli(*runs, "--host", "0.0.0.0", "--no-token")
    assert refused.code == 2 and "--no-token: 0.0.0.0 is not a loopback address" in refused.err
    assert cli(*runs, "--no-token", "--token", "abc").code == 2
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file\n", encoding="utf-8")
    token_file.chmod(0o644)
    readable = cli(*runs, "--token-file", str(token_file))
    assert readable.code == 2 and "other accounts may read it (mode 644); chmod 600 it" in readable.err
    token_file.chmod(0o600)
    assert cli(*runs, "--token-file", str(token_file)).code == 0 and served[-1].token == "from-a-file"
    given = cli(*runs, "--token", "on-the-command-line")
    assert given.code == 0 and "shows in every account's process list" in given.err
    monkeypatch.setenv("PANEL_VIEW_TOKEN", "from-the-environment")
    quiet = cli(*runs)
    assert quiet.code == 0 and quiet.err == "" and served[-1].token == "from-the-environment"
    monkeypatch.delenv("PANEL_VIEW_TOKEN")
    assert cli(*runs).code == 0 and served[-1].generated and len(served[-1].token) >= 24
    assert cli(*runs, "--no-token").code == 0 and served[-1].token is None
    assert [b.host for b in served] == ["127.0.0.1"] * 5
