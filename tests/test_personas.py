from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from panel.errors import PersonaError
from panel.personas import load_persona, load_personas, persona_files, resolve_personas
from panel.report.load import load_record
from panel.resources import data_dir
from panel.run.plan import plan_compare, run_plan
from panel.store import Store

from .conftest import EXAMPLE_CATALOG

FIFTH = """\
id: ethicist
name: The Ethicist
order: 5
lens: who could be harmed, and who is accountable
voice: A careful reviewer who asks who bears the risk when the tool is wrong.
questions:
  - key: harm
    question: Who could be harmed if the tool fails or is misused?
  - key: accountability
    question: Who is accountable when it goes wrong?
decision: Ship when the risks are known and someone answers for them.
"""


def test_the_four_personas_load_in_panel_order() -> None:
    personas = load_personas(data_dir("personas"))
    assert list(personas) == ["builder", "skeptic", "futurist", "business_analyst"]
    assert [q.key for q in personas["skeptic"].questions] == [
        "competitors",
        "breaking_scenario",
        "twelve_month_risk",
    ]


def test_review_schema_is_built_from_the_questions() -> None:
    persona = load_persona(data_dir("personas") / "futurist.yaml")
    schema = persona.review_schema
    assert "$ref" not in str(schema) and "$defs" not in schema
    assert schema["required"] == ["answers", "review", "verdict_note", "verdict"]
    answers = schema["properties"]["answers"]
    assert list(answers["properties"]) == [q.key for q in persona.questions]
    assert answers["required"] == [q.key for q in persona.questions]
    assert answers["additionalProperties"] is False
    assert schema["properties"]["verdict"]["enum"] == ["ship", "skip"]


def test_review_model_rejects_a_missing_answer_and_a_second_verdict() -> None:
    model = load_persona(data_dir("personas") / "skeptic.yaml").review_model
    answers = {"competitors": "a", "breaking_scenario": "b", "twelve_month_risk": "c"}
    ok = {"answers": answers, "review": "r", "verdict_note": "n", "verdict": "skip"}
    assert model.model_validate(ok).model_dump()["verdict"] == "skip"
    with pytest.raises(ValidationError):
        model.model_validate({**ok, "answers": {"competitors": "a"}})
    with pytest.raises(ValidationError):
        model.model_validate({**ok, "verdict": "maybe"})
    with pytest.raises(ValidationError):
        model.model_validate({**ok, "verdict_2": "ship"})


def test_a_fifth_persona_is_one_file_and_gets_reviews(tmp_path: Path) -> None:
    folder = tmp_path / "personas"
    shutil.copytree(data_dir("personas"), folder)
    (folder / "ethicist.yaml").write_text(FIFTH)
    plan = plan_compare(["ollama", "vllm"], catalog=EXAMPLE_CATALOG, backends=["fake"], personas_dir=folder)
    assert [p.id for p in plan.personas][-1] == "ethicist"
    with Store(tmp_path / "runs") as store:
        run_id, _ = asyncio.run(run_plan(plan, store, "test"))
        record = load_record(store, run_id)
    assert record.counts.reviews == 10
    for card in record.tools:
        ethicist = [e for e in card.scorecard if e.persona_id == "ethicist"]
        assert len(ethicist) == 1 and ethicist[0].valid
        assert [a.key for a in ethicist[0].answers] == ["harm", "accountability"]
        assert all(a.answer for a in ethicist[0].answers)


def test_a_persona_may_define_other_verdicts(tmp_path: Path) -> None:
    (tmp_path / "triage.yaml").write_text(
        FIFTH.replace("id: ethicist", "id: triage") + "verdicts: [ship, wait, skip]\n"
    )
    persona = load_persona(tmp_path / "triage.yaml")
    assert persona.review_schema["properties"]["verdict"]["enum"] == ["ship", "wait", "skip"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id: x\nname: [oops\n", "YAML syntax error"),
        (FIFTH.replace("lens: who could be harmed, and who is accountable\n", ""), "field 'lens'"),
        (FIFTH.replace("key: accountability", "key: harm"), "question keys must be unique"),
        (FIFTH.replace("id: ethicist", "id: someone_else"), "must match the file name"),
    ],
)
def test_bad_persona_files_name_the_file_and_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "ethicist.yaml"
    path.write_text(text)
    with pytest.raises(PersonaError) as err:
        load_persona(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_unknown_persona_suggests_a_close_one() -> None:
    personas = load_personas(data_dir("personas"))
    with pytest.raises(PersonaError, match="did you mean 'skeptic'"):
        resolve_personas(personas, ["sceptic"])


# Keys a question may not take: each would shadow or be dropped by the review's pydantic model,
# or repeat a field of the review itself.
@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("model_config", "it names a pydantic model attribute"),
        ("json", "it names a pydantic model attribute"),
        ("model_fields", "it names a pydantic model attribute"),
        ("schema", "it names a pydantic model attribute"),
        ("copy", "it names a pydantic model attribute"),
        ("dict", "it names a pydantic model attribute"),
        ("model_anything", "it names a pydantic model attribute"),
        ("verdict", "it is a field of every review"),
        ("answers", "it is a field of every review"),
    ],
)
def test_a_reserved_question_key_is_refused_naming_file_line_and_key(
    cli: Any, tmp_path: Path, key: str, reason: str
) -> None:
    path = tmp_path / "ethicist.yaml"
    path.write_text(FIFTH.replace("key: accountability", f"key: {key}"))
    result = cli("personas", "validate", str(path))
    assert result.code == 2 and "Traceback" not in result.err
    assert result.err.strip() == (
        f"error: {path}:9: field 'questions.1.key': question key '{key}' is reserved: {reason}"
    )


@pytest.mark.parametrize(
    ("verdicts", "message"),
    [
        ("[ship, ship]", "verdicts must be distinct, repeated: 'ship'"),
        ("[ship, '']", "a verdict must be a word without surrounding spaces, got ''"),
        ("[ship, ' skip']", "a verdict must be a word without surrounding spaces, got ' skip'"),
        ("[ship]", "Tuple should have at least 2 items after validation, not 1"),
        ("[ship, 1]", "Input should be a valid string"),
    ],
)
def test_verdicts_must_be_distinct_non_empty_strings(tmp_path: Path, verdicts: str, message: str) -> None:
    path = tmp_path / "ethicist.yaml"
    path.write_text(FIFTH + f"verdicts: {verdicts}\n")
    with pytest.raises(PersonaError) as err:
        load_persona(path)
    field = "verdicts.1" if verdicts == "[ship, 1]" else "verdicts"
    assert str(err.value) == f"{path}:12: field '{field}': {message}"


def test_x_yaml_beside_x_yml_is_a_clash_naming_both(cli: Any, tmp_path: Path, runs_dir: Path) -> None:
    folder = tmp_path / "personas"
    shutil.copytree(data_dir("personas"), folder)
    (folder / "ethicist.yaml").write_text(FIFTH)
    (folder / "ethicist.yml").write_text(FIFTH)
    result = cli(
        "compare", "ollama", "vllm", "--personas-dir", str(folder), "-b", "fake", "--out", str(runs_dir)
    )
    assert result.code == 2 and not runs_dir.exists()
    assert result.err.strip() == (
        f"error: {folder / 'ethicist.yaml'} and {folder / 'ethicist.yml'}: "
        "two files for persona 'ethicist'; keep one"
    )


def test_a_yml_persona_is_found_by_every_command(tmp_path: Path) -> None:
    (tmp_path / "ethicist.yml").write_text(FIFTH)
    (tmp_path / "notes.txt").write_text("not a persona")
    assert persona_files(tmp_path) == [tmp_path / "ethicist.yml"]
    assert list(load_personas(tmp_path)) == ["ethicist"]


def test_a_key_given_twice_in_a_persona_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ethicist.yaml"
    path.write_text(FIFTH + "lens: a second lens\n")
    with pytest.raises(PersonaError) as err:
        load_persona(path)
    assert str(err.value) == f"{path}:12: duplicate key 'lens' (already at line 4)"
