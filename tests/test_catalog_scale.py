"""Catalogs of thousands of tools: read an entry at a time, holding the tools and one block of
text (never the whole file's values at once), and a problem still named by its line.

Memory is counted with tracemalloc (allocations, not time): what reading a catalog allocates
beyond what the catalog keeps. Speed is measured by bench/bench_catalog.py, not here.
"""

from __future__ import annotations

import json
import os
import re
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml

from panel import catalog as catalog_module
from panel import loaders, yaml_loader
from panel.catalog import load_catalog
from panel.errors import CatalogError
from panel.view.toolform import ToolForm, check

BLOCK = 1 << 16  # read 64 KiB at a time, so a catalog of a few MB spans many blocks


def _tool(i: int) -> dict[str, Any]:
    return {
        "id": f"tool-{i:05d}",
        "name": f"Tool {i}",
        "category": "Developer Tools",
        "tagline": f"Generated tool number {i}",
        "description": f"Tool {i} is a generated entry with a description of a realistic length, "
        "saying what it does and for whom.",
        "pricing": {"model": "free", "note": ""},
        "links": {"home": f"https://example.com/{i}"},
        "facts": [f"Fact {j} about tool {i}." for j in range(3)],
    }


def _write(path: Path, tools: list[dict[str, Any]]) -> Path:
    if path.suffix == ".json":
        path.write_text(json.dumps({"tools": tools}, indent=2), encoding="utf-8")
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(t) + "\n" for t in tools), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump({"tools": tools}, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loaders, "BLOCK_BYTES", BLOCK, raising=False)


@pytest.mark.parametrize("fmt", ["json", "jsonl", "yaml"])
def test_reading_holds_the_tools_and_a_few_blocks_not_the_files_values(
    tmp_path: Path, fmt: str, small_blocks: None
) -> None:
    path = _write(tmp_path / f"catalog.{fmt}", [_tool(i) for i in range(3000)])
    size = path.stat().st_size
    assert size > 16 * BLOCK
    tracemalloc.start()
    try:
        catalog = load_catalog(path)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(catalog) == 3000
    # Reading the whole file's values at once (its text, every entry as read, a YAML node
    # graph) took 1.6 (JSON), 3.4 (JSONL) and 47 (YAML) times the file's size beyond them.
    assert peak - kept < size / 4, f"{(peak - kept) / size:.2f} x the file's size beyond the catalog"


@pytest.mark.parametrize("fmt", ["json", "jsonl", "yaml"])
def test_a_problem_deep_in_a_long_catalog_names_its_line(
    tmp_path: Path, fmt: str, small_blocks: None
) -> None:
    tools = [_tool(i) for i in range(2000)]
    tools[1500]["pricing"]["model"] = "cheap"
    path = _write(tmp_path / f"catalog.{fmt}", tools)
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    message = str(caught.value)
    assert "tool 'tool-01500': field 'pricing.model'" in message
    line = path.read_text(encoding="utf-8").splitlines()[int(message.split(":")[1]) - 1]
    # the field's own line where the format tells it (YAML), else the tool's first line
    assert {"yaml": "model: cheap", "json": "{", "jsonl": '"tool-01500"'}[fmt] in line


@pytest.mark.parametrize("fmt", ["json", "jsonl", "yaml"])
def test_a_duplicate_id_far_apart_names_both_lines(tmp_path: Path, fmt: str, small_blocks: None) -> None:
    tools = [_tool(i) for i in range(2000)]
    tools[1800]["id"] = "tool-00007"
    path = _write(tmp_path / f"catalog.{fmt}", tools)
    lines = path.read_text(encoding="utf-8").splitlines()
    with pytest.raises(
        CatalogError, match=r"duplicate tool id 'tool-00007' \(first defined at line (\d+)\)"
    ) as caught:
        load_catalog(path)
    message = str(caught.value)
    first = int(message.rsplit("line ", 1)[1].rstrip(")"))
    second = int(message.split(":")[1])
    # each names the line its tool starts on, the tool's name on it or just after it
    assert any(re.search(r"Tool 7\b", line) for line in lines[first - 1 : first + 2])
    assert any(re.search(r"Tool 1800\b", line) for line in lines[second - 1 : second + 2])


def test_the_forms_duplicate_words_name_the_line_in_a_json_catalog(
    tmp_path: Path, small_blocks: None
) -> None:
    path = _write(tmp_path / "catalog.json", [_tool(i) for i in range(1000)])
    catalog = load_catalog(path)
    form = ToolForm()
    form.values.update(id="tool-00900", name="N", category="C", tagline="T", description="D")
    form.compare, form.personas = "tool-00001", ["builder"]
    assert check(form, catalog, ["builder"]) is None
    said = form.errors["id"]
    taken = r"The catalog already has a tool with id 'tool-00900' \((.+), line (\d+)\): .+"
    named = re.fullmatch(taken, said)
    assert named is not None, said
    assert named.group(1) == str(path)  # the file, and the line in it
    line = int(named.group(2))
    text = path.read_text(encoding="utf-8").splitlines()
    assert text[line - 1].strip() == "{" and '"tool-00900"' in text[line]
    # an offset means nothing in another file: once the file changes, no line is made up
    path.write_text(path.read_text(encoding="utf-8").replace("    {", "\n\n    {"), encoding="utf-8")
    assert catalog.line("tool-00900") == 0


def test_a_syntax_error_after_a_tool_is_reported_not_the_tool_it_cut_short(tmp_path: Path) -> None:
    # `pricing:` one space to the left ends the tool early; the parser finds out a line later
    tools = [_tool(i) for i in range(3)]
    text = yaml.safe_dump({"tools": tools}, sort_keys=False, indent=4)
    at = text.index("    pricing:", text.index("tool-00001"))
    bad = text[:at] + text[at + 1 :]
    path = tmp_path / "catalog.yaml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(CatalogError, match=r"YAML syntax error"):
        load_catalog(path)


def test_a_long_catalog_a_yaml_writer_wrote_with_a_shared_value_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PyYAML writes a value many tools share once, anchored, and an alias at each other use;
    # each alias adds the value's size. A fixed bound on what aliases add refused such a
    # catalog as an alias bomb past a number of tools (about 20,000 with a shared pricing at
    # the bound of 100,000 values; 200 here, with the bound lowered to 1,000).
    monkeypatch.setattr(yaml_loader, "ALIAS_BUDGET", 1000)
    free = {"model": "free", "note": ""}
    tools = [{**_tool(i), "pricing": free} for i in range(500)]
    path = _write(tmp_path / "catalog.yaml", tools)
    assert path.read_text(encoding="utf-8").count("*id001") == 499
    assert len(load_catalog(path)) == 500
    # A bomb is still one, however much the file writes out besides.
    bomb = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
        f"{x}: &{x} [{', '.join([f'*{p}'] * 9)}]\n" for p, x in zip("abcdefgh", "bcdefghi", strict=True)
    )
    path.write_text(bomb + path.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(CatalogError, match=r"catalog\.yaml:\d+: YAML aliases expand the file past"):
        load_catalog(path)


@pytest.mark.parametrize("fmt", ["json", "jsonl", "yaml"])
def test_a_catalog_saved_over_while_it_is_read_is_refused_not_mixed(
    tmp_path: Path, fmt: str, small_blocks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An editor that saves over the file in place (same inode) while a long catalog is read:
    # the blocks read after come from the new text. With the same layout and other ids, the
    # two halves made one valid catalog that was neither version.
    tools = [_tool(i) for i in range(2000)]
    path = _write(tmp_path / f"catalog.{fmt}", tools)
    inode = path.stat().st_ino
    renamed = [{**tool, "id": tool["id"].replace("tool-", "next-")} for tool in tools]
    opened = catalog_module.open_catalog_file

    def saved_over_after_ten_tools(at: Path) -> Any:
        file = opened(at)
        entries = file.entries

        def read() -> Any:
            for n, entry in enumerate(entries()):
                if n == 10:
                    _write(path, renamed)
                    later = path.stat().st_mtime_ns + 1_000_000_000  # a clock tick apart at least
                    os.utime(path, ns=(later, later))
                yield entry

        file.entries = read  # type: ignore[method-assign]
        return file

    monkeypatch.setattr(catalog_module, "open_catalog_file", saved_over_after_ten_tools)
    with pytest.raises(CatalogError, match=r"the catalog file changed while it was read"):
        load_catalog(path)
    assert path.stat().st_ino == inode


@pytest.mark.parametrize(
    ("value", "problem"),
    [("[" * 5000 + "]" * 5000, "JSON nested too deeply"), ("1" * 5000, "cannot read a value: Exceeds")],
)
def test_a_value_json_cannot_read_names_the_line_of_its_tool(
    tmp_path: Path, small_blocks: None, value: str, problem: str
) -> None:
    # The parser gives no place for these (Python's own bounds); the line was left out, in a
    # file of thousands of lines. A JSONL line is the tool's; in JSON, the line it starts on.
    tools = [_tool(i) for i in range(2000)]
    tools[1500]["facts"] = ["PLACEHOLDER"]
    for fmt in ("jsonl", "json"):
        path = _write(tmp_path / f"catalog.{fmt}", tools)
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace('"PLACEHOLDER"', value), encoding="utf-8")
        lines = text.splitlines()
        start = next(i for i, line in enumerate(lines) if '"tool-01500"' in line) + 1
        if fmt == "json":
            start -= 1  # the line of its opening brace
            assert lines[start - 1].strip() == "{"
        with pytest.raises(CatalogError) as caught:
            load_catalog(path)
        assert str(caught.value).startswith(f"{path}:{start}: {problem}"), str(caught.value)
