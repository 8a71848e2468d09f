"""Words and numbers for people: what promotion still needs, why a slice rolled back, times and rates."""

from __future__ import annotations

from typing import Any

from tether.domain.errors import BadInput, Forbidden, NotFound, Refused, TetherError

STATUS: list[tuple[type[TetherError], int]] = [  # first match wins: subclasses before their bases
    (BadInput, 422),
    (NotFound, 404),
    (Forbidden, 403),
    (Refused, 409),
    (TetherError, 400),
]


def status_of(exc: TetherError) -> int:
    return next(code for kind, code in STATUS if isinstance(exc, kind))


def error_fields(exc: TetherError) -> dict[str, str]:
    """Form field -> message, for the fields a BadInput names."""
    if not isinstance(exc, BadInput):
        return {}
    return {str(p.loc[-1]): p.msg for p in exc.problems if p.loc}


def precision(evidence: dict[str, Any]) -> str:
    p = evidence.get("precision")
    if p is None:
        return "—"
    low, high = evidence.get("precision_low"), evidence.get("precision_high")
    if low is None or high is None:
        return f"{p:.3f}"
    return f"{p:.3f} ({low:.3f}–{high:.3f})"


def age(s: dict[str, Any]) -> str:
    if s["state"] not in ("canary", "active"):
        return "—"
    return f"{s['evidence']['age_days']:.1f} d"


def next_step(s: dict[str, Any], rollback_reasons: list[str] | None = None) -> str:
    """In words: what promotion still needs, why the slice rolled back, or what shadow lacks."""
    state = s["state"]
    if state == "canary":
        return _canary_needs(s)
    if state == "active":
        when = (s.get("promoted_at") or "")[:10]
        return f"promoted {when}; monitored with the rollback rules" if when else "active"
    if state == "rolled_back":
        when = (s.get("rolled_back_at") or "")[:16].replace("T", " ")
        why = "; ".join(rollback_reasons or []) or "see the audit trail"
        return f"rolled back {when}: {why}"
    reasons = list(s["verdict"]["reasons"])[1:]
    return "shadow: " + ("; ".join(reasons) if reasons else "ready for a canary")


def _canary_needs(s: dict[str, Any]) -> str:
    ev, policy, verdict = s["evidence"], s["policy"], s["verdict"]
    if verdict["action"] == "hold" or s.get("held_at"):
        return "held: undecided on the evidence, a human promotes or rolls back"
    if ev["missed_tp"] > policy["max_missed_tp"]:
        return f"{ev['missed_tp']} missed true positive(s): rolls back at the next check"
    parts = []
    days_left = policy["promote_after_days"] - ev["age_days"]
    if days_left > 0:
        parts.append(f"{days_left:.1f} days")
    clean = ev.get("clean_reviews_to_promote")
    if clean is None:
        parts.append(f"precision ≥ {policy['promote_min_precision']:g} on enough reviews")
    elif clean > 0:
        parts.append(f"{clean} clean review{'s' if clean != 1 else ''}")
    if not parts:
        return "ready: promoted at the next evaluation"
    return " and ".join(parts) + " to go"


def short_time(text: str | None) -> str:
    return (text or "")[:19].replace("T", " ") or "—"


def actor(raw: dict[str, Any] | None) -> str:
    if not raw:
        return "—"
    name = raw.get("name")
    return f"{name} ({raw.get('id')})" if name else f"{raw.get('type')}:{raw.get('id')}"
