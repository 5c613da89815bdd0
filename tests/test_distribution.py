"""The project installs under a name of its own, with both scripts, and says so when `panel` clashes."""

from __future__ import annotations

import email
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

from panel import __version__
from panel._about import DISTRIBUTION, install_hint

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    (built,) = out.glob("*.whl")
    return built


def _metadata(wheel: Path) -> tuple[email.message.Message, str, list[str]]:
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        return email.message_from_bytes(zf.read(info)), zf.read(points).decode(), names


def test_the_wheel_is_named_toolpanel_and_installs_both_scripts(wheel: Path) -> None:
    meta, points, names = _metadata(wheel)
    assert meta["Name"] == "toolpanel" == DISTRIBUTION
    assert meta["Version"] == __version__
    assert wheel.name.startswith(f"toolpanel-{__version__}-")
    scripts = dict(
        line.replace(" ", "").split("=", 1)
        for line in points.split("[console_scripts]")[1].splitlines()
        if "=" in line
    )
    assert scripts == {"toolpanel": "toolpanel:main", "panel": "toolpanel:main"}
    # The entry module, the package and its data all travel in the wheel.
    assert "toolpanel.py" in names
    assert "panel/cli/__init__.py" in names
    assert "panel/_data/prices.toml" in names
    assert any(n.startswith("panel/_data/personas/") for n in names)
    assert any(n.startswith("panel/_data/prompts/") for n in names)
    # The pages' templates: the comparison's and the agreement report's, the layout and the
    # blocks they share with `panel view`, and the stylesheets the files inline.
    for name in (
        "layout.html.j2",
        "file.html.j2",
        "comparison.html.j2",
        "comparison_block.html.j2",
        "comparison.css",
    ):
        assert f"panel/report/templates/{name}" in names
    for name in ("agreement.html.j2", "agreement_block.html.j2", "agreement.css"):
        assert f"panel/analysis/templates/{name}" in names


def test_every_extra_resolves_to_installed_packages(wheel: Path) -> None:
    """Each extra (self-references followed) names requirements this environment satisfies."""
    from importlib.metadata import PackageNotFoundError, version

    meta, _, _ = _metadata(wheel)
    extras = set(meta.get_all("Provides-Extra") or [])
    assert {"local", "openai", "anthropic", "mistral", "hf", "cloud", "analysis", "parquet", "all"} <= extras
    requirements = [Requirement(r) for r in meta.get_all("Requires-Dist") or []]

    def needs(extra: str) -> list[Requirement]:
        env = {**default_environment(), "extra": extra}
        return [r for r in requirements if r.marker is not None and r.marker.evaluate(env)]

    for extra in sorted(extras - {"dev"}):
        pending, seen, leaves = [extra], set(), []
        while pending:
            current = pending.pop()
            seen.add(current)
            for req in needs(current):
                if req.name == DISTRIBUTION:
                    unknown = req.extras - extras
                    assert not unknown, f"extra '{current}' refers to missing extras {unknown}"
                    pending += [e for e in req.extras if e not in seen]
                else:
                    leaves.append(req)
        assert leaves, f"extra '{extra}' installs nothing"
        for req in leaves:
            try:
                installed = version(req.name)
            except PackageNotFoundError:
                pytest.fail(f"extra '{extra}' needs {req}, which is not installed")
            assert req.specifier.contains(installed, prereleases=True), f"{req} vs installed {installed}"


def test_install_hints_name_the_distribution() -> None:
    assert install_hint("openai") == "pip install 'toolpanel[openai]'"


def _launch(
    tmp_path: Path, *args: str, path_first: Path | None = None, extra_path: str = ""
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (extra_path, str(ROOT)) if p)
    if path_first is not None:
        env["PATH"] = f"{path_first}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        # -c, not the script's path: a script's own folder would come first on sys.path.
        [sys.executable, "-c", "import toolpanel; toolpanel.main()", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )


def test_another_projects_panel_package_is_named_with_the_fix(tmp_path: Path) -> None:
    """HoloViz Panel installed over this project: one line and exit 2, not its traceback."""
    site = tmp_path / "site"
    (site / "panel").mkdir(parents=True)
    (site / "panel" / "__init__.py").write_text("raise ImportError('this is not the panel you want')\n")
    info = site / "panel-1.9.4.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: panel\nVersion: 1.9.4\n")
    done = _launch(tmp_path, "runs", extra_path=str(site))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "`import panel` loads another project's package (panel 1.9.4)" in lines[0]
    assert "virtual environment of its own" in lines[0]
    assert "Traceback" not in done.stderr


def test_a_second_distribution_sharing_the_folder_is_reported(tmp_path: Path) -> None:
    site = tmp_path / "site"
    info = site / "panel-1.9.4.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: panel\nVersion: 1.9.4\n")
    done = _launch(tmp_path, "schema", extra_path=str(site))
    assert done.returncode == 0, done.stderr
    assert "note: panel 1.9.4 is installed here too and shares the `panel` package folder" in done.stderr
    assert done.stdout.startswith("{")  # the command still ran, its output untouched


def test_a_foreign_panel_on_path_is_named_by_the_other_script(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "panel"
    script.write_text("#!/bin/sh\necho 'Bokeh app server'\n")
    script.chmod(0o755)
    done = _launch(tmp_path, "--version", path_first=bin_dir)
    assert (
        f"note: `panel` on your PATH ({script}) is another program; run this tool as `toolpanel`"
        in done.stderr
    )
    # Our own script on PATH is not reported.
    script.write_text("#!/usr/bin/python3\nfrom toolpanel import main\nmain()\n")
    done = _launch(tmp_path, "--version", path_first=bin_dir)
    assert "is another program" not in done.stderr
