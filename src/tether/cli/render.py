"""Human-readable output of the CLI (the --json output is the API's JSON, printed as is)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=None, ensure_ascii=False))


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def slice_line(s: dict[str, Any]) -> str:
    ev = s["evidence"]
    interval = ""
    if ev["precision_low"] is not None:
        interval = f" [{_pct(ev['precision_low'])}–{_pct(ev['precision_high'])}]"
    return (
        f"{s['id']}  {s['scope'] or '(global)'}  {s['state']} (attempt {s['attempt']})  "
        f"precision {_pct(ev['precision'])}{interval} on {ev['reviewed']} reviews, "
        f"missed TPs {ev['missed_tp']}"
    )


def slice_detail(s: dict[str, Any]) -> None:
    console.print(slice_line(s))
    sh = s["shadow"]
    console.print(
        f"  shadow: {sh['decisions']} decisions, {sh['with_outcome']} with an outcome, "
        f"agreement {_pct(sh['agreement'])}, missed TPs {sh['missed_tp']}"
    )
    ev = s["evidence"]
    console.print(
        f"  evidence: {ev['decisions']} decisions, {ev['executed']} executed, age {ev['age_days']:.1f} d, "
        f"method {ev['method']}"
    )
    console.print(f"  verdict: {s['verdict']['action']}")
    for reason in s["verdict"]["reasons"]:
        console.print(f"    - {reason}")


def slices_table(slices: list[dict[str, Any]]) -> None:
    if not slices:
        console.print("no slices yet: tether slice create --scope tenant=NAME")
        return
    table = Table("id", "scope", "state", "attempt", "precision", "reviews", "missed TPs", "next")
    for s in slices:
        ev = s["evidence"]
        table.add_row(
            s["id"],
            s["scope"] or "(global)",
            s["state"],
            str(s["attempt"]),
            _pct(ev["precision"]),
            str(ev["reviewed"]),
            str(ev["missed_tp"]),
            "; ".join(s["verdict"]["reasons"][-1:]),
        )
    console.print(table)


def kill_table(kills: list[dict[str, Any]]) -> None:
    if not kills:
        console.print("no kill switches")
        return
    table = Table("id", "scope", "active", "reason", "activated", "by")
    for k in kills:
        table.add_row(
            k["id"],
            k["scope"] or "(everything)",
            "yes" if k["active"] else "no",
            k["reason"],
            k["activated_at"],
            k["activated_by"]["id"],
        )
    console.print(table)


def events_table(events: list[dict[str, Any]]) -> None:
    table = Table("seq", "at", "type", "actor", "slice", "scope")
    for e in events:
        table.add_row(
            str(e["seq"]), e["at"], e["type"], e["actor"]["id"], e["slice_id"] or "", e["scope"] or ""
        )
    console.print(table)


def key_values(data: dict[str, Any]) -> None:
    for key, value in data.items():
        console.print(f"{key} = {value}")


def answers_summary(answers: list[dict[str, Any]], shown: int = 20) -> None:
    """Counts by mode, and each answer when there are few."""
    executed = sum(a["execute"] for a in answers)
    modes: dict[str, int] = {}
    for a in answers:
        modes[a["mode"]] = modes.get(a["mode"], 0) + 1
    by_mode = ", ".join(f"{n} {mode}" for mode, n in sorted(modes.items()))
    console.print(f"{len(answers)} decisions answered ({by_mode}); {executed} to execute")
    if len(answers) <= shown:
        for a in answers:
            console.print("  " + answer_line(a))


def answer_line(a: dict[str, Any]) -> str:
    executes = "executes" if a["execute"] else "does not execute"
    prefix = f"{a['decision_id']}: " if "decision_id" in a else ""
    return f"{prefix}{a['mode']} — {executes} ({a['reason']})"
