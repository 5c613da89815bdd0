"""`panel show` of a catalog review run: the catalog in summary (counts, the ship % spread, the
rebuttal's flips, failures, the tools an editor reads first), and `--tool ID` for one card."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from panel.backends.base import Reply, Request
from panel.backends.fake import FakeBackend

FAILING = "Amazon Textract"  # every reply about this tool is no JSON: its 4 reviews fail


@pytest.fixture
def review_run(cli: Any, runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    original = FakeBackend.generate

    async def generate(self: FakeBackend, request: Request) -> Reply:
        reply = await original(self, request)
        if FAILING in json.dumps(request.messages):
            return Reply(text="no json here", usage=reply.usage, finish_reason="stop", latency_s=0.0)
        return reply

    monkeypatch.setattr(FakeBackend, "generate", generate)
    made = cli("review", "-b", "fake", "--rebuttal", "--out", str(runs_dir), "--progress", "quiet")
    assert made.code == 0, made
    return str(made.out.split(":")[0])


def _tallies(runs_dir: Path, run_id: str) -> dict[str, tuple[int, int, int]]:
    """Each tool's (valid, ship, failed) reviews, read from the store directly."""
    db = sqlite3.connect(runs_dir / "panel.db")
    try:
        rows = db.execute(
            "SELECT tool_id, SUM(valid), SUM(valid AND verdict = 'ship'), SUM(NOT valid) FROM reviews "
            "WHERE run_id = ? GROUP BY tool_id",
            (run_id,),
        )
        return {str(t): (int(v), int(s), int(f)) for t, v, s, f in rows}
    finally:
        db.close()


def _flips(runs_dir: Path, run_id: str) -> tuple[int, int, int, int]:
    db = sqlite3.connect(runs_dir / "panel.db")
    try:
        answered, failed, to_skip, to_ship = db.execute(
            "SELECT SUM(valid), SUM(NOT valid), "
            "SUM(valid AND verdict_before = 'ship' AND verdict_after = 'skip'), "
            "SUM(valid AND verdict_before = 'skip' AND verdict_after = 'ship') "
            "FROM rebuttals WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        return int(answered), int(failed), int(to_skip), int(to_ship)
    finally:
        db.close()


def test_show_of_a_review_run_is_a_catalog_summary(cli: Any, runs_dir: Path, review_run: str) -> None:
    shown = cli("show", review_run, "--out", str(runs_dir))
    assert shown.code == 0, shown
    out = shown.out
    assert " vs " not in out and "Reviewer scorecard" not in out  # no 9-way comparison
    assert len(out.splitlines()) < 30
    assert out.splitlines()[0].startswith(f"Review run {review_run} (done): panel review -b fake")
    assert "9 tools x 4 personas x 1 member: 36 reviews, 32 valid, 4 failed" in out

    tallies = _tallies(runs_dir, review_run)
    spread = [0] * 5
    for valid, ship, _ in tallies.values():
        if valid:
            spread[min(4, 5 * ship // valid)] += 1
    printed = re.findall(r"^ +(\d+-\d+%)  #* +(\d+)$", out, re.MULTILINE)
    bins = ["0-19%", "20-39%", "40-59%", "60-79%", "80-100%"]
    assert printed == list(zip(bins, map(str, spread), strict=True))
    assert "  no valid review: 1" in out
    assert "Failed: 4 reviews in 1 tool: amazon-textract 4" in out
    (reason,) = [line for line in out.splitlines() if line.startswith("  4 x ")]  # why, once
    assert "JSON" in reason or "json" in reason, reason

    answered, failed, to_skip, to_ship = _flips(runs_dir, review_run)
    assert (
        f"Rebuttal round: {answered} valid answers, {failed} failed; {to_skip + to_ship} verdicts changed "
        f"({to_skip} ship to skip, {to_ship} skip to ship)"
    ) in out
    assert "Panel ship % by tool (round 1, before the rebuttal):" in out

    # The most contested tools come first, in triage's order, each with its reasons.
    listed = out.split("Most in need of an editor", 1)[1].splitlines()[1:]
    triaged = json.loads(cli("triage", review_run, "--format", "json", "--out", str(runs_dir)).out)["tools"]
    contested = [r for r in triaged if r["contested"]]
    assert contested, "the fake's verdicts vary across tools and personas"
    assert [line.split()[0] for line in listed[: len(contested[:5])]] == [r["tool_id"] for r in contested[:5]]
    assert contested[0]["why"].split(".")[0] in listed[0]
    assert f"One tool's card: panel show {review_run} --tool ID" in out


def test_show_tool_prints_one_tools_card_and_an_unknown_tool_is_one_line(
    cli: Any, runs_dir: Path, review_run: str
) -> None:
    card = cli("show", review_run, "--tool", "vllm", "--out", str(runs_dir))
    assert card.code == 0, card
    assert "vLLM: panel ship" in card.out and "Ollama" not in card.out
    assert card.out.count("The Skeptic") == 1
    missing = cli("show", review_run, "--tool", "nope", "--out", str(runs_dir))
    assert missing.code == 2 and "Traceback" not in missing.err
    (line,) = missing.err.strip().splitlines()
    assert line.startswith(f"error: run {review_run} has no tool 'nope': its tools are smolvlm2-2b, ")
