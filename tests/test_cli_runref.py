"""The command line names runs and the runs folder one way: every argument that names a run
takes `last` or a unique start of its id; `--out` is the runs folder of every command (with
`--runs` read as it); `regenerate` takes a member as the user named it; `view` refuses a
runs folder that is not there."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import pytest

from panel.store import CellKey, Store

#: the options of a review that reads the same cells as the runs below
REVIEW = ["review", "-b", "fake", "--tools", "ollama,vllm", "-p", "builder", "--progress", "quiet"]


def _line(result: Any) -> str:
    """The one line of a clean refusal: exit 2, nothing on stdout, no traceback."""
    assert result.code == 2, result
    assert "Traceback" not in result.err and result.out == ""
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    return lines[0]


@pytest.fixture
def two(cli: Any, runs_dir: Path, made: str) -> tuple[str, str]:
    """Two finished runs of the fake member, (older, newer): `made` (builder and skeptic),
    then one of the builder alone."""
    newer = cli("compare", "ollama", "vllm", "-b", "fake", "-p", "builder", "--json", "--out", str(runs_dir))
    assert newer.code == 0, newer.err
    return made, str(json.loads(newer.out)["run_id"])


# --- every argument that names a run -----------------------------------------------------


def test_show_render_diff_and_agreement_take_last_and_a_start_of_an_id(
    cli: Any, runs_dir: Path, two: tuple[str, str]
) -> None:
    older, newer = two
    out = ["--out", str(runs_dir)]
    shown = cli("show", "last", *out)
    assert shown.code == 0, shown.err
    assert cli("show", newer[:-1], *out).out == shown.out == cli("show", newer, *out).out
    assert cli("show", older[:-1], *out).out != shown.out

    def rendered(ref: str) -> str:
        result = cli("render", ref, "-f", "json", *out)
        assert result.code == 0, result.err
        return str(json.loads(result.out)["run_id"])

    assert (rendered("last"), rendered(older[:-1])) == (newer, older)
    diff = cli("diff", older[:-1], "last", *out)
    assert diff.code == 0, diff.err
    assert diff.out.splitlines()[0] == f"2 cells unchanged, 0 flipped, 2 only in {older}, 0 only in {newer}"
    agreement = cli("agreement", older[:-1], "last", "--format", "json", "--resamples", "20", *out)
    assert agreement.code == 0, agreement.err
    assert json.loads(agreement.out)["runs"] == [older, newer]


def test_batches_regenerate_resume_and_since_take_a_start_of_an_id(
    cli: Any, runs_dir: Path, two: tuple[str, str]
) -> None:
    older, newer = two
    out = ["--out", str(runs_dir)]
    batches = cli("batches", older[:-1], *out)
    assert batches.code == 0 and batches.out.strip() == f"run {older} has no batches"
    since = cli(*REVIEW, "--since", newer[:-1], *out)
    assert since.code == 0, since.err
    assert "2 copied" in since.out and f"flipped since {newer}" in since.out
    regenerated = cli("regenerate", "last", "ollama", "builder", "fake", "--reason", "thin", "--json", *out)
    assert regenerated.code == 0, regenerated.err
    assert json.loads(regenerated.out)["run_id"] == since.out.split(":")[0]  # the newest finished run
    with Store(runs_dir) as store:
        store.mark_run(older, "interrupted")
    resumed = cli("review", "--resume", older[:-1], "--progress", "quiet", *out)
    assert resumed.code == 0, resumed.err
    with Store(runs_dir, readonly=True) as store:
        run = store.get_run(older)
    assert run is not None and run.status == "done"


@pytest.mark.parametrize(
    "command",
    [
        ["show", "REF"],
        ["render", "REF"],
        ["diff", "REF", "last"],
        ["batches", "REF"],
        ["batches", "cancel", "REF"],
        ["regenerate", "REF", "ollama", "builder", "fake", "--reason", "thin"],
        ["agreement", "REF"],
        ["review", "--resume", "REF"],
        [*REVIEW, "--since", "REF"],
    ],
)
def test_an_ambiguous_or_unknown_run_is_one_line(
    cli: Any, runs_dir: Path, two: tuple[str, str], command: list[str]
) -> None:
    older, newer = two
    # Both ids start with the year: "2" names either.
    ambiguous = _line(cli(*[a.replace("REF", "2") for a in command], "--out", str(runs_dir)))
    assert ambiguous.startswith("error: ")
    assert ambiguous.endswith(f"'2' is the start of 2 runs: {newer}, {older}; give more of the id")
    unknown = _line(cli(*[a.replace("REF", "1999") for a in command], "--out", str(runs_dir)))
    assert unknown.startswith("error: ") and f"no run '1999' in {runs_dir / 'panel.db'}" in unknown


def test_last_with_no_run_of_its_kind_says_so(cli: Any, runs_dir: Path, made: str) -> None:
    with Store(runs_dir) as store:
        store.mark_run(made, "interrupted")
    out = ["--out", str(runs_dir)]
    assert _line(cli("show", "last", *out)) == f"error: 'last': no finished run in {runs_dir}"
    assert _line(cli("batches", "last", *out)) == f"error: 'last': no run with batches in {runs_dir}"


# --- one name for the runs folder ---------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    ["compare", "review", "diff", "runs", "show", "render", "batches", "agreement", "regenerate", "view"],
)
def test_every_command_names_the_runs_folder_out(cli: Any, command: str) -> None:
    shown = cli(command, "--help")
    assert shown.code == 0, shown.err
    assert "--out" in shown.out and "PANEL_RUNS_DIR" in shown.out
    assert "--runs" not in shown.out  # the old name is still read, and kept out of the help


def test_runs_is_read_as_out_and_the_environment_names_the_folder(
    cli: Any, runs_dir: Path, made: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed = cli("runs", "--runs", str(runs_dir))
    assert listed.code == 0, listed.err
    assert listed.out.splitlines()[1].startswith(f"{made}  done")
    assert cli("show", made, "--runs", str(runs_dir)).code == 0
    rendered = cli("render", made, "-f", "json", "--out", str(runs_dir))
    assert rendered.code == 0 and json.loads(rendered.out)["run_id"] == made
    monkeypatch.setenv("PANEL_RUNS_DIR", str(runs_dir))
    monkeypatch.chdir(tmp_path)  # no runs folder here: the environment names it
    assert cli("runs").out.splitlines()[1].startswith(made)
    assert json.loads(cli("render", "last", "-f", "json").out)["run_id"] == made


def test_render_writes_its_file_with_output_and_says_so_to_the_old_spelling(
    cli: Any, runs_dir: Path, made: str, tmp_path: Path
) -> None:
    page = tmp_path / "page.html"
    written = cli("render", made, "-o", str(page), "--out", str(runs_dir))
    assert written.code == 0 and written.err.strip() == f"wrote {page}" and page.is_file()
    page.unlink()
    old = cli("render", made, "--out", str(page))
    assert _line(old) == (
        f"error: --out {page}: --out is the runs folder; to write the html to a file, give -o/--output {page}"
    )
    assert not page.exists()


# --- regenerate: a member as the user named it ---------------------------------------------


def test_regenerate_takes_the_member_as_it_was_typed_and_lists_the_runs_members(
    cli: Any, runs_dir: Path, made: str
) -> None:
    out = ["--out", str(runs_dir)]
    done = cli("regenerate", made, "ollama", "builder", "fake", "--reason", "thin", "--json", *out)
    assert done.code == 0, done.err
    assert json.loads(done.out)["member"] == "fake:schema"  # `-b fake` is fake:schema in the run
    said = cli("regenerate", made, "ollama", "builder", "fake", "--reason", "thin", *out)
    assert said.code == 0 and " on fake:schema: " in said.out
    with Store(runs_dir, readonly=True) as store:
        kept = store.review_history(made, CellKey("ollama", "builder", "fake:schema"))
    assert [h.reason for h in kept] == ["thin", "thin"]
    unknown = _line(cli("regenerate", made, "ollama", "builder", "local", "--reason", "thin", *out))
    assert unknown == (
        f"error: cannot regenerate the review of ollama by builder on local: run '{made}' has no "
        "member 'local'; its members: fake:schema (or fake)"
    )


# --- view: a runs folder that is not there --------------------------------------------------


@pytest.mark.parametrize("flag", ["--out", "--runs"])
def test_view_refuses_a_runs_folder_that_does_not_exist(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: str
) -> None:
    view = importlib.import_module("panel.cli.view")  # the module, not the command
    monkeypatch.setattr(view, "_serve", lambda *a: pytest.fail("served"))
    missing = tmp_path / "nonexistent"
    line = _line(cli("view", flag, str(missing), "--port", "0"))
    assert line == (
        f"error: --out {missing}: no such folder; give the folder that holds your runs (panel.db), "
        f"or make an empty one to start with: mkdir -p {missing}"
    )
    assert not missing.exists()
    a_file = tmp_path / "runs.txt"
    a_file.write_text("")
    line = _line(cli("view", flag, str(a_file), "--port", "0"))
    assert line == f"error: --out {a_file} is a file: give the folder that holds your runs (panel.db)"
