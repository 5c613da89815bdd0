from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from panel.resources import data_dir
from panel.store import Store

from .factories import TOOL_YAML


def _catalog(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text("tools:\n" + body)
    return path


def _assert_clean_failure(result: Any, runs: Path, *fragments: str) -> None:
    assert result.code == 2, result
    lines = [line for line in result.err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.err + result.out
    for fragment in fragments:
        assert fragment in lines[0]
    assert not runs.exists() or not any(runs.iterdir()), "nothing may be written under runs/"


def test_yaml_syntax_error(cli: Any, tmp_path: Path, runs_dir: Path) -> None:
    cat = _catalog(tmp_path, TOOL_YAML.format(id="a", name="A") + "  - id: [b\n")
    result = cli("compare", "a", "b", "--catalog", str(cat), "--backend", "fake", "--out", str(runs_dir))
    _assert_clean_failure(
        result, runs_dir, f"{cat}:9", "YAML syntax error", "while parsing a flow sequence at line 8"
    )


def test_missing_required_field(cli: Any, tmp_path: Path, runs_dir: Path) -> None:
    body = TOOL_YAML.format(id="a", name="A") + TOOL_YAML.format(id="b", name="B").replace(
        "    tagline: t\n", ""
    )
    cat = _catalog(tmp_path, body)
    result = cli("compare", "a", "b", "--catalog", str(cat), "--backend", "fake", "--out", str(runs_dir))
    _assert_clean_failure(result, runs_dir, f"{cat}:8", "tool 'b'", "missing required field 'tagline'")


def test_wrong_type(cli: Any, tmp_path: Path, runs_dir: Path) -> None:
    cat = _catalog(tmp_path, TOOL_YAML.format(id="a", name="A") + TOOL_YAML.format(id="b", name="[1, 2]"))
    result = cli("compare", "a", "b", "--catalog", str(cat), "--backend", "fake", "--out", str(runs_dir))
    _assert_clean_failure(result, runs_dir, f"{cat}:9", "field 'name'")


def test_duplicate_id(cli: Any, tmp_path: Path, runs_dir: Path) -> None:
    cat = _catalog(tmp_path, TOOL_YAML.format(id="a", name="A") + TOOL_YAML.format(id="a", name="B"))
    result = cli("compare", "a", "b", "--catalog", str(cat), "--backend", "fake", "--out", str(runs_dir))
    _assert_clean_failure(result, runs_dir, f"{cat}:8", "duplicate tool id 'a'", "line 2")


def test_unknown_tool_suggests(cli: Any, runs_dir: Path) -> None:
    result = cli("compare", "olama", "vllm", "--backend", "fake", "--out", str(runs_dir))
    _assert_clean_failure(result, runs_dir, "no tool with id 'olama'", "did you mean 'ollama'")


def test_unknown_persona(cli: Any, runs_dir: Path) -> None:
    result = cli(
        "compare",
        "ollama",
        "vllm",
        "--backend",
        "fake",
        "--persona",
        "sceptic",
        "--out",
        str(runs_dir),
    )
    _assert_clean_failure(result, runs_dir, "unknown persona 'sceptic'", "did you mean 'skeptic'")


def test_unknown_backend(cli: Any, runs_dir: Path) -> None:
    result = cli("compare", "ollama", "vllm", "--backend", "lokal", "--out", str(runs_dir))
    _assert_clean_failure(result, runs_dir, "unknown backend 'lokal'", "did you mean 'local'")


def test_missing_gguf(cli: Any, tmp_path: Path, runs_dir: Path) -> None:
    pytest.importorskip("llama_cpp")
    missing = tmp_path / "nope.gguf"
    result = cli("compare", "ollama", "vllm", "--backend", f"local:{missing}", "--out", str(runs_dir))
    _assert_clean_failure(result, runs_dir, "local model file not found", str(missing))


def test_missing_catalog_file(cli: Any, tmp_path: Path, runs_dir: Path) -> None:
    result = cli("compare", "a", "b", "--catalog", str(tmp_path / "none.yaml"), "--out", str(runs_dir))
    _assert_clean_failure(result, runs_dir, "none.yaml: catalog file not found")


def test_json_prints_only_a_record_that_validates(cli: Any, runs_dir: Path) -> None:
    result = cli("compare", "ollama", "llama-cpp", "--backend", "fake", "--json", "--out", str(runs_dir))
    assert result.code == 0, result.err
    record = json.loads(result.out)  # stdout is the record and nothing else
    schema = json.loads((data_dir("schema") / "comparison.schema.json").read_text())
    jsonschema.validate(record, schema)
    assert record["version"] == "1.9"
    assert record["counts"] == {"reviews": 8, "valid": 8, "failed": 0}
    folder = runs_dir / record["run_id"]
    assert json.loads((folder / "comparison.json").read_text()) == record
    assert (folder / "comparison.md").read_text().startswith("# Ollama vs llama.cpp")


def test_compare_prints_the_scorecard_and_the_folder(cli: Any, runs_dir: Path) -> None:
    result = cli(
        "compare",
        "ollama",
        "vllm",
        "-b",
        "fake",
        "-p",
        "builder",
        "-p",
        "skeptic",
        "--out",
        str(runs_dir),
    )
    assert result.code == 0, result.err
    assert "Reviewer scorecard" in result.out
    assert result.out.count("The Builder") == 2 and result.out.count("The Skeptic") == 2
    assert "panel ship" in result.out
    (run,) = [p for p in runs_dir.iterdir() if p.is_dir()]
    assert str(run) in result.out.replace("\n", "")
    listing = cli("runs", "--out", str(runs_dir))
    assert run.name in listing.out and "done" in listing.out


def test_personas_list_and_validate(cli: Any, tmp_path: Path) -> None:
    listing = cli("personas")
    assert listing.code == 0
    for pid in ("builder", "skeptic", "futurist", "business_analyst"):
        assert pid in listing.out
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\nname: B\n")
    checked = cli("personas", "validate", str(data_dir("personas")), str(bad))
    assert checked.code == 2
    assert checked.out.count("ok  ") == 4
    assert "bad.yaml" in checked.err


def test_published_schema_file_matches_the_models(cli: Any) -> None:
    printed = cli("schema").out
    assert printed == (data_dir("schema") / "comparison.schema.json").read_text(), (
        "schema/comparison.schema.json is stale: run `make schema`"
    )


def test_example_catalog_is_the_default(
    cli: Any, runs_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no examples/ here: falls back to the installed sample
    result = cli("compare", "ollama", "vllm", "-b", "fake", "--json", "--out", str(runs_dir))
    assert result.code == 0, result.err
    record = json.loads(result.out)
    assert record["tools"][0]["name"] == "Ollama"
    # The run read the sample that ships with the package, not a file of the working folder.
    with Store(runs_dir, readonly=True) as store:
        run = store.get_run(record["run_id"])
    assert run is not None and run.catalog == str(data_dir("examples") / "catalog.yaml")


def test_render_writes_each_format_of_a_past_run(cli: Any, runs_dir: Path, tmp_path: Path) -> None:
    made = cli("compare", "ollama", "vllm", "-b", "fake", "--json", "--out", str(runs_dir))
    run_id = json.loads(made.out)["run_id"]
    folder = runs_dir / run_id
    assert {p.name for p in folder.iterdir()} == {"comparison.json", "comparison.md", "comparison.html"}
    # the run's draft is the editor's page, which ends with how it was made
    page = cli("render", run_id, "--format", "html", "--runs", str(runs_dir), "--how-made")
    assert page.code == 0 and page.out == (folder / "comparison.html").read_text()
    as_json = cli("render", run_id, "-f", "json", "-o", str(tmp_path / "r.json"), "--out", str(runs_dir))
    assert as_json.code == 0 and json.loads((tmp_path / "r.json").read_text())["run_id"] == run_id
    bad = cli("render", run_id, "-f", "pdf", "--runs", str(runs_dir))
    assert bad.code == 2 and "unknown format 'pdf'" in bad.err
    missing = cli("render", "no-such-run", "--runs", str(runs_dir))
    assert missing.code == 2 and "no run 'no-such-run'" in missing.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compare", "ollama", "Ollama"], "tool 'ollama' is listed twice"),
        (["review", "--tools", "vllm,vllm"], "tool 'vllm' is listed twice"),
        (
            ["compare", "ollama", "vllm", "-p", "builder", "-p", "builder"],
            "persona 'builder' is listed twice",
        ),
        (
            ["review", "--max-cost", "1", "-b", "fake", "--prices", "EMPTY"],
            "--max-cost needs a price for fake:schema",
        ),
        (["review", "nope.yaml"], "nope.yaml: catalog file not found"),
        (["review", "--resume", "20260101-000000-abcdef"], "no run '20260101-000000-abcdef'"),
    ],
)
def test_review_and_compare_refuse_bad_input_before_writing(
    cli: Any, runs_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    empty = tmp_path / "prices.toml"
    empty.write_text("# no prices\n")
    args = [str(empty) if a == "EMPTY" else a for a in args]
    result = cli(*args, "--out", str(runs_dir), *(["-b", "fake"] if args[0] == "compare" else []))
    _assert_clean_failure(result, runs_dir, message)


def test_square_brackets_in_catalog_text_print_as_text(cli: Any, tmp_path: Path, runs_dir: Path) -> None:
    cat = _catalog(
        tmp_path, TOOL_YAML.format(id="a", name="Alpha [/] [bold]tool") + TOOL_YAML.format(id="b", name="B")
    )
    result = cli("compare", "a", "b", "--catalog", str(cat), "-b", "fake", "--out", str(runs_dir))
    assert result.code == 0, result.err
    assert "Alpha [/] [bold]tool" in result.out
