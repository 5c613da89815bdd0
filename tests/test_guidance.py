"""Each question's guidance in a persona file reaches the model: in the rendered prompt, under
its question, and in the review schema as the answer's description."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from panel.catalog import load_catalog
from panel.config import PanelConfig
from panel.depth import DEPTHS, Depth
from panel.personas import load_personas
from panel.prompts import PromptSet
from panel.resources import data_dir
from panel.run.plan import plan_compare, run_plan
from panel.store import Store
from panel.testing.fake_provider import FakeProvider

from .conftest import EXAMPLE_CATALOG

PERSONAS = load_personas(data_dir("personas"))
TOOL = load_catalog(EXAMPLE_CATALOG).get("ollama")


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("persona_id", list(PERSONAS))
def test_every_question_s_guidance_is_in_the_rendered_prompt(persona_id: str, depth: Depth) -> None:
    persona = PERSONAS[persona_id]
    _, user = PromptSet().review_messages(persona, TOOL, depth)
    instructions = user["content"].split("TOOL DATA END", 1)[1]  # after the tool's data
    for q in persona.questions:
        assert q.guidance, f"{persona_id}.{q.key} has no guidance to check"
        # The guidance follows its own question, before the next question begins.
        block = instructions.split(f'- "{q.key}": {q.question}', 1)[1].split('\n- "', 1)[0]
        assert f"Guidance: {' '.join(q.guidance.split())}" in block


@pytest.mark.parametrize("persona_id", list(PERSONAS))
def test_the_schema_describes_each_answer_with_its_question_and_guidance(persona_id: str) -> None:
    persona = PERSONAS[persona_id]
    answers = persona.review_schema["properties"]["answers"]["properties"]
    for q in persona.questions:
        assert answers[q.key]["description"] == f"{q.question} {' '.join(q.guidance.split())}"


def test_the_descriptions_reach_a_server_in_the_schema_it_compiles(
    fake: FakeProvider, tmp_path: Path
) -> None:
    member = {"spec": "openai:smollm2", "base_url": fake.base_url("openai"), "structured": "json_schema"}
    config = PanelConfig.model_validate({"members": [member]})
    plan = plan_compare(["ollama", "vllm"], catalog=EXAMPLE_CATALOG, config=config)
    with Store(tmp_path / "runs") as store:
        asyncio.run(run_plan(plan, store, "test"))
    bodies = [r["body"] for r in fake.stats()["recent"]]
    builder = next(b for b in bodies if b["response_format"]["json_schema"]["name"] == "builder_review")
    answers = builder["response_format"]["json_schema"]["schema"]["properties"]["answers"]["properties"]
    assert (
        "Say yes or no and name the part that would take longest."
        in answers["weekend_rebuild"]["description"]
    )
