"""Review of issue 25 (makers/recusal and head-to-head) as merged on main: each test reproduces
one finding and is xfail(strict=True) until it is fixed (the reason names the finding)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from panel.config import load_config
from panel.run.plan import plan_run

from .test_makers import _catalog, _toml

RECUSING = (
    '[[members]]\nspec = "fake"\nname = "a"\nmaker = "Acme"\nrecuse = "maker"\n'
    '[[members]]\nspec = "fake"\nname = "b"\n'
)
MAKERS = {"acme-one": "Acme", "other": "Other"}


def _plan(
    tmp_path: Path, toml: str, *, head_to_head: bool = False, personas: tuple[str, ...] = ("builder",)
) -> Any:
    return plan_run(
        None,
        catalog=_catalog(tmp_path, MAKERS),
        persona_ids=list(personas),
        config=load_config(_toml(tmp_path, toml)),
        head_to_head=head_to_head,
    )


@pytest.mark.xfail(
    strict=True, reason="F9: `panel agreement --report` leaves the self-preference table out of the page"
)
def test_f9_the_agreement_report_page_has_the_self_preference_table(cli: Any, tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, {"acme-one": "Acme", "acme-two": "Acme", "other": "Other", "more": "Other"})
    config = _toml(
        tmp_path,
        '[[members]]\nspec = "fake"\nname = "a"\nmaker = "Acme"\n'
        '[[members]]\nspec = "fake:two"\nname = "o"\nmaker = "Other"\n'
        '[[members]]\nspec = "fake:three"\nname = "n"\n',
    )
    runs = str(tmp_path / "runs")
    made = cli("review", str(catalog), "--config", str(config), "-p", "builder", "-p", "skeptic",
               "--out", runs, "--progress", "quiet")  # fmt: skip
    assert made.code == 0, made.err
    table = cli("agreement", "last", "--out", runs)
    assert table.code == 0 and "Self-preference" in table.out, table.err  # the table has it ...
    page = tmp_path / "agreement.html"
    assert cli("agreement", "last", "--out", runs, "--report", str(page)).code == 0
    assert "Self-preference" in page.read_text(encoding="utf-8")  # ... the page does not
