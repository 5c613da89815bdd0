"""`panel view`'s new-tool form: checked by the catalog's own rules, each problem said once,
beside its field, as what to type there; a valid tool drafted against a catalog tool as a job,
on the fake backend."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape
from starlette.testclient import TestClient

from panel.catalog import load_catalog
from panel.store import Store
from panel.view.app import create_app
from panel.view.security import CSRF_FIELD
from tests.conftest import EXAMPLE_CATALOG
from tests.factories import TOOL_YAML as _ENTRY

from .test_view_jobs import read_events
from .view_session import csrf as csrf_of

BASE = "http://127.0.0.1:8765"
HOSTILE = "<script>document.title='pwned'</script>"
VALID = {
    "id": "new-tool",
    "name": "New Tool",
    "category": "Developer Tools",
    "tagline": "A tool the catalog does not have yet",
    "description": "It does one thing.\r\nIt does it well.",
    "pricing_model": "freemium",
    "pricing_note": "Free for one seat",
    "links": "home page https://new-tool.example\r\ndocs https://docs.new-tool.example\r\n",
    "facts": "Written in Rust.\r\n\r\nRuns offline.",
    "community_ship": "3",
    "community_skip": "",
    "compare": "ollama",
    "persona": ["builder", "skeptic"],
}


class _Elements(HTMLParser):
    """Each element with an id: its attributes and its text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.by_id: dict[str, dict[str, Any]] = {}
        self._open: list[dict[str, Any]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = {"tag": tag, "attrs": dict(attrs), "text": ""}
        if "id" in element["attrs"]:
            self.by_id[str(element["attrs"]["id"])] = element
        if tag not in ("input", "br", "meta", "link"):
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        if self._open:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element["text"] += data


@pytest.fixture
def client(runs_dir: Path) -> Any:
    app = create_app(runs_dir, token=None, port=8765, backends=["fake"], catalog=EXAMPLE_CATALOG)
    with TestClient(app, base_url=BASE) as test_client:
        yield test_client


def _post(client: TestClient, csrf: bool = True, **fields: Any) -> Any:
    data = {**fields, CSRF_FIELD: csrf_of(client, "/tools/new")} if csrf else fields
    return client.post("/tools/new", data=data, follow_redirects=False)


def _beside(page: str, field: str) -> str:
    """The error shown beside a field, after checking the field points at it."""
    elements = _Elements(page).by_id
    control = elements[f"f-{field}"]["attrs"]
    assert control.get("aria-invalid") == "true" and control.get("aria-describedby") == f"error-{field}"
    error = elements[f"error-{field}"]
    assert error["attrs"]["class"] == "field-error"
    return str(error["text"]).strip()


def _once(page: str, message: str) -> None:
    """`message` is on the page once (beside its field), not again in a summary."""
    assert page.count(str(escape(message))) == 1, message


def test_the_form_has_the_catalogs_fields_the_tools_and_every_persona_checked(client: TestClient) -> None:
    page = client.get("/tools/new")
    assert page.status_code == 200
    elements = _Elements(page.text).by_id
    for name in ("id", "name", "category", "tagline", "description", "pricing_model", "pricing_note",
                 "links", "facts", "community_ship", "community_skip", "compare"):  # fmt: skip
        assert elements[f"f-{name}"]["attrs"]["name"] == name
        assert f'<label for="f-{name}">' in page.text  # every field has its label
        assert "aria-invalid" not in elements[f"f-{name}"]["attrs"]
    models = elements["f-pricing_model"]["text"].split()
    assert models == ["free", "freemium", "paid", "enterprise", "unknown"]
    assert "Ollama (ollama)" in elements["f-compare"]["text"]
    for persona in ("builder", "skeptic", "futurist", "business_analyst"):
        assert "checked" in elements[f"f-persona-{persona}"]["attrs"]
    assert f'name="{CSRF_FIELD}" value="{csrf_of(client, "/tools/new")}"' in page.text
    assert 'href="/tools/new"' in client.get("/").text  # the runs list links to it


def _members_line(page: str) -> str:
    """The text of the form's line on who drafts, tags and runs of spaces taken out."""
    line = page.split('<p class="members"')[1].split("</p>")[0].split(">", 1)[1]
    return " ".join(re.sub(r"<[^>]+>", "", line).split())


def test_the_form_names_the_members_that_will_draft(
    client: TestClient, runs_dir: Path, tmp_path: Path
) -> None:
    config = tmp_path / "panel.toml"
    config.write_text('[[members]]\nspec = "fake"\nname = "one"\n[[members]]\nspec = "fake:schema"\n')
    app = create_app(runs_dir, token=None, port=8765, catalog=EXAMPLE_CATALOG, config=config)
    with TestClient(app, base_url=BASE) as configured:
        page = configured.get("/tools/new").text
    assert "the configured members" not in page
    assert _members_line(page) == f"Drafted by the 2 members one, fake:schema (from {config})."
    assert _members_line(client.get("/tools/new").text) == "Drafted by the member fake."  # the app's -b


def test_a_bad_id_is_told_what_to_type_not_the_pattern(client: TestClient, tmp_path: Path) -> None:
    refused = _post(client, **{**VALID, "id": "Bad Id!"})
    assert refused.status_code == 400
    said = _beside(refused.text, "id")
    assert said == (
        "An id is lower-case letters, digits, dots, dashes and underscores, starting with a letter "
        "or digit; e.g. my-tool (you typed 'Bad Id!')."
    )
    assert "should match pattern" not in refused.text and "^[a-z0-9]" not in refused.text
    _once(refused.text, said)
    assert not (tmp_path / "runs").exists()


def test_every_fields_problem_shows_once_beside_it_with_what_was_typed(
    client: TestClient, runs_dir: Path
) -> None:
    typed = {
        **VALID,
        "id": "Bad Id!",
        "name": "  ",
        "community_ship": "many",
        "community_skip": "-3",
        "links": "docs ftp://x.example",
    }
    refused = _post(client, **typed)
    assert refused.status_code == 400
    said = {
        "name": "Required: type the tool's name.",
        "community_ship": "Type a whole number of votes, e.g. 12 (you typed 'many').",
        "community_skip": "Votes cannot be negative: type 0 or more (you typed '-3').",
        "links": "Link 'docs' must be an http(s) URL, got 'ftp://x.example'.",
    }
    for field, message in said.items():
        assert _beside(refused.text, field) == message
        _once(refused.text, message)
    assert _beside(refused.text, "id").startswith("An id is lower-case letters")
    for validator_words in ("Input should be", "Value error", "field '", "missing required field"):
        assert validator_words not in refused.text
    elements = _Elements(refused.text).by_id
    assert "aria-invalid" not in elements["f-category"]["attrs"]  # a good field is not marked
    assert elements["f-category"]["attrs"]["value"] == VALID["category"]  # what was typed, kept
    assert elements["f-facts"]["text"] == "Written in Rust.\n\nRuns offline."
    assert '<option value="ollama" selected>' in refused.text
    summary = " ".join(elements["error-summary"]["text"].split())
    assert (
        summary
        == "Nothing was drafted: 5 fields to fix, each marked below: Id, Name, Links, Ship votes, Skip votes."
    )
    assert '<a href="#f-community_skip">Skip votes</a>' in refused.text  # the summary links to the field
    assert not (runs_dir / "panel.db").exists()  # nothing written


def test_an_id_the_catalog_has_names_the_catalog_file_and_line(client: TestClient) -> None:
    refused = _post(client, **{**VALID, "id": "ollama"})
    assert refused.status_code == 400
    line = load_catalog(EXAMPLE_CATALOG).line("ollama")
    assert line > 0
    said = _beside(refused.text, "id")
    assert said == (
        f"The catalog already has a tool with id 'ollama' ({EXAMPLE_CATALOG}, line {line}): "
        "choose another id."
    )
    _once(refused.text, said)


def test_hostile_text_typed_into_the_form_comes_back_as_text(client: TestClient) -> None:
    refused = _post(client, **{**VALID, "id": HOSTILE, "name": HOSTILE, "facts": HOSTILE, "compare": HOSTILE})
    assert refused.status_code == 400
    assert "<script>document" not in refused.text
    assert "&lt;script&gt;document.title=&#39;pwned&#39;&lt;/script&gt;" in refused.text
    assert _Elements(refused.text).by_id["f-name"]["attrs"]["value"] == HOSTILE  # shown as typed
    assert HOSTILE in _beside(refused.text, "id") and HOSTILE in _beside(refused.text, "compare")


def test_no_persona_and_no_tool_to_compare_against_are_refused_beside_them(client: TestClient) -> None:
    refused = _post(client, **{**VALID, "compare": "", "persona": []})
    assert refused.status_code == 400
    assert _beside(refused.text, "compare") == "Choose the tool to draft against."
    personas = _Elements(refused.text).by_id["f-persona"]
    assert personas["attrs"]["aria-describedby"] == "error-persona"
    _once(refused.text, "Tick at least one persona.")


def test_a_valid_tool_is_drafted_against_the_chosen_one_as_a_job(client: TestClient, runs_dir: Path) -> None:
    started = _post(client, **VALID)
    assert started.status_code == 303 and started.headers["location"].startswith("/jobs/")
    url = started.headers["location"]
    events = read_events(client, f"{url}/events")
    assert [kind for kind, _ in events] == ["progress"] * 4 + ["done"]  # 2 tools x 2 personas x fake
    end = events[-1][1]
    assert end["state"] == "done" and end["valid"] == 4 and end["error"] is None
    assert "Draft New Tool" in client.get(url).text
    run_id = end["run_id"]
    with Store(runs_dir, readonly=True) as store:
        run = store.get_run(run_id)
        assert run is not None and run.status == "done" and run.kind == "compare"
        assert [t["id"] for t in store.run_tools(run_id)] == ["new-tool", "ollama"]
        assert store.run_tools(run_id)[0]["links"] == {
            "home page": "https://new-tool.example",
            "docs": "https://docs.new-tool.example",
        }
        record = json.loads((store.run_dir(run_id) / "comparison.json").read_text(encoding="utf-8"))
    assert "New Tool" in json.dumps(record)
    assert client.get(f"/runs/{run_id}").status_code == 200
    assert "new-tool" not in EXAMPLE_CATALOG.read_text(encoding="utf-8")  # the catalog is left alone


def test_a_plan_that_cannot_be_made_is_one_line_at_the_top_and_nothing_written(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    app = create_app(runs, token=None, port=8765, backends=["nope:model"], catalog=EXAMPLE_CATALOG)
    with TestClient(app, base_url=BASE) as client:
        refused = _post(client, **VALID)
    assert refused.status_code == 400
    problem = _Elements(refused.text).by_id["form-error"]["text"].strip()
    assert "nope" in problem and "\n" not in problem
    assert _Elements(refused.text).by_id["f-name"]["attrs"]["value"] == "New Tool"
    assert not runs.exists()


def test_a_post_without_the_csrf_field_is_refused(client: TestClient, runs_dir: Path) -> None:
    assert _post(client, csrf=False, **VALID).status_code == 403
    assert not (runs_dir / "panel.db").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--catalog", "missing.yaml"], "missing.yaml"),
        (["--config", "missing.toml"], "missing.toml: config file not found"),
        (["-b", "nope:model"], "nope"),
    ],
)
def test_the_command_checks_the_drafts_inputs_before_serving(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], says: str
) -> None:
    view = importlib.import_module("panel.cli.view")  # the module, not the command

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(view, "_serve", lambda *a: pytest.fail("served"))
    result = cli("view", "--runs", str(tmp_path), *args)
    assert result.code == 2 and says in result.err
    assert len(result.err.strip().splitlines()) == 1 and result.out == ""


def test_the_command_gives_the_app_its_catalog_members_and_config(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = importlib.import_module("panel.cli.view")  # the module, not the command

    (tmp_path / "panel.toml").write_text("", encoding="utf-8")
    served: list[tuple[Any, ...]] = []
    monkeypatch.setattr(view, "_serve", lambda *a: served.append(a))
    args = ["--catalog", str(EXAMPLE_CATALOG), "-b", "fake", "-b", "fake:schema", "--config"]
    result = cli("view", "--runs", str(tmp_path), "--port", "0", *args, str(tmp_path / "panel.toml"))
    assert result.code == 0, result.err
    (_, _, sock, catalog, backends, config) = served[0]
    sock.close()
    assert (catalog.path, backends, config) == (
        EXAMPLE_CATALOG,
        ["fake", "fake:schema"],
        tmp_path / "panel.toml",
    )


# -- the catalog is read once ----------------------------------------------------------------


@pytest.fixture
def catalog_reads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, list[str]]:
    """A copy of the example catalog, and a list that grows by one each time its file is opened."""
    path = tmp_path / "catalog.yaml"
    shutil.copyfile(EXAMPLE_CATALOG, path)
    reads: list[str] = []
    real_open = os.open

    def counting_open(file: Any, *args: Any, **kwargs: Any) -> int:
        if isinstance(file, str | Path) and Path(file) == path:
            reads.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    return path, reads


def _compare_options(page: str) -> str:
    return str(_Elements(page).by_id["f-compare"]["text"])


def test_the_form_reads_the_catalog_once_and_again_only_when_its_file_changes(
    runs_dir: Path, catalog_reads: tuple[Path, list[str]]
) -> None:
    path, reads = catalog_reads
    app = create_app(runs_dir, token=None, port=8765, backends=["fake"], catalog=path)
    with TestClient(app, base_url=BASE) as client:
        for _ in range(3):
            assert client.get("/tools/new").status_code == 200
        assert len(reads) == 1
        started = _post(client, **VALID)  # the draft's plan takes the tools read already
        assert started.status_code == 303
        assert read_events(client, f"{started.headers['location']}/events")[-1][1]["state"] == "done"
        assert len(reads) == 1

        # An edit that grows the file
        text = path.read_text(encoding="utf-8").rstrip() + "\n" + _ENTRY.format(id="grown", name="Grown Tool")
        path.write_text(text, encoding="utf-8")
        assert "Grown Tool (grown)" in _compare_options(client.get("/tools/new").text)
        assert len(reads) == 2

        # An edit in place that keeps the size: the modification time tells it
        before = path.stat()
        path.write_text(text.replace("Grown Tool", "Grown Tuul"), encoding="utf-8")
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
        assert path.stat().st_size == before.st_size
        assert "Grown Tuul (grown)" in _compare_options(client.get("/tools/new").text)
        assert len(reads) == 3

        # A file put in its place (as editors save), same size and same time: its inode tells it
        before = path.stat()
        other = path.with_name("saved.yaml")
        other.write_text(text.replace("Grown Tool", "Grown Tail"), encoding="utf-8")
        os.utime(other, ns=(before.st_atime_ns, before.st_mtime_ns))
        os.replace(other, path)
        assert "Grown Tail (grown)" in _compare_options(client.get("/tools/new").text)
        assert len(reads) == 4
        assert client.get("/tools/new").status_code == 200
        assert len(reads) == 4


def test_the_command_and_the_first_visit_read_the_catalog_once(
    cli: Any, runs_dir: Path, monkeypatch: pytest.MonkeyPatch, catalog_reads: tuple[Path, list[str]]
) -> None:
    path, reads = catalog_reads
    view = importlib.import_module("panel.cli.view")  # the module, not the command
    served: list[tuple[Any, ...]] = []
    monkeypatch.setattr(view, "_serve", lambda *a: served.append(a))
    runs_dir.mkdir()  # an empty runs folder: the form makes the first run
    result = cli("view", "--out", str(runs_dir), "--port", "0", "--catalog", str(path), "-b", "fake")
    assert result.code == 0, result.err
    (_, _, sock, catalog, backends, config) = served[0]
    sock.close()
    app = create_app(runs_dir, token=None, port=8765, catalog=catalog, backends=backends, config=config)
    with TestClient(app, base_url=BASE) as client:
        assert "Ollama (ollama)" in _compare_options(client.get("/tools/new").text)
    assert len(reads) == 1


def test_a_draft_whose_member_loses_its_server_ends_failed_with_the_reason_and_the_run(
    runs_dir: Path, tmp_path: Path
) -> None:
    """The server answers one request and dies: the job does not end `done` with reviews
    missing, but failed with the member's reason and the command that finishes the run, and
    its page links to the run the other member filled."""
    from panel.testing.fake_provider import FakeProvider

    with FakeProvider(die_after=1) as server:
        cfg = tmp_path / "panel.toml"
        cfg.write_text(
            "[retry]\nattempts = 2\nbase_wait = 0.01\nmax_wait = 0.05\n"
            '[[members]]\nspec = "openai:smollm2"\nname = "small-server"\n'
            f'base_url = "{server.base_url("openai")}"\nconcurrency = 1\ntimeout = 5\n'
            'price_input = 0\nprice_output = 0\n[[members]]\nspec = "fake"\n'
        )
        app = create_app(runs_dir, token=None, port=8765, catalog=EXAMPLE_CATALOG, config=cfg)
        with TestClient(app, base_url=BASE) as client:
            started = _post(client, **VALID)
            assert started.status_code == 303, started.text
            url = started.headers["location"]
            end = read_events(client, f"{url}/events")[-1][1]
            page = client.get(url).text
    assert end["state"] == "failed" and end["run_id"], end
    assert end["error"].startswith("stopped sending to small-server: its server stopped answering")
    assert f"panel review --resume {end['run_id']}" in end["error"]
    assert f'href="/runs/{end["run_id"]}"' in page or f"/runs/{end['run_id']}" in page
    with Store(runs_dir, readonly=True) as store:
        reviews = store.reviews(end["run_id"])
    assert sum(r.member != "small-server" and r.valid for r in reviews) == 4
