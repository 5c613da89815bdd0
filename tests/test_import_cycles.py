"""scripts/import_cycles.py: no import cycles in panel/run and panel/backends, and run/ leaves
rendering to its callers (no rich)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "import_cycles.py"


def _check(package: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(package), *args], capture_output=True, text=True, timeout=120
    )


def test_the_package_has_no_cycle_in_run_backends_or_view() -> None:
    done = _check(ROOT / "panel")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("run/: ") and line.endswith("0 cycle(s) (checked)") for line in lines), lines
    assert any(line.startswith("backends/: ") and line.endswith("0 cycle(s) (checked)") for line in lines), (
        lines
    )
    assert any(line.startswith("view/: ") and line.endswith("0 cycle(s) (checked)") for line in lines), lines


def _package(tmp_path: Path, a: str, b: str) -> Path:
    root = tmp_path / "pkg"
    (root / "run").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "run" / "__init__.py").write_text("")
    (root / "run" / "a.py").write_text(a)
    (root / "run" / "b.py").write_text(b)
    return root


def test_a_cycle_hidden_in_a_function_is_found_and_fails_the_check(tmp_path: Path) -> None:
    root = _package(tmp_path, "from .b import B\n", "def late():\n    from .a import A\n")
    done = _check(root)
    assert done.returncode == 1
    assert "run/: 2 modules, 1 cycle(s) (checked)" in done.stdout
    assert "pkg.run.a -> pkg.run.b -> pkg.run.a" in done.stdout
    # imports inside functions can be left out on request
    assert _check(root, "--module-level-only").returncode == 0


def test_an_import_for_types_only_makes_no_cycle_unless_asked(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        "from . import b\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .a import A\nelse:\n    pass\n",
    )
    assert _check(root).returncode == 0
    assert _check(root, "--type-checking").returncode == 1


def test_run_never_imports_rich() -> None:
    """Progress is told as events; the command line and the app render them."""
    found = []
    for path in sorted((ROOT / "panel" / "run").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] == "rich"]
    assert found == []
