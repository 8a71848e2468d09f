"""Judging a slice's evidence: rollback first, then promotion, then hold (DESIGN §5, STATISTICS.md)."""

from __future__ import annotations

import functools
import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from tether.domain.model import Counters, Disposition, Slice, SliceState
from tether.domain.policy import EvidenceMethod, OnHold, Policy, ReviewFrom
from tether.stats.intervals import beta_binomial_cs, wilson
from tether.stats.sequential import Bets, EProcess, crossed, sprt_bounds, sprt_llr

_CLEAN_REVIEW_CAP = 20_000
DAY_SECONDS = 86_400.0


class Action(StrEnum):
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    CONTINUE = "continue"
    HOLD = "hold"


class Trigger(StrEnum):
    MISSED_TP = "missed_tp"
    PRECISION = "precision"
    HOLD = "hold"
    MANUAL = "manual"


@dataclass(frozen=True)
class Judgement:
    action: Action
    reasons: tuple[str, ...]
    trigger: Trigger | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action.value, "reasons": list(self.reasons)}


def e_value(log_capital: float) -> float:
    """A capital for display; thousands of clean reviews push it past what a float holds."""
    return math.exp(min(log_capital, 700.0))


def bets_of(policy: Policy) -> Bets:
    return Bets(
        rollback_at=policy.rollback_below_precision,
        promote_at=policy.promote_min_precision,
        prior_a=policy.prior_a,
        prior_b=policy.prior_b,
    )


def age_days(s: Slice, now: datetime) -> float:
    """Days since the current attempt's canary started; 0 in shadow (after a reset no attempt runs yet)."""
    if s.canary_started_at is None or s.state is SliceState.SHADOW:
        return 0.0
    return max(0.0, (now - s.canary_started_at).total_seconds() / DAY_SECONDS)


def interval(reviews: EProcess, policy: Policy) -> tuple[float, float] | None:
    """The precision's 95% interval: a confidence sequence under `sequential`, Wilson otherwise."""
    if policy.evidence is EvidenceMethod.SEQUENTIAL:
        return _confidence_sequence(reviews.correct, reviews.incorrect, policy.prior_a, policy.prior_b)
    return wilson(reviews.correct, reviews.reviews)


@functools.lru_cache(maxsize=65_536)
def _confidence_sequence(
    correct: int, incorrect: int, prior_a: float, prior_b: float
) -> tuple[float, float] | None:
    # About 120 bisection steps a call; each evaluation cycle asks again for slices whose counts did not move.
    return beta_binomial_cs(correct, incorrect, prior_a, prior_b, 0.05)


def _rollback_precision(r: EProcess, policy: Policy) -> bool:
    p_hat = r.p_hat
    if p_hat is None:
        return False
    if policy.evidence is EvidenceMethod.POINT:
        return r.reviews >= policy.min_reviews_to_judge_rollback and p_hat < policy.rollback_below_precision
    if policy.evidence is EvidenceMethod.SPRT:
        low, _ = sprt_bounds(policy.alpha_promote, policy.alpha_rollback)
        return sprt_llr(r.correct, r.incorrect, bets_of(policy)) <= low
    return p_hat < policy.rollback_below_precision and crossed(r.log_e_rb, policy.alpha_rollback)


def _promote_precision(r: EProcess, policy: Policy) -> bool:
    p_hat = r.p_hat
    if p_hat is None:  # undefined precision never counts as good
        return False
    if policy.evidence is EvidenceMethod.POINT:
        return r.reviews >= policy.min_reviews_to_promote and p_hat >= policy.promote_min_precision
    if policy.evidence is EvidenceMethod.SPRT:
        _, high = sprt_bounds(policy.alpha_promote, policy.alpha_rollback)
        return sprt_llr(r.correct, r.incorrect, bets_of(policy)) >= high
    return p_hat >= policy.promote_min_precision and crossed(r.log_e_pr, policy.alpha_promote)


def clean_reviews_to_promote(r: EProcess, policy: Policy) -> int | None:
    """How many more correct reviews in a row the precision rule needs; None past a large cap.

    Exactly what stepping `EProcess.update(True, ...)` until `_promote_precision` holds would give, with
    the same float operations in the same order, but without building a state per step; the answers
    are cached per (counters, the policy fields the rule reads), as many slices share their counters.
    """
    if policy.evidence is EvidenceMethod.SEQUENTIAL:
        return _clean_sequential(
            r.correct,
            r.incorrect,
            r.log_e_pr,
            policy.prior_a,
            policy.prior_b,
            policy.rollback_below_precision,
            policy.promote_min_precision,
            policy.alpha_promote,
        )
    if policy.evidence is EvidenceMethod.POINT:
        return _clean_point(
            r.correct, r.incorrect, policy.min_reviews_to_promote, policy.promote_min_precision
        )
    return _clean_sprt(r.correct, r.incorrect, bets_of(policy), policy.alpha_promote, policy.alpha_rollback)


@functools.lru_cache(maxsize=65_536)
def _clean_sequential(  # noqa: PLR0913 - the cache key is exactly what the rule reads
    correct: int,
    incorrect: int,
    log_e_pr: float,
    prior_a: float,
    prior_b: float,
    rollback_at: float,
    promote_at: float,
    alpha: float,
) -> int | None:
    # The p_hat test and `crossed` of _promote_precision, and the log_e_pr step of EProcess.update, inlined.
    limit = math.log(1 / alpha) - 1e-12
    m = rollback_at
    bets_on = 0 < m < 1
    scale = m * (1 - m)
    prior = prior_a + prior_b
    reviews = correct + incorrect
    log_pr = log_e_pr
    for k in range(_CLEAN_REVIEW_CAP + 1):
        if reviews and correct / reviews >= promote_at and log_pr >= limit:
            return k
        mu = (prior_a + correct) / (prior + reviews)
        lam = max((mu - m) / scale, 0.0) if bets_on else 0.0
        log_pr = log_pr + math.log1p(lam * (1.0 - m))
        correct += 1
        reviews += 1
    return None


@functools.lru_cache(maxsize=4_096)
def _clean_point(correct: int, incorrect: int, min_reviews: int, promote_at: float) -> int | None:
    reviews = correct + incorrect
    for k in range(_CLEAN_REVIEW_CAP + 1):
        if reviews and reviews >= min_reviews and correct / reviews >= promote_at:
            return k
        correct += 1
        reviews += 1
    return None


@functools.lru_cache(maxsize=4_096)
def _clean_sprt(
    correct: int, incorrect: int, bets: Bets, alpha_promote: float, alpha_rollback: float
) -> int | None:
    _, high = sprt_bounds(alpha_promote, alpha_rollback)
    for k in range(_CLEAN_REVIEW_CAP + 1):
        if correct + incorrect and sprt_llr(correct, incorrect, bets) >= high:
            return k
        correct += 1
    return None


def _precision_text(c: Counters, policy: Policy) -> str:
    r = c.reviews
    if r.p_hat is None:
        return "precision undefined: no reviews yet"
    text = f"precision {r.p_hat:.3f} on {r.reviews} reviews"
    bounds = interval(r, policy)
    if bounds is not None:
        text += f", 95% interval {bounds[0]:.3f}–{bounds[1]:.3f}"
    return text


def check_rollback(s: Slice, policy: Policy) -> Judgement | None:
    """The rollback rules alone, as checked when an outcome arrives; None when none holds."""
    if s.state is SliceState.ACTIVE and not policy.monitor_active:
        return None
    c = s.counters
    if c.missed_tp > policy.max_missed_tp:
        return Judgement(
            Action.ROLLBACK,
            (f"{c.missed_tp} missed true positive(s) > max_missed_tp {policy.max_missed_tp}",),
            Trigger.MISSED_TP,
        )
    if _rollback_precision(c.reviews, policy):
        why = f"{_precision_text(c, policy)}: below {policy.rollback_below_precision}"
        if policy.evidence is EvidenceMethod.SEQUENTIAL:
            why += f", e-value {e_value(c.reviews.log_e_rb):.1f} >= {1 / policy.alpha_rollback:.0f}"
        return Judgement(Action.ROLLBACK, (why,), Trigger.PRECISION)
    return None


def judge(s: Slice, policy: Policy, now: datetime) -> Judgement:
    """The evaluator's verdict for a slice in canary or active: rollback, promote, hold or continue."""
    rollback = check_rollback(s, policy)
    if rollback is not None:
        return rollback
    precision = _precision_text(s.counters, policy)
    if s.state is not SliceState.CANARY:
        return Judgement(Action.CONTINUE, (f"active; {precision}",))
    age = age_days(s, now)
    missing = _missing_for_promotion(s, policy, age)
    if not missing:
        return Judgement(
            Action.PROMOTE, (f"{precision}; age {age:.1f} d >= {policy.promote_after_days:g} d",)
        )
    if policy.evidence is EvidenceMethod.SEQUENTIAL and age >= policy.hold_after_days:
        reasons = (f"undecided after {age:.1f} d: {precision}", "a human decides: promote or roll back")
        if policy.on_hold is OnHold.PAUSE:
            return Judgement(Action.ROLLBACK, (*reasons, "on_hold is pause"), Trigger.HOLD)
        return Judgement(Action.HOLD, reasons)
    return Judgement(Action.CONTINUE, (precision, *missing))


def _missing_for_promotion(s: Slice, policy: Policy, age: float) -> list[str]:
    missing: list[str] = []
    if age < policy.promote_after_days:
        missing.append(f"age {age:.1f} d < {policy.promote_after_days:g} d")
    if s.counters.missed_tp > policy.max_missed_tp:
        missing.append(f"{s.counters.missed_tp} missed true positive(s)")
    if not _promote_precision(s.counters.reviews, policy):
        more = clean_reviews_to_promote(s.counters.reviews, policy)
        if more is None:
            missing.append(f"precision not yet >= {policy.promote_min_precision} with enough evidence")
        else:
            missing.append(f"needs {more} more clean reviews")
    return missing


def evidence_dict(s: Slice, policy: Policy, now: datetime) -> dict[str, Any]:
    """The `evidence` object of the slice JSON (DESIGN §7), with extra detail."""
    c = s.counters
    r = c.reviews
    bounds = interval(r, policy) if r.reviews else None
    age = age_days(s, now)
    live = s.state in (SliceState.CANARY, SliceState.ACTIVE)
    return {
        "decisions": c.decisions,
        "executed": c.executed,
        "reviewed": r.reviews,
        "correct": r.correct,
        "incorrect": r.incorrect,
        "missed_tp": c.missed_tp,
        "precision": round(r.p_hat, 6) if r.p_hat is not None else None,
        "precision_low": round(bounds[0], 6) if bounds else None,
        "precision_high": round(bounds[1], 6) if bounds else None,
        "age_days": round(age, 4),
        "decisions_per_day": round(c.decisions / age, 3) if age > 0 else None,
        "review_coverage": round(r.reviews / c.executed, 6) if c.executed else None,
        "other_reviews": c.other_reviews,  # review_from=sampled: reviews of unsampled decisions, not counted
        "method": policy.evidence.value,
        "e_rollback": round(e_value(r.log_e_rb), 6),
        "e_promote": round(e_value(r.log_e_pr), 6),
        "clean_reviews_to_promote": clean_reviews_to_promote(r, policy) if live else None,
    }


REVIEW_SOURCE = "review"


def review_value(disposition: str | None, source: str | None) -> bool | None:
    """A latest outcome's place in the review stream: True correct, False incorrect, None not counted."""
    if source != REVIEW_SOURCE or disposition is None or disposition == Disposition.UNDETERMINED:
        return None
    return disposition == Disposition.FALSE_POSITIVE


def counts_as_review(sampled: bool, policy: Policy) -> bool:
    """Under review_from=sampled only reviews of decisions Tether sampled enter the precision."""
    return sampled or policy.review_from is ReviewFrom.ALL


def rebuild_counters(
    decisions: int,
    executed: int,
    history: Iterable[tuple[int, int, str, str]],
    policy: Policy,
    unsampled: Collection[int] = frozenset(),
) -> Counters:
    """Counters of an attempt from its executed closes' outcomes (decision, seq, disposition, source).

    The latest outcome of a decision counts; in the review stream a decision keeps the position of
    its first review (STATISTICS.md), so a correction replaces its value in place. Reviews of
    `unsampled` decisions are kept apart when the policy counts sampled reviews only.
    """
    latest: dict[int, tuple[str, str]] = {}
    first_review: dict[int, int] = {}
    for decision, seq, disposition, source in sorted(history, key=lambda h: h[1]):
        latest[decision] = (disposition, source)
        if source == REVIEW_SOURCE:
            first_review.setdefault(decision, seq)
    missed = sum(1 for disposition, _ in latest.values() if disposition == Disposition.TRUE_POSITIVE)
    stream = []
    other = 0
    for decision, _position in sorted(first_review.items(), key=lambda kv: kv[1]):
        value = review_value(*latest[decision])
        if value is None:
            continue
        if counts_as_review(decision not in unsampled, policy):
            stream.append(value)
        else:
            other += 1
    return Counters(decisions, executed, missed, EProcess().replay(stream, bets_of(policy)), other)
