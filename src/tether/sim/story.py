"""A short, readable story of a run: what was promoted when, what rolled back and why, harm and coverage."""

from __future__ import annotations

from typing import Any

_VERBS = {
    "canary.started": "canary started",
    "canary.promoted": "PROMOTED",
    "canary.rolled_back": "ROLLED BACK",
    "canary.held": "held for a human",
    "slice.reset": "reset to shadow",
}


def story(summary: dict[str, Any]) -> list[str]:
    t = summary["totals"]
    lines = [
        f"{summary['scenario']}: {summary['days']} virtual days, seed {summary['seed']}, "
        f"evidence {summary['evidence']}",
        "",
    ]
    events = sorted(
        ((tr["day"], entry["scope"], tr) for entry in summary["slices"] for tr in entry["transitions"]),
        key=lambda x: x[0],
    )
    for day, scope, tr in events:
        why = f": {tr['reasons'][0]}" if tr["reasons"] and tr["type"] != "canary.started" else ""
        lines.append(f"  day {day:5.1f}  {scope:<40} {_VERBS.get(tr['type'], tr['type'])}{why}")
    if not events:
        lines.append("  no slice changed state")
    lines += [
        "",
        f"  {t['alerts']} alerts; the agent closed {t['executed']} on its own "
        f"(coverage {t['coverage']:.1%}); {t['reviews_used']} of those closes were reviewed.",
        f"  harm: {t['harm']} true positives closed by the agent, "
        f"{t['harm_after_first_missed_tp_report']} of them after a missed TP was reported in that slice.",
        f"  false promotions {t['false_promotions']}, "
        f"false rollbacks of healthy slices {t['false_rollbacks']}; "
        f"healthy slices promoted {t['healthy_promoted']} of {t['healthy_slices']}"
        + (
            f", after {t['mean_days_to_promotion']:.1f} days on average."
            if t["mean_days_to_promotion"]
            else "."
        ),
    ]
    return lines


def comparison_table(result: dict[str, Any]) -> list[str]:
    """A Markdown table: each method's mean and range over the seeds."""
    keys = list(next(iter(result["table"].values())))
    lines = [
        f"Scenario `{result['scenario']}`, {result['seeds']} seeds each (mean, with min–max):",
        "",
        "| metric | " + " | ".join(result["methods"]) + " |",
        "|---|" + "---|" * len(result["methods"]),
    ]
    for key in keys:
        cells = []
        for method in result["methods"]:
            v = result["table"][method][key]
            cells.append("—" if v["mean"] is None else f"{_n(v['mean'])} ({_n(v['min'])}–{_n(v['max'])})")
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    return lines


def _n(x: float) -> str:
    """A table figure: whole numbers with separators, small ones with three significant digits."""
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"
