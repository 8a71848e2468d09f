"""The run's summary: per slice the truth, the transitions and the harm; for the run the totals."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tether.domain.audit import AuditEvent
from tether.domain.timefmt import parse_time
from tether.sim.engine import RunLog, SliceTally
from tether.sim.scenario import Scenario
from tether.sim.truth import true_precision

TRANSITIONS = {
    "canary.started": "canary",
    "canary.promoted": "active",
    "canary.rolled_back": "rolled_back",
    "canary.held": "held",
    "slice.reset": "shadow",
}
GOOD, BAD = 0.98, 0.95


def _day(scenario: Scenario, at: str | datetime) -> float:
    moment = parse_time(at) if isinstance(at, str) else at
    return round((moment - scenario.start).total_seconds() / 86_400, 3)


def _truth_on(truth: list[float | None], day: float) -> float | None:
    return truth[min(int(day), len(truth) - 1)] if truth else None


def _slice_summary(
    scenario: Scenario, sid: str, scope: Any, events: list[AuditEvent], tally: SliceTally
) -> dict[str, Any]:
    truth = [true_precision(scenario, scope, d) for d in range(scenario.days)]
    transitions = []
    false_promotions = false_rollbacks = 0
    started: float | None = None
    days_to_promotion: float | None = None
    for e in events:
        if e.type not in TRANSITIONS:
            continue
        day = _day(scenario, e.at)
        true_p = _truth_on(truth, day)
        reasons = list(e.payload.get("reasons") or ([e.payload["reason"]] if e.payload.get("reason") else []))
        transitions.append({"day": day, "type": e.type, "to": TRANSITIONS[e.type], "reasons": reasons})
        if e.type == "canary.started" and started is None:
            started = day
        if e.type == "canary.promoted":
            if true_p is not None and true_p <= BAD:
                false_promotions += 1
            if days_to_promotion is None and started is not None:
                days_to_promotion = round(day - started, 3)
        if e.type == "canary.rolled_back":
            attempt = int(e.payload.get("attempt", 0))
            missed = (
                e.payload.get("trigger") == "missed_tp" or tally.executed_tp_by_attempt.get(attempt, 0) > 0
            )
            if true_p is not None and true_p >= GOOD and not missed:
                false_rollbacks += 1
    cut = tally.first_missed_report
    harm_before = sum(1 for at in tally.harm_at if cut is None or at < cut)
    mean_truth = [p for p in truth if p is not None]
    return {
        "id": sid,
        "scope": scope.text,
        "truth": [round(p, 5) if p is not None else None for p in truth],
        "transitions": transitions,
        "alerts": tally.alerts,
        "executed": tally.executed,
        "reviews_used": tally.reviews_used,
        "harm": len(tally.harm_at),
        "harm_before_first_missed_tp_report": harm_before,
        "harm_after_first_missed_tp_report": len(tally.harm_at) - harm_before,
        "false_promotions": false_promotions,
        "false_rollbacks": false_rollbacks,
        "days_to_promotion": days_to_promotion,
        "healthy": bool(mean_truth) and min(mean_truth) >= GOOD,
    }


def summarize(
    scenario: Scenario,
    seed: int,
    evidence: str,
    log: RunLog,
    events: list[AuditEvent],
    scopes: dict[str, Any],
) -> dict[str, Any]:
    """The summary.json of a run."""
    slices = [
        _slice_summary(scenario, sid, scope, [e for e in events if e.slice_id == sid], log.tallies[sid])
        for sid, scope in scopes.items()
    ]
    reported = {sid: at for sid in scopes if (at := log.tallies[sid].first_missed_report) is not None}
    harm_after = sum(
        1 for at, granted in log.harm if any(s in reported and at >= reported[s] for s in granted)
    )
    promotions = [
        s["days_to_promotion"] for s in slices if s["healthy"] and s["days_to_promotion"] is not None
    ]
    totals = {
        "alerts": log.alerts,
        "decisions": log.decisions,
        "executed": log.executed,
        "coverage": round(log.executed / log.alerts, 5) if log.alerts else 0.0,
        "reviews_used": log.reviews_used,
        "harm": len(log.harm),
        "harm_before_first_missed_tp_report": len(log.harm) - harm_after,
        "harm_after_first_missed_tp_report": harm_after,
        "false_promotions": sum(s["false_promotions"] for s in slices),
        "false_rollbacks": sum(s["false_rollbacks"] for s in slices),
        "healthy_slices": sum(1 for s in slices if s["healthy"]),
        "healthy_promoted": len(promotions),
        "mean_days_to_promotion": round(sum(promotions) / len(promotions), 3) if promotions else None,
    }
    return {
        "scenario": scenario.name,
        "seed": seed,
        "evidence": evidence,
        "days": scenario.days,
        "start": scenario.start.isoformat().replace("+00:00", "Z"),
        "totals": totals,
        "per_day": log.per_day,
        "slices": slices,
        "snapshots": log.snapshots,
    }
