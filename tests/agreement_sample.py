"""Agreement report dicts built by hand, in the shape `panel agreement --format json` prints.

`full()` has every section (base statistics, research with a reference, the latent model,
pooling and the variance split); `base_only()` has no `research` key; `names` swaps every
persona, member, tool, note and source name for text of the caller's choosing.
"""

from __future__ import annotations

import copy
from typing import Any

PERSONAS = ["builder", "skeptic"]
MEMBERS = ["openai:gpt-x", "mistral:small"]
RATERS = [f"{p} / {m}" for p in PERSONAS for m in MEMBERS]
TOOLS = ["ollama", "vllm", "llama-cpp", "moondream2", "paligemma"]


def est(point: float | None, low: float | None, high: float | None, used: int = 200) -> dict[str, Any]:
    return {"point": point, "low": low, "high": high, "resamples_used": used}


def _kappa(n: int, base: float) -> list[list[float | None]]:
    return [[1.0 if i == j else round(base + 0.011 * (i + j), 4) for j in range(n)] for i in range(n)]


def base_only() -> dict[str, Any]:
    return {
        "runs": ["20240501-abcdef", "20240502-123456"],
        "by": "rater",
        "basis": {"run": "20240501-abcdef", "repeat": 0},
        "items": list(TOOLS),
        "missing": 3,
        "stats": {
            "n_items": 5,
            "raters": list(RATERS),
            "categories": ["ship", "skip"],
            "percent_agreement": est(0.7125, 0.5531, 0.8672, 200),
            "fleiss_kappa": est(0.4213, 0.1877, 0.6629, 197),
            "krippendorff_alpha": est(0.4371, 0.2015, 0.6744, 198),
            "effective_votes": est(1.8342, 1.2211, 2.9051, 150),
            "ship_rate": {RATERS[0]: 0.625, RATERS[1]: 0.375, RATERS[2]: 0.8125, RATERS[3]: None},
            "cohen_kappa": _kappa(4, 0.31),
            "positive": "ship",
            "n_resamples": 200,
            "seed": 7,
            "level": 0.95,
        },
        "cohen": [
            {
                "axis": "persona",
                "within": MEMBERS[0],
                "raters": list(PERSONAS),
                "n_items": 5,
                "kappa": [[1.0, 0.2468], [0.2468, 1.0]],
                "title": f"persona x persona — {MEMBERS[0]}",
            },
            {
                "axis": "member",
                "within": None,
                "raters": list(MEMBERS),
                "n_items": 10,
                "kappa": [[1.0, None], [None, 1.0]],
                "title": "member x member — pooled",
            },
        ],
        "self_consistency": [
            {
                "rater": RATERS[0],
                "persona": PERSONAS[0],
                "member": MEMBERS[0],
                "within_run": 0.8123,
                "within_run_agreement": 0.9167,
                "across_runs": None,
                "across_runs_agreement": None,
                "pairs": [{"a": "r#0", "b": "r#1", "kappa": 0.8123, "agreement": 0.9167, "n_items": 5}],
            },
        ],
        "notes": ["Raters are (persona, member) pairs; items are tools."],
    }


def full() -> dict[str, Any]:
    data = base_only()
    judges = [
        {"judge": r, "persona": p, "member": m, "reviews": 5, "cost_per_tool": 0.00125 * (i + 1),
         "estimated_accuracy": est(0.81 - 0.05 * i, 0.66 - 0.05 * i, 0.93 - 0.05 * i),
         "confusion": [[0.9 - 0.05 * i, 0.1 + 0.05 * i], [0.2, 0.8]]}
        for i, (r, (p, m)) in enumerate(zip(RATERS, [(p, m) for p in PERSONAS for m in MEMBERS], strict=True))
    ]  # fmt: skip
    accuracy = [
        {"kind": "judge", "name": r, "n_tools": 5, "n_ratings": 5,
         "accuracy": est(0.8 - 0.1 * i, 0.6 - 0.1 * i, 0.95 - 0.1 * i),
         "kappa": est(0.5432 - 0.1 * i, 0.1, 0.9)}
        for i, r in enumerate(RATERS)
    ] + [
        {"kind": "persona", "name": PERSONAS[0], "n_tools": 5, "n_ratings": 10,
         "accuracy": est(0.7, 0.55, 0.85), "kappa": est(0.3912, 0.0811, 0.6833)},
        {"kind": "panel", "name": "all judges", "n_tools": 5, "n_ratings": 20,
         "accuracy": est(0.65, 0.5, 0.8), "kappa": est(None, None, None, 0)},
    ]  # fmt: skip
    sub = {"k": 1, "judges": [RATERS[0]], "accuracy": 0.8, "kappa": 0.5432, "cost_per_tool": 0.00125}
    data["research"] = {
        "run": "20240501-abcdef",
        "categories": ["ship", "skip"],
        "positive": "ship",
        "judges": judges,
        "latent": {
            "method": "Dawid-Skene (EM)",
            "iterations": 23,
            "converged": True,
            "log_likelihood": -11.2345,
            "priors": {"ship": 0.6031, "skip": 0.3969},
            "tools": 5,
            "differs_from_majority": 1,
        },
        "variance": {
            "method": "linear mixed model (REML)",
            "components": [
                {
                    "name": "tool",
                    "share": est(0.4412, 0.2931, 0.5873),
                    "variance": est(0.1103, 0.0702, 0.1507),
                },
                {
                    "name": "persona",
                    "share": est(0.3187, 0.1522, 0.4421),
                    "variance": est(0.0797, 0.03, 0.11),
                },
                {"name": "member", "share": est(0.0214, 0.0, 0.0911), "variance": est(0.0054, 0.0, 0.0201)},
                {
                    "name": "persona x member",
                    "share": est(0.0501, 0.0, 0.12),
                    "variance": est(0.0125, 0.0, 0.03),
                },
                {"name": "residual", "share": est(0.1686, 0.1, 0.25), "variance": est(0.0421, 0.02, 0.06)},
            ],
            "by_persona": [{"persona": PERSONAS[0], "ship_rate": 0.7188, "member_spread": 0.0625}],
            "n_tools": 5,
            "n_reviews": 20,
            "reading": ["Personas explain more of the disagreement than members do."],
        },
        "reference": {
            "source": "labels.csv",
            "tools": 5,
            "tools_in_run": 5,
            "raters": ["ann", "bob"],
            "human_agreement": est(0.8333, 0.6667, 1.0),
            "notes": ["2 tools have one label only."],
            "shares": {"ship": 0.6, "skip": 0.4},
        },
        "accuracy": accuracy,
        "pooling": {
            "pooled": [
                {
                    "method": "majority vote",
                    "judges": list(RATERS),
                    "n_tools": 5,
                    "accuracy": est(0.8, 0.6, 1.0),
                    "kappa": est(0.5833, 0.2222, 1.0),
                    "cost_per_tool": 0.0125,
                },
                {
                    "method": "ship share >= 0.5",
                    "judges": list(RATERS),
                    "n_tools": 5,
                    "accuracy": est(0.8, 0.6, 1.0),
                    "kappa": est(0.5833, 0.2222, 1.0),
                    "cost_per_tool": 0.0125,
                },
                {
                    "method": "reliability-weighted (Dawid-Skene)",
                    "judges": list(RATERS),
                    "n_tools": 5,
                    "accuracy": est(1.0, 1.0, 1.0),
                    "kappa": est(1.0, 1.0, 1.0),
                    "cost_per_tool": 0.0125,
                },
                {
                    "method": "best single judge",
                    "judges": [RATERS[0]],
                    "n_tools": 5,
                    "accuracy": est(0.8, 0.6, 0.95),
                    "kappa": est(0.5432, 0.1, 0.9),
                    "cost_per_tool": 0.00125,
                },
            ],
            "thresholds": [
                {"threshold": round(0.1 * t, 1), "accuracy": 0.5 + 0.03 * t, "kappa": 0.1 * t - 0.2}
                for t in range(1, 10)
            ],
            "by_size": [
                sub,
                {"k": 3, "judges": RATERS[:3], "accuracy": 0.9, "kappa": 0.7826, "cost_per_tool": 0.0075},
            ],
            "by_cost": [
                sub,
                {"k": 2, "judges": RATERS[:2], "accuracy": 0.85, "kappa": 0.6667, "cost_per_tool": 0.00375},
            ],
            "search": "every sub-panel",
            "notes": ["The best single judge is chosen on the reference it is scored against."],
        },
        "notes": ["Research figures read run 20240501-abcdef, repeat 0."],
    }
    return data


def names(data: dict[str, Any], persona: str, member: str, tool: str, text: str) -> dict[str, Any]:
    """``data`` with every persona named ``persona``-0/-1, every member ``member``-0/-1, every
    tool ``tool``-k, and ``text`` in every note, reading and reference source."""
    out = copy.deepcopy(data)
    swaps = {p: f"{persona}-{i}" for i, p in enumerate(PERSONAS)}
    swaps |= {m: f"{member}-{i}" for i, m in enumerate(MEMBERS)}
    swaps |= {t: f"{tool}-{i}" for i, t in enumerate(TOOLS)}

    def swap(v: Any) -> Any:
        if isinstance(v, str):
            for old, new in swaps.items():
                v = v.replace(old, new)
            return v
        if isinstance(v, dict):
            return {swap(k): swap(x) for k, x in v.items()}
        if isinstance(v, list):
            return [swap(x) for x in v]
        return v

    out = swap(out)
    out["notes"].append(text)
    research = out.get("research")
    if research:
        research["notes"].append(text)
        research["reference"]["source"] = text
        research["reference"]["notes"].append(text)
        research["variance"]["reading"].append(text)
        research["pooling"]["notes"].append(text)
    return out
