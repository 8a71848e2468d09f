"""The run report: summary.json, index.html and PNG charts drawn with matplotlib (no network, no CDN)."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

STATE_COLOURS = {"shadow": "#9aa5b1", "canary": "#f0b429", "active": "#2f9e44", "rolled_back": "#d64545"}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _precision_chart(summary: dict[str, Any], slice_id: str, path: Path) -> None:
    plt = _pyplot()
    days, precision, low, high = [], [], [], []
    for snap in summary["snapshots"]:
        for s in snap["slices"]:
            if s["id"] == slice_id and s["evidence"]["precision"] is not None:
                days.append(snap["day"])
                precision.append(s["evidence"]["precision"])
                low.append(s["evidence"]["precision_low"])
                high.append(s["evidence"]["precision_high"])
    entry = next(s for s in summary["slices"] if s["id"] == slice_id)
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
    if days:
        ax.fill_between(days, low, high, color="#4c6ef5", alpha=0.2, label="95% interval")
        ax.plot(days, precision, color="#364fc7", label="observed precision")
    truth_days = [d + 0.5 for d, p in enumerate(entry["truth"]) if p is not None]
    ax.plot(truth_days, [p for p in entry["truth"] if p is not None], "k:", label="true precision")
    ax.axhline(0.98, color="#2f9e44", lw=1, ls="--", label="promote ≥ 0.98")
    ax.axhline(0.95, color="#d64545", lw=1, ls="--", label="roll back < 0.95")
    for t in entry["transitions"]:
        ax.axvline(t["day"], color=STATE_COLOURS.get(t["to"], "#888"), lw=1, alpha=0.7)
    ax.set_ylim(0.85, 1.001)
    ax.set_xlim(0, summary["days"])
    ax.set_xlabel("day")
    ax.set_title(f"{entry['scope']}: precision of executed closes (current attempt)")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _states_chart(summary: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    slices = summary["slices"]
    fig, ax = plt.subplots(figsize=(7, 0.6 + 0.45 * len(slices)), dpi=100)
    for row, entry in enumerate(slices):
        state, since = "shadow", 0.0
        for t in [*entry["transitions"], {"day": summary["days"], "to": None}]:
            if t["to"] == "held":
                continue
            ax.barh(row, t["day"] - since, left=since, color=STATE_COLOURS[state], height=0.6)
            if t["to"] is not None:
                state, since = t["to"], t["day"]
    ax.set_yticks(range(len(slices)), [s["scope"] for s in slices], fontsize=8)
    ax.set_xlim(0, summary["days"])
    ax.set_xlabel("day")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in STATE_COLOURS.values()]
    ax.legend(
        handles, list(STATE_COLOURS), fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.25)
    )
    ax.set_title("slice states over time")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _coverage_chart(summary: dict[str, Any], path: Path) -> None:
    plt = _pyplot()
    days = [d["day"] for d in summary["per_day"]]
    coverage = [d["executed"] / d["alerts"] if d["alerts"] else 0 for d in summary["per_day"]]
    fig, ax = plt.subplots(figsize=(7, 2.6), dpi=100)
    ax.bar(days, coverage, color="#2f9e44")
    ax.set_ylim(0, 1)
    ax.set_xlabel("day")
    ax.set_ylabel("executed ÷ alerts")
    ax.set_title("autonomy coverage per day")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _totals_rows(totals: dict[str, Any]) -> str:
    return "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in totals.items()
    )


def _slice_section(entry: dict[str, Any], image: str) -> str:
    items = (
        "".join(
            f"<li>day {t['day']:.1f}: {html.escape(t['type'])} — {html.escape('; '.join(t['reasons']))}</li>"
            for t in entry["transitions"]
        )
        or "<li>no transition</li>"
    )
    facts = (
        f"{entry['alerts']} alerts, {entry['executed']} executed closes, {entry['reviews_used']} reviews, "
        f"harm {entry['harm']} ({entry['harm_before_first_missed_tp_report']} before the first "
        "missed-TP report), "
        f"false promotions {entry['false_promotions']}, false rollbacks {entry['false_rollbacks']}"
    )
    return (
        f"<section><h2>{html.escape(entry['scope'])}</h2><p>{html.escape(facts)}</p>"
        f'<img src="{image}" alt="precision over time for {html.escape(entry["scope"])}">'
        f"<ol>{items}</ol></section>"
    )


def write_report(summary: dict[str, Any], directory: Path) -> Path:
    """Write summary.json, the charts and index.html into a directory; returns the index path."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "summary.json").write_text(json.dumps(summary, indent=2))
    _states_chart(summary, directory / "states.png")
    _coverage_chart(summary, directory / "coverage.png")
    sections = []
    for n, entry in enumerate(summary["slices"], start=1):
        image = f"precision-{n}.png"
        _precision_chart(summary, entry["id"], directory / image)
        sections.append(_slice_section(entry, image))
    title = (
        f"Tether simulation: {summary['scenario']} (seed {summary['seed']}, evidence {summary['evidence']})"
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;color:#1f2933}}
th{{text-align:left;padding-right:1rem}} img{{max-width:100%}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>{summary["days"]} virtual days from {html.escape(summary["start"])}.</p>
<h2>Totals</h2><table>{_totals_rows(summary["totals"])}</table>
<img src="states.png" alt="slice states over time"><img src="coverage.png" alt="autonomy coverage per day">
{"".join(sections)}
</body></html>
"""
    index = directory / "index.html"
    index.write_text(page)
    return index
