"""Render the messages of a review from the Jinja2 templates in prompts/."""

from __future__ import annotations

import hashlib
import json
import re
from functools import cached_property
from pathlib import Path

import jinja2

from .catalog import Tool
from .personas import Persona
from .resources import data_dir

__all__ = ["Message", "PromptSet", "fence"]

Message = dict[str, str]


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
        )
        self.env.filters["fence"] = fence

    def review_messages(self, persona: Persona, tool: Tool) -> list[Message]:
        # The templates get the tool only as the JSON that goes inside the fence: a catalog
        # field written into the instructions could pose as one.
        tool_json = json.dumps(tool.facts_for_review(), indent=2, ensure_ascii=False)
        context = {"persona": persona, "tool_json": tool_json}
        return [
            {"role": "system", "content": self.env.get_template("system.j2").render(context)},
            {"role": "user", "content": self.env.get_template("review.j2").render(context)},
        ]

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
        """Hash of the templates, so a changed prompt invalidates cached reviews."""
        digest = hashlib.sha256()
        for path in sorted(self.directory.glob("*.j2")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()[:12]
