"""Render the messages of a review from the Jinja2 templates in prompts/."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path

import jinja2
import jinja2.meta

from .catalog import Tool
from .depth import Depth
from .memo import ByIdentity
from .personas import Persona
from .resources import data_dir

__all__ = ["HEAD_TO_HEAD", "Message", "PromptSet", "fence"]

Message = dict[str, str]

#: the templates of a head-to-head judgement (`panel.run.head_to_head`); no review reads them
HEAD_TO_HEAD = ("head_to_head.j2", "head_to_head_system.j2")


def fence(text: str) -> str:
    """Wrap text in a code fence longer than any run of backticks inside it.

    The tool's text is untrusted; a fence it cannot close keeps it inside the data block.
    """
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    marker = "`" * max(3, longest + 1)
    return f"{marker}json\n{text}\n{marker}"


class PromptSet:
    """The templates of one prompts folder."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or data_dir("prompts")
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.directory),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=False,
            autoescape=False,  # prompts are plain text for a model, not HTML
            auto_reload=False,  # read once: no stat of the template file for every request
        )
        self.env.filters["fence"] = fence

    def review_messages(self, persona: Persona, tool: Tool, depth: Depth = "brief") -> list[Message]:
        """The system and user messages of a review at a depth (`panel.depth`)."""
        # The templates get the tool only as the JSON that goes inside the fence: a catalog
        # field written into the instructions could pose as one.
        context = {"persona": persona, "tool_json": self._tool_json(tool), "depth": depth}
        if self._system_reads_tool:
            system = self.env.get_template("system.j2").render(context)
        else:
            system = self._system(persona, depth)
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": self.env.get_template("review.j2").render(context)},
        ]

    @cached_property
    def _system_reads_tool(self) -> bool:
        """Whether system.j2 uses the tool; the shipped one does not, so it is rendered once
        per persona and depth instead of once per request."""
        assert self.env.loader is not None
        source = self.env.loader.get_source(self.env, "system.j2")[0]
        return "tool_json" in jinja2.meta.find_undeclared_variables(self.env.parse(source))

    @cached_property
    def _system(self) -> ByIdentity[str]:
        render = self.env.get_template("system.j2").render
        return ByIdentity(lambda persona, depth: render({"persona": persona, "depth": depth}))

    @cached_property
    def _tool_json(self) -> ByIdentity[str]:
        # Each persona of a tool asks in turn: the tool's JSON is written once for all of them.
        return ByIdentity(lambda tool: json.dumps(tool.facts_for_review(), indent=2, ensure_ascii=False))

    def reask_messages(self, messages: list[Message], reply: str, error: str) -> list[Message]:
        """The conversation so far, the unusable reply, and the error to fix."""
        note = self.env.get_template("reask.j2").render(error=error)
        return [
            *messages,
            {"role": "assistant", "content": reply},
            {"role": "user", "content": note},
        ]

    @cached_property
    def fingerprint(self) -> str:
        """Hash of the templates a review reads, so a changed prompt invalidates cached reviews
        (the head-to-head templates are not among them: see `head_to_head_fingerprint`)."""
        return self._digest(p for p in self.directory.glob("*.j2") if p.name not in HEAD_TO_HEAD)

    @cached_property
    def head_to_head_fingerprint(self) -> str:
        """Hash of the head-to-head templates, so a changed one invalidates cached judgements."""
        return self._digest(self.directory / name for name in HEAD_TO_HEAD)

    @staticmethod
    def _digest(paths: Iterable[Path]) -> str:
        digest = hashlib.sha256()
        for path in sorted(paths):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()[:12]
