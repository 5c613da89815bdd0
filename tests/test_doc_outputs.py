"""The outputs the docs show are what the commands print.

A block marked `<!-- output: COMMAND -->` in README.md or docs/ is what COMMAND prints now
(on the fake backend or the loopback provider), after normalising run ids, dates, durations
and costs; the embedded model's demo (`<!-- shape: COMMAND -->`) has the title, columns, per-tool
lines, headline and closing line the command prints for the verdicts it shows; every
`"version": "X.Y"` in the docs is the record version the code writes. When one fails, the
docs went stale: `PYTHONPATH=$PWD python scripts/doc_outputs.py` writes the blocks again
(the model's demo with `--model`), and `git diff` shows what changed.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import shlex
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("doc_outputs", ROOT / "scripts" / "doc_outputs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("doc_outputs", module)
    spec.loader.exec_module(module)
    return module


SCRIPT = _script()
BLOCKS = [block for page in SCRIPT.pages() for block in SCRIPT.blocks(page)]
OUTPUTS = [b for b in BLOCKS if b.kind == "output"]
SHAPES = [b for b in BLOCKS if b.kind == "shape"]


def _label(block: Any) -> str:
    return f"{block.where} {block.command}"


def _needs_programs(command: str) -> None:
    """Skip a block whose pipeline calls a program this machine lacks (jq)."""
    for part in command.split("|")[1:]:
        program = shlex.split(part)[0]
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed")


def test_the_docs_mark_the_outputs_they_show() -> None:
    commands = {b.command for b in OUTPUTS}
    assert "panel compare olama vllm" in commands  # the error for a mistyped tool
    assert any(b.loopback for b in OUTPUTS)  # a panel of cloud members against the loopback provider
    assert any("--json" in c and "version" in c for c in commands)  # the record's version
    assert {SCRIPT._shown(b.page) for b in SHAPES} == {"README.md", "docs/index.md"}  # make demo


@pytest.mark.parametrize("block", OUTPUTS, ids=_label)
def test_a_marked_block_is_what_its_command_prints(block: Any) -> None:
    _needs_programs(block.command)
    want = SCRIPT.output_text(block)
    assert SCRIPT.normalise(block.text) == SCRIPT.normalise(want), SCRIPT._diff(block, want)


@pytest.mark.parametrize("block", SHAPES, ids=_label)
def test_the_model_demo_has_the_shape_the_command_prints(block: Any) -> None:
    assert SCRIPT.shape_problems(block) == []


def test_the_docs_name_the_record_version_the_code_writes() -> None:
    from panel.report.record import RECORD_VERSION

    assert [p for page in SCRIPT.pages() for p in SCRIPT.version_problems(page, RECORD_VERSION)] == []


def _headline_index(lines: list[str]) -> int:
    """The first line after the per-tool lines: the headline."""
    return max(i for i, line in enumerate(lines) if SCRIPT._SUMMARY.match(line.strip())) + 1


def test_a_demo_whose_verdicts_or_headline_drifted_is_caught() -> None:
    block = SHAPES[0]
    lines = block.text.splitlines()
    row = next(
        i for i, line in enumerate(lines) if line.startswith("│") and ("│ ship " in line or "│ skip " in line)
    )
    flipped = lines.copy()
    flipped[row] = (
        lines[row].replace("│ ship ", "│ skip ")
        if "│ ship " in lines[row]
        else lines[row].replace("│ skip ", "│ ship ")
    )
    reworded = lines.copy()
    reworded[_headline_index(lines)] = "Both tools win: the panel cannot choose."
    for text, problem in ((flipped, "its verdicts in the table are"), (reworded, "the headline reads")):
        found = SCRIPT.shape_problems(dataclasses.replace(block, text="\n".join(text) + "\n"))
        assert any(problem in p for p in found), found


def test_a_stale_block_is_reported_then_rewritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tmp_path / "page.md"
    stale = "error: examples/catalog.yaml: no tool with id 'olama'; did you mean 'ollama'?"
    page.write_text(
        'The record says "version": "1.3".\n\n'
        f"<!-- output: panel compare olama vllm -->\n```\n$ panel compare olama vllm\n{stale}\n```\nafter\n"
    )
    assert SCRIPT.main(["--check", str(page)]) == 1
    said = capsys.readouterr().out
    assert f"{page}:1: says version 1.3" in said and "`panel compare olama vllm`: differs" in said
    assert stale in page.read_text()  # --check changes nothing

    assert SCRIPT.main([str(page)]) == 0
    assert "rewritten" in capsys.readouterr().out
    written = page.read_text()
    assert stale not in written and "no tool with id 'olama'" in written and written.endswith("```\nafter\n")
    assert SCRIPT.main(["--check", str(page)]) == 0
