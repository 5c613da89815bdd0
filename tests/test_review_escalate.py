"""`panel review --escalate`: after the run, triage.json in the run's folder (what `panel
triage --format json` prints) and one summary line; bad rule input refused before the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from panel.resources import data_dir
from tests.factories import catalog_file


def _triage_json(runs_dir: Path) -> tuple[str, dict[str, Any]]:
    (found,) = runs_dir.glob("*/triage.json")
    written = json.loads(found.read_text(encoding="utf-8"))
    jsonschema.validate(written, json.loads((data_dir("schema") / "triage.schema.json").read_text()))
    return found.parent.name, written


def test_published_triage_schema_matches_the_models(cli: Any) -> None:
    printed = cli("schema", "--triage").out
    assert printed == (data_dir("schema") / "triage.schema.json").read_text(), (
        "schema/triage.schema.json is stale: run `make schema`"
    )


def test_without_labels_triage_json_holds_the_ranking_and_the_line_says_no_guarantee(
    cli: Any, runs_dir: Path
) -> None:
    result = cli("review", "-b", "fake", "--escalate", "--progress", "quiet", "--out", str(runs_dir))
    assert result.code == 0, result.err
    run_id, written = _triage_json(runs_dir)
    assert written["rule"]["guarantee"] is False and written["rule"]["labels"] == 0
    assert {r["decision"] for r in written["tools"]} == {"editor"} and len(written["tools"]) == 9
    assert "No guarantee is possible: 0 labelled tools" in result.out
    assert "the ranking by doubt is in triage.json" in " ".join(result.out.split())
    again = cli("triage", run_id, "--reference", "editors", "--format", "json", "--out", str(runs_dir))
    assert json.loads(again.out) == written


def test_triage_json_is_the_commands_json_for_a_name_with_bidi_and_controls(
    cli: Any, runs_dir: Path, tmp_path: Path
) -> None:
    catalog = catalog_file(tmp_path / "catalog.jsonl", 3)
    lines = catalog.read_text().splitlines()
    first = json.loads(lines[0])
    first["name"] = "Evil\u202eName\u200b"
    catalog.write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    result = cli(
        "review", str(catalog), "-b", "fake", "--escalate", "--progress", "quiet", "--out", str(runs_dir)
    )
    assert result.code == 0, result.err
    run_id, written = _triage_json(runs_dir)
    names = {r["name"] for r in written["tools"]}
    assert "EvilName" in "".join(names) and not any("\u202e" in n for n in names)
    again = cli("triage", run_id, "--reference", "editors", "--format", "json", "--out", str(runs_dir))
    assert json.loads(again.out) == written


def test_with_a_labels_file_the_line_gives_coverage_threshold_and_labels(
    cli: Any, runs_dir: Path, tmp_path: Path
) -> None:
    catalog = catalog_file(tmp_path / "catalog.jsonl", 60)
    first = cli("review", str(catalog), "-b", "fake", "--progress", "quiet", "--out", str(runs_dir))
    assert first.code == 0, first.err
    # A researcher's labels: the panel's own verdict on 45 tools (the fake backend answers the
    # same again, so the next run's verdicts on them all agree)
    seen = json.loads(cli("triage", "last", "--format", "json", "--out", str(runs_dir)).out)["tools"]
    rows = [f"{r['tool_id']},{'ship' if r['verdict'] == 'ship' else 'skip'}" for r in seen if r["verdict"]]
    labels = tmp_path / "labels.csv"
    labels.write_text("tool,verdict\n" + "\n".join(rows[:45]) + "\n", encoding="utf-8")
    second = cli("review", str(catalog), "-b", "fake", "--escalate", "--reference", str(labels),
                 "--progress", "quiet", "--out", str(runs_dir))  # fmt: skip
    assert second.code == 0, second.err
    _, written = _triage_json(runs_dir)
    rule = written["rule"]
    assert rule["guarantee"] is True and rule["labels"] == 45 and rule["bound"] >= 0.9, rule
    published = sum(r["decision"] == "publish" for r in written["tools"])
    assert 45 <= published == rule["published"]
    line = " ".join(second.out.split())
    assert (
        f"{published} of 60 verdicts can be published unread (coverage {published / 60:.2f}) at agreement "
        f">= 0.90 with 95% confidence, threshold {rule['threshold']:.2f}, on 45 reference labels "
        "(assuming the labelled tools are a random sample of the run); "
        f"{60 - published} need"
    ) in line
    assert "triage.json" in line.split("wrote")[1]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--target", "0"), "--target 0.0"),
        (("--reference", "missing.csv"), "--reference missing.csv"),
    ],
)
def test_bad_rule_input_is_refused_before_the_run(
    cli: Any, runs_dir: Path, args: tuple[str, ...], said: str
) -> None:
    result = cli("review", "-b", "fake", "--escalate", *args, "--progress", "quiet", "--out", str(runs_dir))
    assert result.code == 2 and said in result.err and len(result.err.strip().splitlines()) == 1
    assert not (runs_dir / "panel.db").exists()


def test_without_the_analysis_extra_the_rule_says_what_to_install(
    cli: Any, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(__import__("sys").modules, "scipy.stats", None)
    result = cli("review", "-b", "fake", "--escalate", "--progress", "quiet", "--out", str(runs_dir))
    assert result.code == 2 and "pip install 'toolpanel[analysis]'" in result.err
    assert len(result.err.strip().splitlines()) == 1 and not (runs_dir / "panel.db").exists()


@pytest.mark.parametrize(
    ("rows", "said"),
    [
        ("ollama,ship\nnope-tool,ship\n", "labels.csv:3: tool 'nope-tool' is not a tool of the run"),
        ("ollama,maybe\n", "labels.csv:2:"),
    ],
)
def test_a_bad_labels_file_is_refused_before_the_run(
    cli: Any, runs_dir: Path, tmp_path: Path, rows: str, said: str
) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("tool,verdict\n" + rows, encoding="utf-8")
    result = cli("review", "-b", "fake", "--escalate", "--reference", str(labels), "--progress", "quiet",
                 "--out", str(runs_dir))  # fmt: skip
    assert result.code == 2 and said in result.err and len(result.err.strip().splitlines()) == 1, result.err
    assert result.out == "" and (not runs_dir.exists() or not any(runs_dir.iterdir()))


def test_a_labels_file_gone_after_the_run_leaves_the_run_written_and_says_how_to_triage(
    cli: Any, runs_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import panel.cli.run as run_cli

    labels = tmp_path / "labels.csv"
    labels.write_text("tool,verdict\nollama,ship\n", encoding="utf-8")
    real = run_cli.execute

    def execute_then_remove(*args: Any, **kwargs: Any) -> Any:
        outcome = real(*args, **kwargs)
        labels.unlink()  # the file vanishes while the run is being sent
        return outcome

    monkeypatch.setattr(run_cli, "execute", execute_then_remove)
    result = cli("review", "-b", "fake", "--escalate", "--reference", str(labels), "--progress", "quiet",
                 "--out", str(runs_dir))  # fmt: skip
    assert result.code == 4, result.err
    (folder,) = [p for p in runs_dir.iterdir() if p.is_dir()]
    assert (folder / "reviews.jsonl").is_file() and not (folder / "triage.json").exists()
    assert f"wrote {folder}" in result.out and "triage.json" not in result.out.split("wrote")[1]
    (line,) = [x for x in result.err.splitlines() if "triage.json" in x]
    assert line.startswith("triage.json not written: ") and str(labels) in line
    assert line.endswith(f"run `panel triage {folder.name} --reference {labels} --out {runs_dir}`")
    again = cli("review", "--help")
    assert "4 (--escalate)" in " ".join(again.out.split())


def _detached(cli: Any, fake: Any, runs_dir: Path, tmp_path: Path, *extra: str) -> Any:
    """`panel review --route batch --detach` of one tool, its batch an hour long at the provider."""
    config = tmp_path / "panel.toml"
    config.write_text(
        f'[[members]]\nspec = "openai:gpt-4.1-mini"\nbase_url = "{fake.base_url("openai")}"\ntimeout = 5\n'
    )
    fake.configure(batch_seconds=3600)
    return cli("review", *extra, "--config", str(config), "--out", str(runs_dir), "--detach",
               "--poll-interval", "0", "--progress", "quiet")  # fmt: skip


def test_a_detached_run_says_it_writes_no_triage_json(
    cli: Any, fake: Any, runs_dir: Path, tmp_path: Path
) -> None:
    result = _detached(cli, fake, runs_dir, tmp_path, "--tools", "ollama", "--route", "batch", "--escalate")
    assert result.code == 0, result.err
    run_id = result.out.split(":", 1)[0]
    (line,) = [x for x in result.err.splitlines() if "triage.json" in x]
    assert line.startswith("triage.json not written: the run is detached")
    assert line.endswith(f"`panel triage {run_id} --reference editors --out {runs_dir}`")


def test_resume_with_a_bad_labels_file_is_refused_before_collecting(
    cli: Any, fake: Any, runs_dir: Path, tmp_path: Path
) -> None:
    assert _detached(cli, fake, runs_dir, tmp_path, "--tools", "ollama", "--route", "batch").code == 0
    labels = tmp_path / "labels.csv"
    labels.write_text("tool,verdict\nvllm,ship\n", encoding="utf-8")  # a tool not in that run
    before = fake.stats()
    result = _detached(
        cli, fake, runs_dir, tmp_path, "--resume", "last", "--escalate", "--reference", str(labels)
    )
    assert result.code == 2 and result.out == "" and len(result.err.strip().splitlines()) == 1, result.err
    assert result.err.startswith(f"error: {labels}:2: tool 'vllm' is not a tool of the run")
    assert fake.stats() == before  # the provider was not asked anything
