"""Shadow evidence and the go-live criteria for starting a canary (DESIGN §4)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tether.domain.model import Disposition, Verdict
from tether.domain.policy import Policy
from tether.domain.scope import Scope

_DETERMINED = (Disposition.FALSE_POSITIVE, Disposition.BENIGN_POSITIVE, Disposition.TRUE_POSITIVE)


@dataclass(frozen=True)
class ShadowEvidence:
    decisions: int = 0
    with_outcome: int = 0
    agreeing: int = 0
    closes: int = 0
    correct_closes: int = 0
    missed_tp: int = 0

    @property
    def agreement(self) -> float | None:
        return self.agreeing / self.with_outcome if self.with_outcome else None

    @property
    def close_precision(self) -> float | None:
        return self.correct_closes / self.closes if self.closes else None

    def to_dict(self) -> dict[str, Any]:
        def r(x: float | None) -> float | None:
            return round(x, 6) if x is not None else None

        return {
            "decisions": self.decisions,
            "with_outcome": self.with_outcome,
            "agreement": r(self.agreement),
            "close_precision": r(self.close_precision),
            "missed_tp": self.missed_tp,
        }


def agrees(verdict: str, disposition: str) -> bool:
    """A close agrees with false_positive; an escalate with benign_positive or true_positive."""
    if verdict == Verdict.CLOSE:
        return disposition == Disposition.FALSE_POSITIVE
    return disposition in (Disposition.BENIGN_POSITIVE, Disposition.TRUE_POSITIVE)


def shadow_evidence(
    rows: Iterable[tuple[Mapping[str, str], str, str | None, int]], scope: Scope
) -> ShadowEvidence:
    """Tally shadow decisions (alert dims, verdict, latest disposition, how many) that match the scope."""
    decisions = with_outcome = agreeing = closes = correct = missed = 0
    for dims, verdict, disposition, n in rows:
        if not scope.matches(dims):
            continue
        decisions += n
        if disposition not in _DETERMINED:
            continue
        with_outcome += n
        agreeing += n * agrees(verdict, str(disposition))
        if verdict == Verdict.CLOSE:
            closes += n
            correct += n * (disposition == Disposition.FALSE_POSITIVE)
            missed += n * (disposition == Disposition.TRUE_POSITIVE)
    return ShadowEvidence(decisions, with_outcome, agreeing, closes, correct, missed)


def go_live_unmet(ev: ShadowEvidence, policy: Policy) -> list[str]:
    """Each go-live criterion that the shadow evidence does not meet, in words."""
    unmet = []
    if ev.with_outcome < policy.shadow_min_decisions:
        unmet.append(
            f"shadow decisions with an outcome: {ev.with_outcome}"
            f" < shadow_min_decisions {policy.shadow_min_decisions}"
        )
    if ev.agreement is None or ev.agreement < policy.shadow_min_agreement:
        shown = "undefined" if ev.agreement is None else f"{ev.agreement:.3f}"
        unmet.append(f"agreement {shown} < shadow_min_agreement {policy.shadow_min_agreement}")
    if ev.close_precision is None or ev.close_precision < policy.rollback_below_precision:
        shown = "undefined" if ev.close_precision is None else f"{ev.close_precision:.3f}"
        unmet.append(
            f"shadow close precision {shown} < rollback_below_precision {policy.rollback_below_precision}"
        )
    if ev.missed_tp > policy.max_missed_tp:
        unmet.append(f"shadow missed TPs {ev.missed_tp} > max_missed_tp {policy.max_missed_tp}")
    return unmet
