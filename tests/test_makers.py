"""Makers: who made each tool and each member's model, and a member's recusal from its
maker's tools (issue 25 §1)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from panel.backends.registry import create_backend, parse_member
from panel.catalog import load_catalog
from panel.config import load_config
from panel.errors import CatalogError, UserError
from panel.report.load import load_record
from panel.report.render import render_html, render_markdown
from panel.run.plan import plan_resume, plan_run, run_plan
from panel.run.pricing import estimate_cost
from panel.store import Store

from .conftest import EXAMPLE_CATALOG
from .test_config import _check  # the one line `panel backends check` prints, exit 2

TOOL = {
    "category": "Models",
    "tagline": "A model",
    "description": "A tool used in tests.",
    "pricing": {"model": "paid"},
}


def _catalog(tmp_path: Path, makers: dict[str, str | None]) -> Path:
    tools = [
        {"id": tid, "name": tid.title(), **TOOL, **({"maker": m} if m else {})} for tid, m in makers.items()
    ]
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(tools, sort_keys=False), encoding="utf-8")
    return path


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "panel.toml"
    path.write_text(text, encoding="utf-8")
    return path


# -- the catalog ---------------------------------------------------------------------------


def test_a_tool_may_name_its_maker(tmp_path: Path) -> None:
    catalog = load_catalog(_catalog(tmp_path, {"gpt": "OpenAI", "llama": None}))
    assert (catalog.get("gpt").maker, catalog.get("llama").maker) == ("OpenAI", None)


def test_a_maker_keeps_the_tools_fingerprint() -> None:
    # Reviews are cached by the tool's fingerprint, and the maker is never shown to the
    # reviewers: tagging a catalog with makers keeps every stored review. The value is the
    # fingerprint before tools had a maker.
    tool = load_catalog(EXAMPLE_CATALOG).get("ollama")
    assert tool.fingerprint() == "7ab01b1230919874"
    assert tool.model_copy(update={"maker": "Ollama"}).fingerprint() == tool.fingerprint()


def test_the_maker_is_not_shown_to_the_reviewers_but_kept_in_the_run(tmp_path: Path) -> None:
    from panel.prompts import PromptSet
    from panel.run.head_to_head import head_to_head_messages

    plan = plan_run(
        None,
        catalog=_catalog(tmp_path, {"acme-one": "Acme Widgets", "other": "Other"}),
        persona_ids=["builder"],
        config=load_config(_toml(tmp_path, '[[members]]\nspec = "fake"\n')),
    )
    acme, other = plan.tools
    prompts = PromptSet()
    shown = [
        *prompts.review_messages(plan.personas[0], acme),
        *head_to_head_messages(prompts, plan.personas[0], acme, other),
    ]
    # it would tell a judge which tool is its maker's: the cue self-preference measures
    assert not any("Acme Widgets" in m["content"] or '"maker"' in m["content"] for m in shown)
    with Store(tmp_path / "runs") as store:
        run_id, _ = asyncio.run(run_plan(plan, store, "test"))
        assert [t.get("maker") for t in store.run_tools(run_id)] == ["Acme Widgets", "Other"]


@pytest.mark.parametrize("maker", ["", "   ", "Open\nAI", "Open\u0085AI", "Acme\u202e", 7])
def test_a_bad_maker_names_the_field_and_line(tmp_path: Path, maker: object) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump([{"id": "t", "name": "T", **TOOL, "maker": maker}], sort_keys=False))
    with pytest.raises(CatalogError, match=r"c\.yaml:\d+: tool 't': field 'maker'"):
        load_catalog(path)


# -- members -------------------------------------------------------------------------------


def test_cloud_backends_know_their_maker_and_others_are_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "MISTRAL_API_KEY"):
        monkeypatch.setenv(variable, "test-key")
    path = _toml(
        tmp_path,
        '[[members]]\nspec = "openai:gpt-4.1-mini"\n'
        '[[members]]\nspec = "anthropic:claude-haiku"\n'
        '[[members]]\nspec = "mistral:mistral-small"\n'
        '[[members]]\nspec = "openai:llama3"\nname = "served"\nbase_url = "http://127.0.0.1:9/v1"\n'
        '[[members]]\nspec = "openai:llama3"\nname = "meta"\nbase_url = "http://127.0.0.1:9/v1"\n'
        'maker = "Meta"\n'
        '[[members]]\nspec = "fake"\n',
    )
    members = [create_backend(m.member()) for m in load_config(path).members]
    assert [m.maker for m in members] == ["OpenAI", "Anthropic", "Mistral AI", None, "Meta", None]


def test_maker_and_recuse_do_not_change_the_cache_key() -> None:
    # They decide which cells are asked, never what a model says to one.
    plain = create_backend(parse_member("fake"))
    told = create_backend(parse_member("fake", {"maker": "Acme", "recuse": "maker"}))
    assert told.identity() == plain.identity()


@pytest.mark.parametrize(
    ("line", "field", "problem"),
    [
        ('maker = ""', "maker", "String should have at least 1 character"),
        ("maker = 3", "maker", "Input should be a valid string"),
        ('recuse = "family"', "recuse", "Input should be 'maker' or 'none'"),
    ],
)
def test_a_bad_maker_or_recuse_on_a_member_is_one_line(
    cli: Any, tmp_path: Path, line: str, field: str, problem: str
) -> None:
    path = _toml(tmp_path, f'[[members]]\nspec = "fake"\n{line}\n')
    assert _check(cli, path) == f"error: {path}: members[0].{field}: {problem}"


@pytest.mark.parametrize("maker", ["Acme\\u0085Evil", "Acme\\u202eEvil", "Acme\\u2028Evil", "   "])
def test_a_member_maker_with_a_line_break_or_bidi_control_is_refused(
    cli: Any, tmp_path: Path, maker: str
) -> None:
    path = _toml(tmp_path, f'[[members]]\nspec = "fake"\nmaker = "{maker}"\n')
    line = _check(cli, path)
    assert line.startswith(f"error: {path}: members[0].maker: "), line
    assert "one line" in line or "blank" in line, line


@pytest.mark.parametrize(
    "written", ["Mistral", "mistralai", "Mistral AI", "MISTRAL AI, Inc.", " mistral-ai "]
)
def test_a_mistral_member_recuses_from_a_tool_made_by_mistral_however_written(
    monkeypatch: pytest.MonkeyPatch, written: str
) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "test-key")
    member = create_backend(parse_member("mistral:mistral-small", {"recuse": "maker"}))
    assert member.maker == "Mistral AI"
    assert member.recuses_from(written)
    assert not member.recuses_from("Meta") and not member.recuses_from("Mistralia Labs")


def test_a_bad_panel_recuse_is_one_line(cli: Any, tmp_path: Path) -> None:
    path = _toml(tmp_path, 'recuse = "everything"\n[[members]]\nspec = "fake"\n')
    assert _check(cli, path) == f"error: {path}: recuse: Input should be 'maker'"


# -- runs ----------------------------------------------------------------------------------


def _run(tmp_path: Path, toml: str, makers: dict[str, str | None]) -> tuple[Any, Store, str]:
    """A run of every tool of a catalog with `makers` by every member of `toml`, on fake
    backends; the plan, the store (open) and the run's id."""
    plan = plan_run(
        None,
        catalog=_catalog(tmp_path, makers),
        persona_ids=["builder", "skeptic"],
        config=load_config(_toml(tmp_path, toml)),
    )
    store = Store(tmp_path / "runs")
    run_id, _ = asyncio.run(run_plan(plan, store, "test"))
    return plan, store, run_id


def test_a_run_records_its_members_makers(tmp_path: Path) -> None:
    toml = '[[members]]\nspec = "fake"\nname = "a"\nmaker = "Acme"\n[[members]]\nspec = "fake"\nname = "b"\n'
    _, store, run_id = _run(tmp_path, toml, {"x": "Acme", "y": None})
    with store:
        config = store.get_run(run_id).config  # type: ignore[union-attr]
    assert config["makers"] == {"a": "Acme", "b": None}


MAKERS = {"acme-one": "Acme", "acme-two": "ACME ", "other": "Other", "nobody": None}


def test_a_recused_member_is_never_asked_about_its_makers_tools(tmp_path: Path) -> None:
    toml = (
        '[[members]]\nspec = "fake"\nname = "a"\nmaker = "Acme"\nrecuse = "maker"\n'
        '[[members]]\nspec = "fake"\nname = "b"\nmaker = "Acme"\n'
    )
    plan, store, run_id = _run(tmp_path, toml, MAKERS)
    a, b = (m.backend for m in plan.members)
    # 2 personas: `a` is asked of the two tools that are not Acme's (case and spaces aside).
    assert (a.sent, b.sent, plan.total) == (4, 8, 12)
    with store:
        config = store.get_run(run_id).config  # type: ignore[union-attr]
        asked = {(r.member, r.tool_id) for r in store.reviews(run_id)}
    assert config["recused"] == {"a": ["acme-one", "acme-two"]}
    with Store(tmp_path / "runs") as again:  # a resumed run recuses as the run did
        assert plan_resume(again, run_id).recused() == {"a": ["acme-one", "acme-two"]}
    assert asked == {("a", "other"), ("a", "nobody")} | {("b", t) for t in MAKERS}


def test_the_panels_recuse_applies_to_every_member_but_one_that_says_none(tmp_path: Path) -> None:
    toml = (
        'recuse = "maker"\n'
        '[[members]]\nspec = "fake"\nname = "a"\nmaker = "Acme"\n'
        '[[members]]\nspec = "fake"\nname = "o"\nmaker = "Other"\n'
        '[[members]]\nspec = "fake"\nname = "u"\n'  # no maker: recuses from nothing
        '[[members]]\nspec = "fake"\nname = "n"\nmaker = "Acme"\nrecuse = "none"\n'
    )
    plan, store, _ = _run(tmp_path, toml, MAKERS)
    store.close()
    assert [m.backend.sent for m in plan.members] == [4, 6, 8, 8]
    assert plan.recused() == {"a": ["acme-one", "acme-two"], "o": ["other"]}


def test_the_record_names_the_recusal_and_its_shares_are_without_it(tmp_path: Path) -> None:
    toml = (
        '[[members]]\nspec = "fake"\nname = "a"\nmaker = "Acme"\nrecuse = "maker"\n'
        '[[members]]\nspec = "fake"\nname = "b"\n'
    )
    _, store, run_id = _run(tmp_path, toml, {"acme-one": "Acme", "other": "Other"})
    with store:
        record = load_record(store, run_id)
        b_verdicts = [r.verdict for r in store.reviews(run_id, "acme-one")]
    assert [r.model_dump() for r in record.recusals] == [
        {"member": "a", "maker": "Acme", "tool_ids": ["acme-one"]}
    ]
    acme, other = record.tools
    assert (acme.recused, other.recused) == (["a"], [])
    # acme-one's share is b's two reviews alone; a has no share of it, and nothing is missing.
    assert acme.panel.valid + acme.panel.failed == 2 and {e.member for e in acme.scorecard} == {"b"}
    assert acme.panel.ship == b_verdicts.count("ship")
    assert list(acme.panel_by_member) == ["b"] and list(other.panel_by_member) == ["a", "b"]
    assert (record.run.planned, record.run.missing, record.run.complete) == (6, 0, True)
    page = render_markdown(record)
    (line,) = [x for x in page.splitlines() if "Recused" in x]
    assert "a (Acme) on Acme-One" in line
    assert "Recused" in render_html(record)


def test_a_record_without_recusal_has_no_recusal_fields(tmp_path: Path) -> None:
    toml = '[[members]]\nspec = "fake"\nname = "a"\nmaker = "Acme"\n'
    _, store, run_id = _run(tmp_path, toml, {"acme-one": "Acme", "other": "Other"})
    with store:
        data = load_record(store, run_id).model_dump(mode="json")
    assert "recusals" not in data and all("recused" not in t for t in data["tools"])
    assert data["run"]["missing"] == 0


def test_the_estimate_prices_only_the_cells_asked(tmp_path: Path) -> None:
    # A priced member beside a free one: recusing from one of two tools halves its cost,
    # whatever the free member asks.
    priced = '[[members]]\nspec = "fake"\nname = "a"\nmaker = "Acme"\nprice_input = 1\nprice_output = 1\n'
    free = '[[members]]\nspec = "fake"\nname = "b"\nprice_input = 0\nprice_output = 0\n'

    def estimate(recuse: str) -> Any:
        plan = plan_run(
            None,
            catalog=_catalog(tmp_path, {"acme-one": "Acme", "other": "Other"}),
            persona_ids=["builder", "skeptic"],
            config=load_config(_toml(tmp_path, f'{priced}recuse = "{recuse}"\n{free}')),
        )
        return estimate_cost(plan)

    less, more = estimate("maker"), estimate("none")
    assert (less.requests, more.requests) == (6, 8)
    assert less.worst_usd == pytest.approx(more.worst_usd / 2, rel=0.05)


def test_the_plan_line_says_how_many_cells_are_recused(cli: Any, tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, {"acme-one": "Acme", "other": "Other"})
    config = _toml(
        tmp_path,
        '[[members]]\nspec = "fake"\nmaker = "Acme"\nrecuse = "maker"\n[[members]]\nspec = "fake:two"\n',
    )
    result = cli(
        "compare", "acme-one", "other", "--catalog", str(catalog), "--config", str(config),
        "--persona", "builder", "--out", str(tmp_path / "runs"),
    )  # fmt: skip
    assert result.code == 0, result.err
    assert "plan: 3 reviews = 2 tools x 1 personas x 2 members, less 1 recused" in result.out + result.err


@pytest.mark.parametrize("other", [{"other": "Other"}, {"acme-two": "acme"}])
def test_a_tool_every_member_recuses_from_is_refused_in_one_line(
    cli: Any, tmp_path: Path, other: dict[str, str]
) -> None:
    # With no review of acme-one, its shares, headline and pairs would rest on nothing.
    catalog = _catalog(tmp_path, {"acme-one": "Acme", **other})
    config = _toml(tmp_path, 'recuse = "maker"\n[[members]]\nspec = "fake"\nname = "a"\nmaker = "Acme"\n')
    runs = tmp_path / "runs"
    result = cli(
        "compare", "acme-one", *other, "--catalog", str(catalog), "--config", str(config),
        "-p", "builder", "--out", str(runs),
    )  # fmt: skip
    assert result.code == 2, (result.code, result.out[-300:])
    assert result.err.strip() == "error: no member is left to review acme-one: every member's maker made it"
    assert not runs.exists() or not any(runs.iterdir())


# -- a recused cell stays without a review ------------------------------------------------

RECUSING = (
    '[[members]]\nspec = "fake"\nname = "a"\nmaker = "Acme"\nrecuse = "maker"\n'
    '[[members]]\nspec = "fake"\nname = "b"\n'
)


def test_regenerate_refuses_a_recused_cell_and_changes_nothing(tmp_path: Path) -> None:
    from panel.run.regenerate import regenerate_review
    from panel.store import CellKey

    _, store, run_id = _run(tmp_path, RECUSING, {"acme-one": "Acme", "other": "Other"})
    with store:
        before = load_record(store, run_id).model_dump()
        with pytest.raises(UserError, match=r"^cannot regenerate .* a recused from acme-one") as refused:
            asyncio.run(
                regenerate_review(store, run_id, CellKey("acme-one", "builder", "a", 0), "fill the gap")
            )
        assert "\n" not in str(refused.value)
        assert store.review(run_id, CellKey("acme-one", "builder", "a", 0)) is None
        assert load_record(store, run_id).model_dump() == before


def test_the_view_offers_no_regenerate_for_a_recused_cell_and_refuses_one(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from panel.view.app import create_app
    from panel.view.security import CSRF_FIELD

    from .test_view import BASE
    from .view_session import csrf, sign_in

    _, store, run_id = _run(tmp_path, RECUSING, {"acme-one": "Acme", "other": "Other"})
    store.close()
    with TestClient(create_app(tmp_path / "runs", token=None, port=8765), base_url=BASE) as client:
        sign_in(client, "Ana")
        page = client.get(f"/runs/{run_id}/tools/acme-one").text
        recused = [a for a in page.split("<article")[1:] if "Recused: its maker made this tool." in a]
        assert len(recused) == 2 and not any("/review/regenerate" in a for a in recused)
        assert "/review/regenerate" in page  # the other reviews keep theirs
        form = {"tool": "acme-one", "persona": "builder", "member": "a", "repeat": "0", "reason": "fill it"}
        sent = client.post(
            f"/runs/{run_id}/review/regenerate",
            data={**form, CSRF_FIELD: csrf(client)},
            follow_redirects=False,
        )
        assert sent.status_code == 404 and "recused" in sent.text
    with Store(tmp_path / "runs", readonly=True) as again:
        assert {r.member for r in again.reviews(run_id, "acme-one")} == {"b"}


def test_a_stored_review_of_a_recused_cell_is_in_no_share(tmp_path: Path) -> None:
    from panel.store import CellKey

    _, store, run_id = _run(tmp_path, RECUSING, {"acme-one": "Acme", "other": "Other"})
    with store:
        own = store.review(run_id, CellKey("other", "builder", "a", 0))
        assert own is not None and own.data is not None
        # one written by an older panel, or by hand: the run still says `a` recused from acme-one
        store.save_review(run_id, CellKey("acme-one", "builder", "a", 0), "fake", "fake", data=own.data,
                          error=None, raw_reply=None, request_id=None, asks=1)  # fmt: skip
        store.commit()
        acme = load_record(store, run_id).tools[0]
    assert acme.recused == ["a"] and {e.member for e in acme.scorecard} == {"b"}
    assert acme.panel.valid + acme.panel.failed == 2


# -- a finished recused run is complete in `panel show` and `panel runs` ----------------------


def _review_recused(cli: Any, tmp_path: Path) -> str:
    catalog = _catalog(tmp_path, {"acme-one": "Acme", "other": "Other"})
    result = cli(
        "review", str(catalog), "--config", str(_toml(tmp_path, RECUSING)), "-p", "builder",
        "--out", str(tmp_path / "runs"), "--progress", "quiet",
    )  # fmt: skip
    assert result.code == 0, result.err
    with Store(tmp_path / "runs", readonly=True) as store:
        ((run, _, _),) = store.list_runs()
        assert run.config["recused"] == {"a": ["acme-one"]} and run.status == "done"
    return run.id


def test_show_of_a_finished_recused_run_says_nothing_is_missing(cli: Any, tmp_path: Path) -> None:
    run_id = _review_recused(cli, tmp_path)
    shown = cli("show", run_id, "--out", str(tmp_path / "runs"))
    assert shown.code == 0, shown.err
    assert "not finished" not in shown.err and "--resume" not in shown.err, shown.err


def test_runs_lists_a_finished_recused_run_as_complete(cli: Any, tmp_path: Path) -> None:
    _review_recused(cli, tmp_path)
    listed = cli("runs", "--json", "--out", str(tmp_path / "runs"))
    assert listed.code == 0, listed.err
    (row,) = json.loads(listed.out)
    assert row["reviews"] == row["planned"] == 3, row  # 2 tools x 2 members x 1 persona, less 1 recused


def test_a_recusal_that_cannot_apply_is_said_in_one_line(cli: Any, tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, {"acme-one": "Acme", "other": "Other"})
    # a model served locally: its backend knows no maker, and none is set
    config = _toml(tmp_path, '[[members]]\nspec = "fake"\nname = "llama"\nrecuse = "maker"\n')
    result = cli(
        "compare", "acme-one", "other", "--catalog", str(catalog), "--config", str(config),
        "-p", "builder", "--out", str(tmp_path / "runs"), "--progress", "quiet",
    )  # fmt: skip
    assert result.code == 0, result.err
    said = [x for x in result.err.splitlines() if x.startswith("llama: ")]
    assert said == [
        'llama: recuse = "maker" leaves nothing out, its maker is unknown: set maker = "..." '
        '(who made its model, such as "Meta") on the member in panel.toml'
    ], result.err
    known = _toml(tmp_path, '[[members]]\nspec = "fake"\nname = "llama"\nmaker = "Meta"\nrecuse = "maker"\n')
    again = cli("compare", "acme-one", "other", "--catalog", str(catalog), "--config", str(known),
                "-p", "builder", "--out", str(tmp_path / "runs"), "--progress", "quiet")  # fmt: skip
    assert again.code == 0 and "leaves nothing out" not in again.err, again.err
