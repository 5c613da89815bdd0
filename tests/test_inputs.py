"""Hand-written input files that must fail with one line naming the file and the place.

Each case runs through the CLI where a user would meet it: exit 2, exactly one line on
stderr, no traceback, nothing written under the runs folder.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from panel.errors import shown

from .conftest import ROOT
from .factories import TOOL_YAML

GOOD_JSON = {
    "id": "a",
    "name": "A",
    "category": "c",
    "tagline": "t",
    "description": "d",
    "pricing": {"model": "free"},
}

# Nine aliases of nine aliases ... : 430 bytes that expand to 9**9 strings.
BOMB = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)
BOMB += "tools: [*i]\n"


def _one_line(result: Any, runs: Path) -> str:
    """The single error line of a clean failure (exit 2, no traceback, nothing written)."""
    assert result.code == 2, result
    assert "Traceback" not in result.err + result.out
    lines = [line for line in result.err.splitlines() if line.strip()]
    assert len(lines) == 1, result.err
    assert not runs.exists() or not any(runs.iterdir()), "nothing may be written under runs/"
    line: str = lines[0]
    return line


def _compare(cli: Any, runs: Path, *args: str) -> str:
    return _one_line(cli("compare", *args, "-b", "fake", "--out", str(runs)), runs)


def _catalog(tmp_path: Path, body: str, name: str = "catalog.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


# --- YAML aliases ---------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="needs resource.setrlimit")
def test_alias_bomb_catalog_is_refused_within_a_memory_cap(tmp_path: Path) -> None:
    bomb = _catalog(tmp_path, BOMB, "bomb.yaml")
    assert len(BOMB.encode()) < 500
    # 256 MB of address space: the whole CLI needs about 60 MB; the expansion needs gigabytes.
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (256 << 20, 256 << 20))\n"
        "from panel.cli import main\n"
        f"sys.argv = ['panel', 'compare', 'a', 'b', '--catalog', {str(bomb)!r}]\n"
        "sys.argv += ['-b', 'fake', '--out', 'runs']\n"
        "main()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    # The timeout only keeps a regression from hanging the suite; the bound tested is memory.
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip() == (
        f"error: {bomb}:6: YAML aliases expand the file past 100,000 values (at alias *e); "
        "write the values out"
    )
    assert not (tmp_path / "runs").exists()


def test_aliases_a_yaml_writer_emits_for_shared_values_still_load(
    cli: Any, tmp_path: Path, runs_dir: Path
) -> None:
    import yaml

    pricing = {"model": "free", "note": "MIT"}
    tools = [{**GOOD_JSON, "pricing": pricing}, {**GOOD_JSON, "id": "b", "pricing": pricing}]
    text = yaml.safe_dump({"tools": tools})
    assert "&id001" in text and "*id001" in text
    cat = _catalog(tmp_path, text)
    result = cli("compare", "a", "b", "--catalog", str(cat), "-b", "fake", "--json", "--out", str(runs_dir))
    assert result.code == 0, result.err


def test_an_alias_to_its_own_container_is_refused(cli: Any, tmp_path: Path, runs_dir: Path) -> None:
    cat = _catalog(tmp_path, "tools: &t\n  - *t\n")
    line = _compare(cli, runs_dir, "a", "b", "--catalog", str(cat))
    assert line == f"error: {cat}:2: YAML alias *t refers to a value that contains it"


def test_deep_nesting_is_refused_not_a_recursion_error(cli: Any, tmp_path: Path, runs_dir: Path) -> None:
    cat = _catalog(tmp_path, "tools: " + "[" * 5000 + "]" * 5000 + "\n")
    line = _compare(cli, runs_dir, "a", "b", "--catalog", str(cat))
    assert line == f"error: {cat}:1: nested more than 64 levels deep"
    deep = _catalog(tmp_path, "[" * 50000 + "]" * 50000, "deep.json")
    line = _compare(cli, runs_dir, "a", "b", "--catalog", str(deep))
    assert line == f"error: {deep}:1: JSON nested too deeply"


def test_a_value_python_cannot_build_names_its_line(cli: Any, tmp_path: Path, runs_dir: Path) -> None:
    cat = _catalog(tmp_path, "tools:\n" + TOOL_YAML.format(id="a", name="A") + "    released: 2024-13-45\n")
    line = _compare(cli, runs_dir, "a", "b", "--catalog", str(cat))
    assert line == f"error: {cat}:8: cannot read the value: month must be in 1..12"


# --- duplicate keys -------------------------------------------------------------------------


def test_duplicate_key_in_a_yaml_tool_names_both_lines(cli: Any, tmp_path: Path, runs_dir: Path) -> None:
    cat = _catalog(tmp_path, "tools:\n" + TOOL_YAML.format(id="a", name="A") + "    id: b\n")
    line = _compare(cli, runs_dir, "a", "b", "--catalog", str(cat))
    assert line == f"error: {cat}:8: duplicate key 'id' (already at line 2)"


def test_duplicate_key_in_a_json_catalog_names_both_lines(cli: Any, tmp_path: Path, runs_dir: Path) -> None:
    text = json.dumps([GOOD_JSON], indent=2).replace('"pricing": {', '"pricing": {\n "model": "paid",')
    cat = _catalog(tmp_path, text, "catalog.json")
    line = _compare(cli, runs_dir, "a", "b", "--catalog", str(cat))
    # the second "model" of pricing, not the tool's first keys
    lines = text.splitlines()
    second = max(i for i, raw in enumerate(lines, 1) if '"model"' in raw)
    first = min(i for i, raw in enumerate(lines, 1) if '"model"' in raw)
    assert line == f"error: {cat}:{second}: duplicate key 'model' (already at line {first})"


def test_duplicate_key_in_a_jsonl_line_names_that_line(cli: Any, tmp_path: Path, runs_dir: Path) -> None:
    second = json.dumps({**GOOD_JSON, "id": "b"})[:-1] + ', "id": "c"}'
    cat = _catalog(tmp_path, json.dumps(GOOD_JSON) + "\n" + second + "\n", "catalog.jsonl")
    line = _compare(cli, runs_dir, "a", "b", "--catalog", str(cat))
    assert line == f"error: {cat}:2: duplicate key 'id' (already at line 2)"


def test_duplicate_key_in_a_price_file(cli: Any, tmp_path: Path, runs_dir: Path) -> None:
    prices = _catalog(tmp_path, '[prices."fake"]\ninput = 0\ninput = 1\noutput = 0\n', "prices.toml")
    result = cli("review", "-b", "fake", "--prices", str(prices), "--out", str(runs_dir))
    line = _one_line(result, runs_dir)
    assert line == f"error: {prices}:3:10: TOML syntax error: Cannot overwrite a value"


# --- price files ----------------------------------------------------------------------------

ENTRY_KEYS = "an entry has only 'input' and 'output', in USD per million tokens"
ENTRY_NEEDS = "an entry needs 'input' and 'output', in USD per million tokens"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prices = 5\n", "prices: must be a table (got 5)"),
        ('[prices]\n"openai:m" = 5\n', 'prices."openai:m": must be a table (got 5)'),
        (
            '[prices."fake"]\ninput = -1.5\noutput = 0\n',
            'prices."fake".input: Input should be greater than or equal to 0 (got -1.5)',
        ),
        (
            '[prices."fake"]\ninput = nan\noutput = 0\n',
            'prices."fake".input: Input should be a finite number (got nan)',
        ),
        (
            '[prices."fake"]\ninput = 0\noutput = inf\n',
            'prices."fake".output: Input should be a finite number (got inf)',
        ),
        (
            '[prices."fake"]\ninput = "0.5"\noutput = 0\n',
            "prices.\"fake\".input: Input should be a valid number (got '0.5')",
        ),
        (
            '[prices."fake"]\ninput = 0\noutput = 0\ncached = 0\n',
            f'prices."fake".cached: unknown key ({ENTRY_KEYS})',
        ),
        (
            '[prices."fake"]\ninput = 0\n',
            f'prices."fake".output: missing ({ENTRY_NEEDS})',
        ),
        (
            '[price."fake"]\ninput = 0\noutput = 0\n',
            'price: unknown key (a price file holds only [prices."backend:model"] tables and [batch])',
        ),
    ],
)
def test_a_price_file_of_the_wrong_shape_names_the_field(
    cli: Any, tmp_path: Path, runs_dir: Path, text: str, message: str
) -> None:
    prices = _catalog(tmp_path, text, "prices.toml")
    result = cli("review", "-b", "fake", "--prices", str(prices), "--out", str(runs_dir))
    assert _one_line(result, runs_dir) == f"error: {prices}: {message}"


def test_integer_prices_are_prices(tmp_path: Path) -> None:
    from panel.run.pricing import Price, load_prices

    prices = _catalog(tmp_path, '[prices."openai:m"]\ninput = 1\noutput = 2.5\n', "prices.toml")
    assert load_prices(prices) == {"openai:m": Price(1.0, 2.5)}


# --- text that is not UTF-8, or holds control characters --------------------------------------

FIFTH = """\
id: ethicist
name: The Ethicist
lens: who could be harmed
voice: A careful reviewer.
questions:
  - key: harm
    question: Who could be harmed?
decision: Ship when the risks are known.
"""


def _persona_dir(tmp_path: Path, text: bytes | str, name: str = "ethicist.yaml") -> Path:
    from panel.resources import data_dir

    folder = tmp_path / "personas"
    folder.mkdir(exist_ok=True)
    (folder / "builder.yaml").write_bytes((data_dir("personas") / "builder.yaml").read_bytes())
    data = text.encode() if isinstance(text, str) else text
    (folder / name).write_bytes(data)
    return folder


ALLOWED = "(only tab, line feed and carriage return are allowed)"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            b"tools:\n  - id: caf\xe9\n",
            "2: not UTF-8 text (byte 0xe9 at column 12); save the {what} as UTF-8",
        ),
        (
            b"tools:\n  - id: a\n    name: \x1b[31mA\n",
            "3:11: control character U+001B in the {what} " + ALLOWED,
        ),
        (
            "tools:\n  - id: a\n    name: \u009b31mA\n".encode(),
            "3:11: control character U+009B in the {what} " + ALLOWED,
        ),
    ],
)
@pytest.mark.parametrize("kind", ["catalog", "persona", "prices"])
def test_a_file_that_is_not_clean_utf8_text_names_the_line(
    cli: Any, tmp_path: Path, runs_dir: Path, raw: bytes, message: str, kind: str
) -> None:
    if kind == "catalog":
        path = tmp_path / "catalog.yaml"
        path.write_bytes(raw)
        result = cli("compare", "a", "b", "--catalog", str(path), "-b", "fake", "--out", str(runs_dir))
        what = "catalog file"
    elif kind == "persona":
        folder = _persona_dir(tmp_path, raw)
        path = folder / "ethicist.yaml"
        result = cli(
            "compare", "ollama", "vllm", "--personas-dir", str(folder), "-b", "fake", "--out", str(runs_dir)
        )
        what = "persona file"
    else:
        path = tmp_path / "prices.toml"
        path.write_bytes(raw)
        result = cli("review", "-b", "fake", "--prices", str(path), "--out", str(runs_dir))
        what = "price file"
    assert _one_line(result, runs_dir) == f"error: {path}:{message.format(what=what)}"


def test_a_byte_order_mark_is_not_an_error(tmp_path: Path) -> None:
    from panel.run.pricing import Price, load_prices

    prices = tmp_path / "prices.toml"
    prices.write_bytes(b'\xef\xbb\xbf[prices."x"]\ninput = 1\noutput = 2\n')
    assert load_prices(prices) == {"x": Price(1.0, 2.0)}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a FIFO")
def test_a_fifo_is_refused_without_blocking(cli: Any, tmp_path: Path, runs_dir: Path) -> None:
    fifo = tmp_path / "catalog.yaml"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer that never comes
    line = _compare(cli, runs_dir, "a", "b", "--catalog", str(fifo))
    assert line == f"error: {fifo}: the catalog file is a named pipe (FIFO)"


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_a_device_is_named_for_what_it_is(cli: Any, tmp_path: Path, runs_dir: Path) -> None:
    device = tmp_path / "catalog.json"
    device.symlink_to("/dev/null")  # as /dev/zero would be, named as a catalog
    line = _compare(cli, runs_dir, "a", "b", "--catalog", str(device))
    assert line == f"error: {device}: the catalog file is a character device"


# --- echoed values are cut ------------------------------------------------------------------

MEGA = "x" * 1_000_000


def test_a_megabyte_name_is_cut_in_the_error(cli: Any, tmp_path: Path, runs_dir: Path) -> None:
    cat = _catalog(tmp_path, "tools:\n" + TOOL_YAML.format(id="a", name=json.dumps("\n" + MEGA)))
    line = _compare(cli, runs_dir, "a", "b", "--catalog", str(cat))
    assert line == (
        f"error: {cat}:3: tool 'a': field 'name': Value error, must be one line, with no control "
        f"characters (got {shown(chr(10) + MEGA)})"
    )
    assert len(line) < 300


def test_a_megabyte_tool_id_is_cut_in_the_error(cli: Any, runs_dir: Path) -> None:
    line = _compare(cli, runs_dir, MEGA, "ollama")
    pattern = (
        rf"error: \S*catalog\.yaml: no tool with id {re.escape(shown(MEGA))} \(\d+ tools in the catalog\)"
    )
    assert re.fullmatch(pattern, line), line
    assert len(line) < 300


def test_a_megabyte_key_is_cut_in_the_error(cli: Any, tmp_path: Path, runs_dir: Path) -> None:
    cat = _catalog(tmp_path, json.dumps([{**GOOD_JSON, MEGA: 1}]), "catalog.json")
    line = _compare(cli, runs_dir, "a", "b", "--catalog", str(cat))
    assert line == f"error: {cat}:1: tool 'a': unknown field {shown(MEGA)}"
    assert len(line) < 300


def test_shown_cuts_long_values_and_keeps_short_ones() -> None:
    assert shown("ollama") == "'ollama'"
    assert shown("a\x1b[2J") == "'a\\x1b[2J'"
    assert shown("y" * 100, limit=10) == "'yyyyyyyyyy'…"
    assert shown(list(range(100)), limit=10) == "[0, 1, 2, …"


def test_a_folder_given_as_the_catalog_is_one_line_not_a_traceback(
    cli: Any, tmp_path: Path, runs_dir: Path
) -> None:
    folder = tmp_path / "catalog.yaml"
    folder.mkdir()
    line = _compare(cli, runs_dir, "a", "b", "--catalog", str(folder))
    assert line == f"error: {folder}: the catalog file is a folder"
