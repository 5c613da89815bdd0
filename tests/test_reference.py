"""The reference loader: a labels file (or community votes) against a run's tools and verdicts.

Every bad input is one UserError line naming the file and the line (the header is line 1);
text from the file appears escaped. The CLI's exit 2 is the CLI's business, tested there.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from panel.analysis.reference import NONE, Reference, community_reference, load_labels
from panel.errors import UserError

TOOLS = ["chatgpt", "ollama", "vllm", "llama-cpp"]
CATS = ["ship", "skip"]


def _load(tmp_path: Path, data: bytes | str, **kw: int) -> Reference:
    path = tmp_path / "labels.csv"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return load_labels(path, TOOLS, CATS, n_resamples=kw.get("n_resamples", 50))


def _refused(tmp_path: Path, data: bytes | str) -> str:
    with pytest.raises(UserError) as caught:
        _load(tmp_path, data)
    message = str(caught.value)
    assert "\n" not in message
    return message.replace(str(tmp_path / "labels.csv"), "FILE")


BAD = {
    "empty file": (
        b"",
        "FILE:1: the labels file is empty: give a header line 'tool,verdict' and a line per label",
    ),
    "blank lines only": (b"\n \n", "FILE:1: the labels file is empty"),
    "header only": ("Tool , VERDICT\n", "FILE:2: the labels file has a header but no labels"),
    "no header": (
        "chatgpt,ship\n",
        "FILE:1: no header line: the first line must name the columns tool, verdict "
        "(and optionally rater, source); got 'chatgpt', 'ship'",
    ),
    "missing verdict column": (
        "tool,rater\nchatgpt,ann\n",
        "FILE:1: the header has no 'verdict' column (tool and verdict are required)",
    ),
    "extra column": (
        "tool,verdict,score\nchatgpt,ship,3\n",
        "FILE:1: unknown column 'score' (the columns are tool, verdict, and optionally rater, source)",
    ),
    "column twice": (
        "tool,verdict,TOOL\nchatgpt,ship,x\n",
        "FILE:1: column 'tool' appears twice in the header",
    ),
    "unknown tool": (
        "tool,verdict\nchatgpt,ship\n\nolama,skip\n",
        "FILE:4: tool 'olama' is not a tool of the run (4 tools); did you mean 'ollama'?",
    ),
    "unknown tool, no close id": (
        "tool,verdict\nzzzz,ship\n",
        "FILE:2: tool 'zzzz' is not a tool of the run (4 tools)",
    ),
    "empty tool": ("tool,verdict\n,ship\n", "FILE:2: the tool is empty"),
    "unknown verdict": (
        "tool,verdict\nchatgpt,maybe\n",
        "FILE:2: verdict 'maybe' of tool 'chatgpt' is not one of 'ship', 'skip'",
    ),
    "verdict in another case": (
        "tool,verdict\nchatgpt,Ship\n",
        "FILE:2: verdict 'Ship' of tool 'chatgpt' is not one of 'ship', 'skip' "
        "(verdicts are matched exactly: did you mean 'ship'?)",
    ),
    "empty verdict": ("tool,verdict\nchatgpt,\n", "FILE:2: the verdict of tool 'chatgpt' is empty"),
    "duplicate tool and rater": (
        "tool,verdict,rater\nchatgpt,ship,ann\nollama,ship,ann\nchatgpt,skip,ann\n",
        "FILE:4: duplicate label: tool 'chatgpt' by rater 'ann' already at line 2",
    ),
    "repeated row without a rater": (
        "tool,verdict\nchatgpt,ship\nchatgpt,ship\n",
        "FILE:3: duplicate label: tool 'chatgpt' by an unnamed rater "
        "(name raters or sources to give several) already at line 2",
    ),
    "too many fields": (
        "tool,verdict\nchatgpt,ship,extra\n",
        "FILE:2: 3 fields, but the header has 2 ('tool', 'verdict')",
    ),
    "too few fields": ("tool,verdict,rater\nchatgpt,ship\n", "FILE:2: 2 fields, but the header has 3"),
    "not UTF-8": (
        b"tool,verdict\nchatgpt,sh\xffip\n",
        "FILE:2: not UTF-8 text (byte 0xff at column 11); save the labels file as UTF-8",
    ),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "FILE:1: not UTF-8 text (byte 0x89 at column 1)"),
    "NUL byte": (
        b"tool,verdict\nchat\x00gpt,ship\n",
        "FILE:2:5: control character U+0000 in the labels file",
    ),
    "escape sequence": (
        "tool,verdict\nchat\x1b[2Jgpt,ship\n",
        "FILE:2:5: control character U+001B in the labels file "
        "(only tab, line feed and carriage return are allowed)",
    ),
    "bad quoting": ('tool,verdict\n"chatgpt"x,ship\n', "FILE:2: not valid CSV: ',' expected after '\"'"),
    "huge field": ("tool,verdict\n" + "a" * 300_000 + ",ship\n", "FILE:2: not valid CSV: field larger than"),
}


@pytest.mark.parametrize("data, expected", list(BAD.values()), ids=list(BAD))
def test_bad_input_is_one_line_naming_file_and_line(tmp_path: Path, data: bytes | str, expected: str) -> None:
    assert _refused(tmp_path, data).startswith(expected)


def test_text_from_the_file_is_shown_escaped_and_cut(tmp_path: Path) -> None:
    # A right-to-left override would make the message read otherwise than it is written.
    message = _refused(tmp_path, "tool,verdict\nchat\u202egpt,ship\n")
    assert "\u202e" not in message and "'chat\\u202egpt'" in message
    long_id = "x" * 5000
    message = _refused(tmp_path, f"tool,verdict\n{long_id},ship\n")
    assert len(message) < 200 and message.startswith("FILE:2: tool 'xxxx")


def test_a_line_number_counts_physical_lines_past_a_quoted_line_break(tmp_path: Path) -> None:
    message = _refused(tmp_path, 'tool,verdict,source\nchatgpt,ship,"two\nlines"\nolama,ship,x\n')
    assert message.startswith("FILE:4: tool 'olama'")


def test_a_folder_a_fifo_and_a_missing_file_are_refused_without_reading(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"labels file is a folder"):
        load_labels(tmp_path, TOOLS, CATS)
    with pytest.raises(UserError, match=r"labels file not found"):
        load_labels(tmp_path / "nope.csv", TOOLS, CATS)
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)  # nothing writes to it: a read would block forever
    with pytest.raises(UserError, match=r"fifo.csv: the labels file is a named pipe \(FIFO\)"):
        load_labels(fifo, TOOLS, CATS)


def test_a_file_over_the_size_limit_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("panel.analysis.reference.MAX_BYTES", 100)
    message = _refused(tmp_path, "tool,verdict\n" + "chatgpt,ship\n" * 20)
    assert message == "FILE: the labels file is 273 bytes; a labels file is at most 100 bytes"


def test_no_reference_left_is_refused(tmp_path: Path) -> None:
    message = _refused(tmp_path, "tool,verdict,rater\nchatgpt,ship,a\nchatgpt,skip,b\n")
    assert message == (
        "FILE: no tool has a reference "
        "(1 tool has tied labels and no reference; 3 tools of the run have no label)"
    )


def test_majority_ties_raters_and_notes(tmp_path: Path) -> None:
    ref = _load(
        tmp_path,
        " Tool , Verdict , Rater \n"
        "chatgpt, ship ,ann\nchatgpt,ship,bob\nchatgpt,skip,cy\n"  # 2:1 -> ship
        "ollama,skip,ann\n"  # one label
        "vllm,ship,ann\nvllm,skip,bob\n",  # tie -> none
    )
    assert ref.source == str(tmp_path / "labels.csv")
    assert ref.labels.tolist() == [0, 1, NONE, NONE]
    assert ref.counts.tolist() == [[2, 1], [0, 1], [1, 1], [0, 0]]
    assert ref.raters == ["ann", "bob", "cy"]
    assert ref.notes == [
        "1 tool has tied labels and no reference",
        "1 tool of the run has no label",
    ]


def test_unnamed_labels_with_different_sources_or_verdicts_are_several_labels(tmp_path: Path) -> None:
    ref = _load(tmp_path, "tool,verdict,source\nchatgpt,ship,forum\nchatgpt,ship,survey\nchatgpt,skip,\n")
    assert ref.counts.tolist()[0] == [2, 1] and ref.raters == []
    assert ref.human_agreement is not None


def test_human_agreement_is_krippendorffs_alpha_among_labels(tmp_path: Path) -> None:
    krippendorff = pytest.importorskip("krippendorff")
    rows = [
        ("chatgpt", ["ship", "ship", "skip"]),
        ("ollama", ["skip", "skip", "skip"]),
        ("vllm", ["ship", "skip", None]),
        ("llama-cpp", ["ship", None, None]),  # one label: no pairs
    ]
    lines = ["tool,verdict,rater"]
    lines += [f"{t},{v},r{j}" for t, vs in rows for j, v in enumerate(vs) if v]
    ref = _load(tmp_path, "\n".join(lines) + "\n", n_resamples=200)
    data = [[{"ship": 0, "skip": 1}.get(v or "", np.nan) for v in vs] for _, vs in rows]
    expected = krippendorff.alpha(
        reliability_data=np.array(data, dtype=float).T, level_of_measurement="nominal"
    )
    agreement = ref.human_agreement
    assert agreement.point == pytest.approx(expected)
    assert agreement.resamples_used > 0 and agreement.low <= agreement.high


def test_one_label_per_tool_has_no_human_agreement(tmp_path: Path) -> None:
    ref = _load(tmp_path, "tool,verdict\nchatgpt,ship\nollama,skip\n")
    assert ref.human_agreement is None and ref.raters == []


def test_labels_read_with_a_bom_and_crlf(tmp_path: Path) -> None:
    ref = _load(tmp_path, b"\xef\xbb\xbftool,verdict\r\nchatgpt,ship\r\n\r\nollama,skip\r\n")
    assert ref.labels.tolist() == [0, 1, NONE, NONE]


# --- community votes ----------------------------------------------------------------------


def _stored(**votes: tuple[int, int] | None) -> list[dict[str, object]]:
    return [{"id": t, **({"community": {"ship": v[0], "skip": v[1]}} if v else {})} for t, v in votes.items()]


def test_community_reference_is_the_majority_of_enough_votes() -> None:
    data = _stored(chatgpt=(7, 3), ollama=(1, 9), vllm=(2, 1), **{"llama-cpp": (5, 5)})
    ref = community_reference(data, TOOLS, CATS, min_votes=10)
    assert ref.source == "community (>= 10 votes)"
    assert ref.labels.tolist() == [0, 1, NONE, NONE]
    assert ref.counts.tolist() == [[7, 3], [1, 9], [2, 1], [5, 5]]
    assert ref.notes == [
        "1 tool has tied votes and no reference",
        "1 tool of the run has fewer than 10 community votes and no reference",
    ]
    assert ref.human_agreement is None and ref.raters == []


def test_community_follows_the_order_of_categories_and_tools() -> None:
    data = _stored(vllm=(3, 0), chatgpt=(0, 4))
    ref = community_reference(data, ["chatgpt", "vllm", "ollama"], ["skip", "ship"], min_votes=1)
    assert ref.labels.tolist() == [0, 1, NONE]
    assert ref.notes == ["1 tool of the run has no community votes"]


def test_community_needs_ship_and_skip() -> None:
    with pytest.raises(UserError) as caught:
        community_reference(_stored(chatgpt=(3, 1)), TOOLS, ["good", "bad"], min_votes=1)
    assert str(caught.value) == (
        "--reference community: community votes only speak ship/skip, and the personas' verdicts "
        "are 'good', 'bad'; give a labels file instead"
    )


def test_community_with_no_tool_over_the_threshold_is_refused() -> None:
    with pytest.raises(UserError) as caught:
        community_reference(_stored(chatgpt=(3, 1), ollama=None), TOOLS, CATS, min_votes=50)
    assert str(caught.value) == (
        "--reference community: no tool of the run has a majority of at least 50 community votes "
        "(the most any tool has is 4); lower --min-votes"
    )
    with pytest.raises(UserError, match="--min-votes must be at least 1, got 0"):
        community_reference(_stored(chatgpt=(3, 1)), TOOLS, CATS, min_votes=0)


def test_community_ignores_malformed_stored_votes() -> None:
    data = [{"id": "chatgpt", "community": {"ship": "many", "skip": -3}}, {"id": "ollama", "community": 5}]
    data += _stored(vllm=(2, 0))
    ref = community_reference(data, TOOLS, CATS, min_votes=1)
    assert ref.counts.tolist() == [[0, 0], [0, 0], [2, 0], [0, 0]]
