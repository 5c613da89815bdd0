"""Why a verdict changed between two runs: what differed among the inputs of its cell.

A cell's verdict is made from the tool's catalog entry, the member's model and the options
that change what it says, the persona file and the prompt templates, and the form of the
request (the member's depth, token limit and structured form, the run's sampling, the
rebuttal round). Each input that differs between the two runs is a reason; a cell whose
inputs are all the same flipped by chance (noise).

A flip is counted once, under its first reason in `PRECEDENCE`: the tool's own entry first
(the flip may tell of a real change in the tool), then what changed in the panel, from the
model to the form; noise last.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from ..backends.options import NOT_IN_CACHE_KEY
from ..backends.registry import recorded_member
from ..errors import UserError
from ..store import CellKey, RunInputs

__all__ = [
    "PRECEDENCE",
    "Between",
    "MemberOptions",
    "Reason",
    "ReasonCode",
    "changed_fields",
    "flip_summary",
    "member_options",
    "pair_members",
]

ReasonCode = Literal["tool", "model", "options", "persona", "prompt", "form", "panel", "noise"]

#: the order in which a flip's reasons are listed, and the first one is the one it counts under
PRECEDENCE: tuple[ReasonCode, ...] = (
    "tool",
    "model",
    "options",
    "persona",
    "prompt",
    "form",
    "panel",
    "noise",
)
_PRECEDENCE_WORDS = (
    "the tool's entry, the model, the member's options, the persona, the prompts, the depth or form"
)

#: a member's options that set the form of its requests rather than the model's leaning
_FORM_OPTIONS = ("depth", "max_tokens", "structured")


@dataclass(frozen=True)
class Reason:
    """One input that changed: `text` says what, `because` is how a summary counts it."""

    code: ReasonCode
    text: str
    because: str
    fields: tuple[str, ...] = ()
    before: str | None = None
    after: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "text": self.text,
            "fields": list(self.fields),
            "before": self.before,
            "after": self.after,
        }


NOISE = Reason("noise", "no change in inputs (noise)", "with no change in inputs (noise)")


def _ordered(reasons: Iterable[Reason]) -> tuple[Reason, ...]:
    unique = dict.fromkeys(reasons)
    return tuple(sorted(unique, key=lambda r: (PRECEDENCE.index(r.code), r.text)))


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The fields that differ between two entries, nested ones as `pricing.model`; an empty
    list, map or a missing field are the same."""
    if before == after:
        return []
    found: list[str] = []
    for name in sorted(before.keys() | after.keys()):
        a, b = before.get(name), after.get(name)
        if (_empty(a) and _empty(b)) or a == b:
            continue
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            found += changed_fields(a, b, f"{prefix}{name}.")
        else:
            found.append(f"{prefix}{name}")
    return found


def _changed_text(before: str, after: str) -> list[str]:
    """`changed_fields` of two entries stored as JSON text (parsed only when they differ;
    an entry not read, empty text, names no field)."""
    if before == after or not before or not after:
        return []
    return changed_fields(json.loads(before), json.loads(after))


@cache
def _options(spec: str, name: str | None, written: str) -> tuple[dict[str, Any], dict[str, Any]]:
    options = json.loads(written)
    try:
        recorded = recorded_member("", 0, {"spec": spec, "name": name, "options": options})
        identity = recorded.options.identity()
    except UserError:  # recorded by another panel version: the options as written
        identity = {k: v for k, v in options.items() if k not in NOT_IN_CACHE_KEY}
    if options.get("base_url") is not None:
        identity["base_url"] = options["base_url"]  # another server may hold another model
    form = {k: options.get(k, identity.get(k)) for k in _FORM_OPTIONS}
    return {k: v for k, v in identity.items() if k not in _FORM_OPTIONS}, form


#: member -> (options that change what its model says, options that set the form)
MemberOptions = dict[str, tuple[dict[str, Any], dict[str, Any]]]


def member_options(run: RunInputs) -> MemberOptions:
    """Each member's (options that change what its model says, options that set the form),
    as the run recorded them (`Backend.identity` is what the cache key treats as changing a
    reply); a run that recorded no specs has none."""
    members = [str(m) for m in run.config.get("members") or []]
    specs = run.config.get("member_specs") or []
    return {
        label: _options(
            str(recorded.get("spec", "")),
            recorded.get("name"),
            json.dumps(recorded.get("options") or {}, sort_keys=True),
        )
        for label, recorded in zip(members, specs, strict=False)
    }


_NO_OPTIONS: tuple[dict[str, Any], dict[str, Any]] = ({}, {})


class Between:
    """What changed from run `a` to run `b`, worked out once per tool, persona and member
    and reused by every cell."""

    def __init__(
        self, a: RunInputs, b: RunInputs, options: tuple[MemberOptions, MemberOptions] | None = None
    ) -> None:
        """`options`: `member_options` of a and b, when the caller has them already."""
        self.a, self.b = a, b
        self._options = options or (member_options(a), member_options(b))
        self._tools: dict[str, Reason | None] = {}
        self._personas: dict[str, Reason | None] = {}
        self._cells: dict[tuple[CellKey, CellKey], tuple[Reason, ...]] = {}
        self._prompt = self._prompt_reason()
        form = [
            f"sampling {f}"
            for f in changed_fields(a.config.get("sampling") or {}, b.config.get("sampling") or {})
        ]
        if bool(a.config.get("rebuttal")) != bool(b.config.get("rebuttal")):
            form.append("rebuttal round")
        if a.config.get("repeats", 1) != b.config.get("repeats", 1):
            form.append("repeats")  # the seeds of repeats past the first differ
        self._run_form = form

    def cell(self, key_a: CellKey, key_b: CellKey) -> tuple[Reason, ...]:
        """Every input of a cell that differs between the runs, in `PRECEDENCE`; noise alone
        when none does."""
        pair = (key_a, key_b)
        if pair not in self._cells:
            found = [self.tool(key_a.tool_id), self.persona(key_a.persona_id), self._prompt]
            found += self._member_reasons(key_a, key_b)
            self._cells[pair] = _ordered(r for r in found if r is not None) or (NOISE,)
        return self._cells[pair]

    def tool(self, tool_id: str) -> Reason | None:
        if tool_id not in self._tools:
            self._tools[tool_id] = self._tool_reason(tool_id)
        return self._tools[tool_id]

    def persona(self, persona_id: str) -> Reason | None:
        if persona_id not in self._personas:
            self._personas[persona_id] = self._persona_reason(persona_id)
        return self._personas[persona_id]

    def _tool_reason(self, tool_id: str) -> Reason | None:
        if tool_id not in self.a.tools or tool_id not in self.b.tools:
            return None
        (fp_a, data_a), (fp_b, data_b) = self.a.tools[tool_id], self.b.tools[tool_id]
        # The community vote is not shown to reviewers (Tool.facts_for_review): not a cause.
        fields = [f for f in _changed_text(data_a, data_b) if f.split(".")[0] != "community"]
        if not fields and fp_a == fp_b:
            return None
        shown = ", ".join(fields) or "its fingerprint"
        return Reason(
            "tool", f"the tool's entry changed: {shown}", "because the tool's entry changed", tuple(fields)
        )

    def _persona_reason(self, persona_id: str) -> Reason | None:
        if persona_id not in self.a.personas or persona_id not in self.b.personas:
            return None
        (version_a, data_a), (version_b, data_b) = self.a.personas[persona_id], self.b.personas[persona_id]
        fields = tuple(f for f in _changed_text(data_a, data_b) if f != "version")
        if version_a == version_b and not fields:
            return None
        version = f" (version {version_a} → {version_b})" if version_a != version_b else ""
        shown = f": {', '.join(fields)}" if fields else ""
        return Reason(
            "persona",
            f"persona {persona_id} changed{version}{shown}",
            f"because persona {persona_id} changed",
            fields,
            version_a,
            version_b,
        )

    def _prompt_reason(self) -> Reason | None:
        before, after = self.a.config.get("prompts"), self.b.config.get("prompts")
        if before == after:
            return None
        return Reason(
            "prompt",
            f"the prompt templates changed ({before or '?'} → {after or '?'})",
            "because the prompts changed",
            (),
            None if before is None else str(before),
            None if after is None else str(after),
        )

    def _member_reasons(self, key_a: CellKey, key_b: CellKey) -> list[Reason]:
        found: list[Reason] = []
        fa, fb = self.a.cells[key_a], self.b.cells[key_b]
        model_a, model_b = f"{fa.backend}:{fa.model}", f"{fb.backend}:{fb.model}"
        if model_a != model_b:
            found.append(
                Reason(
                    "model",
                    f"{model_b} replaced {model_a}",
                    f"because {model_b} replaced {model_a}",
                    (),
                    model_a,
                    model_b,
                )
            )
        reply_a, form_a = self._options[0].get(key_a.member, _NO_OPTIONS)
        reply_b, form_b = self._options[1].get(key_b.member, _NO_OPTIONS)
        options = changed_fields(reply_a, reply_b)
        if options:
            found.append(
                Reason(
                    "options",
                    f"{key_b.member}'s options changed: {', '.join(options)}",
                    f"because {key_b.member}'s options changed",
                    tuple(options),
                )
            )
        form = [f"member {f}" for f in changed_fields(form_a, form_b)] + self._run_form
        if fa.enforced and fb.enforced and fa.enforced != fb.enforced:
            form.append(f"structured form ({fa.enforced} → {fb.enforced})")
        if form:
            found.append(
                Reason(
                    "form",
                    f"the depth or form changed: {', '.join(form)}",
                    "because the depth or structured form changed",
                    tuple(form),
                )
            )
        return found

    def pool(self, pairs: Sequence[tuple[CellKey, CellKey]], alone: int) -> tuple[Reason, ...]:
        """Why a tool's pooled verdict may have moved: every input that changed in any of its
        cells (`pairs`, run a's key with run b's), and the panel itself when `alone` cells
        are in one run only."""
        found = [r for ka, kb in pairs for r in self.cell(ka, kb) if r.code != "noise"]
        if alone:
            found.append(
                Reason(
                    "panel",
                    f"the panel changed: {alone} reviews in one run only",
                    "because the panel's members changed",
                )
            )
        return _ordered(found) or (NOISE,)


def pair_members(a: RunInputs, b: RunInputs) -> dict[str, str]:
    """Each member of run `a` with its counterpart in run `b`: the member of the same name;
    else, among the members the other run does not have, the one with the same backend:model
    and the same options that change replies, then the one with the same backend:model (a
    member renamed is the same judge, not a model replaced), and only then the one in the same
    place, in the order each run lists them."""
    order_a, order_b = _members(a), _members(b)
    pairs = {m: m for m in order_a if m in order_b}
    left_a = [m for m in order_a if m not in pairs]
    left_b = [m for m in order_b if m not in pairs]
    who_a, who_b = _who(a, left_a), _who(b, left_b)
    for whole in (True, False):  # model and options alike, then the model alone
        for m in list(left_a):
            want = who_a[m] if whole else who_a[m][0]
            match = next((n for n in left_b if (who_b[n] if whole else who_b[n][0]) == want), None)
            if match is not None:
                pairs[m] = match
                left_a.remove(m)
                left_b.remove(match)
    pairs.update(zip(left_a, left_b, strict=False))
    return pairs


def _who(run: RunInputs, members: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Each of `members` as (its backend:model in the run's cells, its options that change
    replies as JSON text)."""
    if not members:
        return {}
    models: dict[str, set[str]] = {m: set() for m in members}
    for key, facts in run.cells.items():
        if key.member in models:
            models[key.member].add(f"{facts.backend}:{facts.model}")
    options = member_options(run)
    return {
        m: (" ".join(sorted(models[m])), json.dumps(options.get(m, _NO_OPTIONS)[0], sort_keys=True))
        for m in members
    }


def _members(run: RunInputs) -> list[str]:
    listed = [str(m) for m in run.config.get("members") or []]
    seen = {k.member for k in run.cells}
    return [m for m in listed if m in seen] + sorted(seen - set(listed))


def flip_summary(reasons: Sequence[Sequence[Reason]], noun: str = "verdicts") -> str:
    """One line a re-review job can quote: how many flipped, each counted once under its
    first reason, and how many had several."""
    total = len(reasons)
    if not total:
        return f"0 {noun} flipped"
    main = Counter((PRECEDENCE.index(r[0].code), r[0].because) for r in reasons if r)
    parts = [
        f"{n} {because}" for (_, because), n in sorted(main.items(), key=lambda i: (i[0][0], -i[1], i[0][1]))
    ]
    several = sum(1 for r in reasons if len(r) > 1)
    line = f"{total} {noun} flipped: {', '.join(parts)}"
    if several:
        line += f" ({several} had several reasons, each counted under the first of: {_PRECEDENCE_WORDS})"
    return line
