"""The documentation site builds with `mkdocs build --strict`, a broken link fails that build,
the configuration reference lists every option the models take, and the README's links lead
to files that exist."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _build(project: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(project / "mkdocs.yml")]
    return subprocess.run(
        [*command, "-d", str(site)], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_config", ROOT / "docs" / "gen_config.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_site_builds_strict_with_the_generated_reference(tmp_path: Path) -> None:
    result = _build(ROOT, tmp_path / "site")
    assert result.returncode == 0, result.stderr[-2000:]
    page = (tmp_path / "site" / "configuration" / "index.html").read_text()
    assert "panel:options" not in page  # the marker was replaced by the tables
    for option in ("n_ctx", "token_param", "max_rate_wait", "headroom"):
        assert f"<code>{option}</code>" in page, option
    for schema in ("comparison", "triage", "leaderboard"):  # published, so the pages can link them
        published = tmp_path / "site" / "schema" / f"{schema}.schema.json"
        assert published.read_bytes() == (ROOT / "schema" / f"{schema}.schema.json").read_bytes(), schema


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    project = tmp_path / "project"
    for part in ("docs", "schema"):
        shutil.copytree(ROOT / part, project / part)
    (project / "bench").mkdir()
    shutil.copy(ROOT / "bench" / "README.md", project / "bench" / "README.md")
    shutil.copy(ROOT / "mkdocs.yml", project / "mkdocs.yml")
    guide = project / "docs" / "guide" / "editor.md"
    guide.write_text(guide.read_text() + "\nSee [the missing page](../no-such-page.md).\n")
    result = _build(project, tmp_path / "site")
    assert result.returncode != 0
    assert "guide/editor.md" in result.stderr and "no-such-page.md" in result.stderr, result.stderr[-2000:]


def test_reference_lists_every_option_of_every_backend() -> None:
    from panel.backends.registry import BACKENDS, options_model
    from panel.config import MemberConfig, RetryConfig

    text = _generator().reference()
    for name in BACKENDS:
        assert f"### `{name}`" in text
        for option in options_model(name).model_fields:
            assert f"`{option}`" in text, (name, option)
    for option in (*MemberConfig.model_fields, *RetryConfig.model_fields):
        assert f"`{option}`" in text, option


@pytest.mark.parametrize("page", ["README.md", "bench/README.md"])
def test_relative_links_lead_to_files(page: str) -> None:
    source = ROOT / page
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", source.read_text())
    local = [t for t in targets if "://" not in t and not t.startswith("mailto:")]
    missing = [t for t in local if not (source.parent / t).exists()]
    assert not missing, missing
