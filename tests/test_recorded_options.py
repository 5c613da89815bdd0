"""A run records its members' options; `--resume` and `panel batches cancel` read them back
into each backend's typed options: the dicts older versions wrote load, and what no longer
validates is one line naming the run and the member, exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from panel.store import Store

#: the options of an openai member as the run store held them before options were typed
#: (written by panel at b64677c, a member with every kind of option set)
OLD_OPTIONS = {
    "base_url": "http://127.0.0.1:9/v1",
    "timeout": 20.0,
    "concurrency": 2,
    "rpm": 600.0,
    "price_input": 1.0,
    "price_output": 2.0,
    "structured": "json_object",
    "fit_strings": True,
    "token_param": "max_tokens",
    "sampling": {"repeat_penalty": 1.1},
    "depth": "full",
    "max_tokens": 1600,
}


def _stopped_run(cli: Any, runs: Path, options: dict[str, Any]) -> str:
    """A finished run of the fake member, its record rewritten: an openai member with these
    options, stopped before its end."""
    result = cli("compare", "ollama", "vllm", "-b", "fake", "--out", str(runs))
    assert result.code == 0, result.err
    with Store(runs) as store:
        run_id = store.latest_run()
        assert run_id is not None
        config = store.get_run(run_id).config  # type: ignore[union-attr]
        config["member_specs"] = [{"spec": "openai:gpt-4.1-mini", "name": "gw", "options": options}]
        store.db.execute(
            "UPDATE runs SET config = ?, status = 'interrupted' WHERE id = ?", (json.dumps(config), run_id)
        )
        store.db.commit()
        return run_id


def test_options_recorded_as_a_dict_by_an_older_version_load_typed(
    cli: Any, runs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from panel.run.plan import plan_resume

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-recorded-1234")
    run_id = _stopped_run(cli, runs_dir, OLD_OPTIONS)
    with Store(runs_dir) as store:
        plan = plan_resume(store, run_id)
    (member,) = plan.members
    (spec,) = plan.specs
    assert spec.options.written() == OLD_OPTIONS  # read back as written, nothing added or lost
    assert (member.concurrency, member.timeout, member.depth, member.max_tokens) == (2, 20.0, "full", 1600)
    assert member.limiter.rpm == 600.0 and member.price is not None and member.price.input == 1.0
    backend: Any = member.backend
    assert (backend.negotiator.form, backend.fit_strings, backend.token_param) == (
        "json_object",
        True,
        "max_tokens",
    )


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"tokens_param": 5}, "members[0].tokens_param: backend 'openai' has no such option"),
        ({"structured": "grammar"}, "members[0].structured: structured takes"),
        ({"headers": {"Cookie": "session=1"}}, "members[0].headers: header 'Cookie' carries a key"),
    ],
    ids=["unknown", "bad-value", "refused-header"],
)
def test_recorded_options_that_no_longer_validate_name_the_run_and_the_member(
    cli: Any, runs_dir: Path, monkeypatch: pytest.MonkeyPatch, change: dict[str, Any], named: str
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-recorded-1234")
    run_id = _stopped_run(cli, runs_dir, {**OLD_OPTIONS, **change})
    result = cli("review", "--resume", run_id, "--out", str(runs_dir), "--progress", "quiet")
    assert result.code == 2, result.out + result.err
    (line,) = result.err.strip().splitlines()
    assert line.startswith(f"error: run '{run_id}': {named}"), line
    assert "Traceback" not in result.err
