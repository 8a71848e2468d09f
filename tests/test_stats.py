"""Judging precision: the test vectors of STATISTICS.md, the three evidence methods and the intervals."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.domain.evidence import (
    Action,
    Trigger,
    bets_of,
    check_rollback,
    judge,
    rebuild_counters,
)
from tether.domain.model import Counters, Slice, SliceState
from tether.domain.policy import EvidenceMethod, OnHold, Policy
from tether.domain.scope import Scope
from tether.stats.intervals import beta_binomial_cs, wilson
from tether.stats.sequential import Bets, EProcess, crossed, sprt_bounds, sprt_llr

NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
DEFAULT = Policy()
POINT = Policy(evidence=EvidenceMethod.POINT)
SPRT = Policy(evidence=EvidenceMethod.SPRT)
SCOPE = Scope((("tenant", "acme"), ("rule_family", "phishing")))
OK, BAD = True, False


# helpers ---------------------------------------------------------------------------------------------


def canary(
    reviews: EProcess | None = None,
    *,
    age_days: float = 8,
    missed_tp: int = 0,
    state: SliceState = SliceState.CANARY,
) -> Slice:
    """A slice of the given age (since its canary started) holding the given review evidence."""
    return Slice(
        id="sl_1",
        scope=SCOPE,
        state=state,
        attempt=1,
        created_at=NOW - timedelta(days=60),
        canary_started_at=NOW - timedelta(days=age_days),
        counters=Counters(decisions=1000, executed=900, missed_tp=missed_tp, reviews=reviews or EProcess()),
    )


def replay(stream: Iterable[bool], policy: Policy = DEFAULT) -> EProcess:
    return EProcess().replay(list(stream), bets_of(policy))


def first_decision(stream: list[bool], policy: Policy = DEFAULT, age_days: float = 8) -> tuple[Action, int]:
    """Feed reviews one by one into a canary slice; the first non-continue verdict and its review number."""
    state = EProcess()
    bets = bets_of(policy)
    for n, x in enumerate(stream, 1):
        state = state.update(x, bets)
        verdict = judge(canary(state, age_days=age_days), policy, NOW)
        if verdict.action is not Action.CONTINUE:
            return verdict.action, n
    return Action.CONTINUE, len(stream)


def first_crossing(stream: list[bool], alpha: float = 0.05) -> tuple[str, int]:
    """The sequential rule straight from STATISTICS.md on the raw e-process: first rollback or promotion."""
    state = EProcess()
    for n, x in enumerate(stream, 1):
        state = state.update(x, Bets())
        assert state.p_hat is not None
        if state.p_hat < 0.95 and state.log_e_rb >= math.log(1 / alpha):
            return "rollback", n
        if state.p_hat >= 0.98 and state.log_e_pr >= math.log(1 / alpha):
            return "promote", n
    return "continue", len(stream)


def reference_update(state: tuple[int, int, float, float], x: bool) -> tuple[int, int, float, float]:
    """One review of STATISTICS.md's pseudo-code, written out independently of EProcess."""
    s, f, log_rb, log_pr = state
    a, b = 19.0, 1.0
    mu = (a + s) / (a + b + s + f)
    xv = 1.0 if x else 0.0
    m = 0.98
    lam = min((mu - m) / (m * (1 - m)), 0)
    log_rb += math.log(1 + lam * (xv - m))
    m = 0.95
    lam = max((mu - m) / (m * (1 - m)), 0)
    log_pr += math.log(1 + lam * (xv - m))
    return s + int(x), f + int(not x), log_rb, log_pr


# the test vectors of STATISTICS.md -----------------------------------------------------------------------


def test_92_clean_reviews_continue_and_the_93rd_promotes() -> None:
    """STATISTICS.md vector: 92 correct reviews continue, the 93rd promotes (age ≥ 7 d, defaults)."""
    assert judge(canary(replay([OK] * 92)), DEFAULT, NOW).action is Action.CONTINUE
    assert judge(canary(replay([OK] * 93)), DEFAULT, NOW).action is Action.PROMOTE
    assert first_decision([OK] * 200) == (Action.PROMOTE, 93)


def test_three_incorrect_reviews_roll_back_at_the_third() -> None:
    """STATISTICS.md vector: incorrect, incorrect, incorrect rolls back at the 3rd review, on precision."""
    assert check_rollback(canary(replay([BAD] * 2)), DEFAULT) is None
    rollback = check_rollback(canary(replay([BAD] * 3)), DEFAULT)
    assert rollback is not None and rollback.action is Action.ROLLBACK
    assert rollback.trigger is Trigger.PRECISION
    assert first_decision([BAD] * 10) == (Action.ROLLBACK, 3)


def test_16_correct_then_4_incorrect_roll_back_at_the_20th() -> None:
    """STATISTICS.md vector: 16 correct then 4 incorrect rolls back at the 20th review, not before."""
    stream = [OK] * 16 + [BAD] * 4
    assert first_decision(stream) == (Action.ROLLBACK, 20)
    assert check_rollback(canary(replay(stream[:19])), DEFAULT) is None
    assert check_rollback(canary(replay(stream)), DEFAULT) is not None


def test_17_correct_then_3_incorrect_continue() -> None:
    """STATISTICS.md vector: 17 correct then 3 incorrect neither rolls back nor promotes."""
    stream = [OK] * 17 + [BAD] * 3
    assert first_decision(stream) == (Action.CONTINUE, 20)
    assert check_rollback(canary(replay(stream)), DEFAULT) is None


def test_one_incorrect_then_correct_ones_promote_at_review_132() -> None:
    """STATISTICS.md vector: 1 incorrect then correct ones promotes at review 132."""
    stream = [BAD] + [OK] * 200
    assert first_decision(stream) == (Action.PROMOTE, 132)
    assert judge(canary(replay(stream[:131])), DEFAULT, NOW).action is Action.CONTINUE


def test_vectors_hold_on_counters_rebuilt_from_stored_outcomes() -> None:
    """Counters recomputed from stored review outcomes give the same verdicts as the vectors."""

    def rebuilt(stream: list[bool]) -> Slice:
        history = [
            (i, i, "false_positive" if x else "benign_positive", "review") for i, x in enumerate(stream, 1)
        ]
        counters = rebuild_counters(len(stream), len(stream), history, DEFAULT)
        assert counters.reviews == replay(stream)
        return canary(counters.reviews)

    assert judge(rebuilt([OK] * 92), DEFAULT, NOW).action is Action.CONTINUE
    assert judge(rebuilt([OK] * 93), DEFAULT, NOW).action is Action.PROMOTE
    assert judge(rebuilt([OK] * 16 + [BAD] * 4), DEFAULT, NOW).action is Action.ROLLBACK
    assert judge(rebuilt([OK] * 17 + [BAD] * 3), DEFAULT, NOW).action is Action.CONTINUE
    assert judge(rebuilt([BAD] + [OK] * 130), DEFAULT, NOW).action is Action.CONTINUE
    assert judge(rebuilt([BAD] + [OK] * 131), DEFAULT, NOW).action is Action.PROMOTE


def test_eprocess_follows_the_pseudo_code_of_statistics_md() -> None:
    """EProcess.update computes the log-capitals of the STATISTICS.md pseudo-code, review by review."""
    rng = random.Random(7)
    state = EProcess()
    ref = (0, 0, 0.0, 0.0)
    for _ in range(300):
        x = rng.random() < 0.93
        state = state.update(x, Bets())
        ref = reference_update(ref, x)
        assert (state.correct, state.incorrect) == ref[:2]
        assert state.log_e_rb == pytest.approx(ref[2], abs=1e-9)
        assert state.log_e_pr == pytest.approx(ref[3], abs=1e-9)


# "Reading it": the claims of STATISTICS.md and DESIGN §5, as far as they hold when computed -------------


@pytest.mark.parametrize(("errors", "reviews"), [(3, 10), (4, 20), (5, 50), (8, 100)])
def test_rollback_comes_by_k_errors_in_n_reviews_with_errors_first(errors: int, reviews: int) -> None:
    """Errors first: 3 in 10, 4 in 20, 5 in 50 and 8 in 100 all roll back by then (at the 3rd error)."""
    action, at = first_decision([BAD] * errors + [OK] * (reviews - errors))
    assert action is Action.ROLLBACK
    assert at <= reviews
    assert at == 3


@pytest.mark.parametrize(("errors", "reviews"), [(3, 10), (4, 20), (5, 50)])
def test_rollback_comes_at_exactly_k_errors_in_n_reviews_with_errors_last(errors: int, reviews: int) -> None:
    """Errors last: 3 in 10, 4 in 20, 5 in 50 roll back at the n-th review, and one error fewer does not."""
    assert first_decision([OK] * (reviews - errors) + [BAD] * errors) == (Action.ROLLBACK, reviews)
    fewer = [OK] * (reviews - errors + 1) + [BAD] * (errors - 1)
    assert first_decision(fewer) == (Action.CONTINUE, reviews)


def test_eight_errors_last_in_100_reviews_roll_back_by_the_100th() -> None:
    """Errors last: 92 correct then 8 incorrect rolls back by review 100 (at the 99th, the 7th error)."""
    assert first_decision([OK] * 92 + [BAD] * 8) == (Action.ROLLBACK, 99)


def test_one_error_anywhere_delays_promotion_to_at_most_142_reviews() -> None:
    """With one error at any place before promotion, promotion comes by review 142, exactly 142 at worst."""
    at = []
    for position in range(1, 93):
        outcome, n = first_crossing([OK] * (position - 1) + [BAD] + [OK] * 300)
        assert outcome == "promote"
        at.append(n)
    assert min(at) == 132
    assert max(at) == 142
    assert first_decision([OK] * 91 + [BAD] + [OK] * 100) == (Action.PROMOTE, 142)


def test_two_late_errors_delay_promotion_to_review_183() -> None:
    """With two errors (the worst placement, right before promotion was due) promotion comes at review 183."""
    assert first_crossing([OK] * 91 + [BAD, BAD] + [OK] * 300) == ("promote", 183)
    assert first_decision([OK] * 91 + [BAD, BAD] + [OK] * 200) == (Action.PROMOTE, 183)


# the point method -----------------------------------------------------------------------------------------


def test_point_promotion_waits_for_min_reviews_to_promote() -> None:
    """Point: 29 clean reviews do not promote (floor 30), 30 do; the floor follows the policy."""
    assert judge(canary(replay([OK] * 29, POINT)), POINT, NOW).action is Action.CONTINUE
    assert judge(canary(replay([OK] * 30, POINT)), POINT, NOW).action is Action.PROMOTE
    policy = Policy(evidence=EvidenceMethod.POINT, min_reviews_to_promote=5)
    assert judge(canary(replay([OK] * 5, policy)), policy, NOW).action is Action.PROMOTE


def test_point_promotion_needs_observed_precision_of_098() -> None:
    """Point: 49/50 = 0.98 promotes, 48/50 = 0.96 does not (and is not bad enough to roll back)."""
    assert judge(canary(replay([OK] * 49 + [BAD], POINT)), POINT, NOW).action is Action.PROMOTE
    assert judge(canary(replay([OK] * 48 + [BAD] * 2, POINT)), POINT, NOW).action is Action.CONTINUE


def test_point_rollback_waits_for_min_reviews_to_judge_rollback() -> None:
    """Point: precision under 0.95 rolls back only from the 20th review on."""
    assert check_rollback(canary(replay([BAD] * 19, POINT)), POINT) is None
    assert judge(canary(replay([BAD] * 19, POINT)), POINT, NOW).action is Action.CONTINUE
    rollback = check_rollback(canary(replay([OK] * 18 + [BAD] * 2, POINT)), POINT)
    assert rollback is not None and rollback.trigger is Trigger.PRECISION
    # 19/20 = 0.95 is not under 0.95.
    assert check_rollback(canary(replay([OK] * 19 + [BAD], POINT)), POINT) is None


def test_undefined_precision_never_promotes() -> None:
    """No reviews means undefined precision, which never promotes, even with every floor at zero."""
    for policy in (
        Policy(
            evidence=EvidenceMethod.POINT,
            min_reviews_to_promote=0,
            promote_min_precision=0.0,
            rollback_below_precision=0.0,
        ),
        Policy(evidence=EvidenceMethod.SEQUENTIAL, promote_min_precision=0.0, rollback_below_precision=0.0),
        # Wald's upper bound is negative here: an empty log-likelihood ratio of 0 would pass it.
        Policy(evidence=EvidenceMethod.SPRT, alpha_promote=0.9, alpha_rollback=0.5),
    ):
        verdict = judge(canary(EProcess(), age_days=10), policy, NOW)
        assert verdict.action is Action.CONTINUE, policy.evidence
        assert any("undefined" in r for r in verdict.reasons)


@pytest.mark.parametrize("policy", [DEFAULT, POINT, SPRT], ids=lambda p: p.evidence.value)
def test_a_missed_tp_rolls_back_whatever_the_precision(policy: Policy) -> None:
    """missed_tp > max_missed_tp rolls back at once, even with perfect precision that would promote."""
    perfect = replay([OK] * 200, policy)
    assert judge(canary(perfect), policy, NOW).action is Action.PROMOTE
    for reviews in (EProcess(), perfect):
        verdict = judge(canary(reviews, missed_tp=1), policy, NOW)
        assert verdict.action is Action.ROLLBACK
        assert verdict.trigger is Trigger.MISSED_TP
        assert check_rollback(canary(reviews, missed_tp=1), policy) == verdict


def test_missed_tps_up_to_max_missed_tp_are_tolerated() -> None:
    """With max_missed_tp 1, one missed TP does not roll back and two do."""
    policy = Policy(max_missed_tp=1)
    assert check_rollback(canary(replay([OK] * 10), missed_tp=1), policy) is None
    verdict = check_rollback(canary(replay([OK] * 10), missed_tp=2), policy)
    assert verdict is not None and verdict.trigger is Trigger.MISSED_TP


def test_rollback_is_checked_before_promotion() -> None:
    """A slice meeting the precision and age criteria but over the missed-TP limit rolls back."""
    reviews = replay([OK] * 100)
    assert judge(canary(reviews, age_days=30), DEFAULT, NOW).action is Action.PROMOTE
    verdict = judge(canary(reviews, age_days=30, missed_tp=1), DEFAULT, NOW)
    assert verdict.action is Action.ROLLBACK
    assert verdict.trigger is Trigger.MISSED_TP
    assert any("missed true positive" in r for r in verdict.reasons)


def test_active_slices_are_monitored_unless_monitor_active_is_off() -> None:
    """An active slice rolls back on a missed TP; with monitor_active false never by rule."""
    active = canary(replay([BAD] * 5), missed_tp=1, state=SliceState.ACTIVE)
    assert judge(active, DEFAULT, NOW).action is Action.ROLLBACK
    off = Policy(monitor_active=False)
    assert check_rollback(active, off) is None
    assert judge(active, off, NOW).action is Action.CONTINUE


@pytest.mark.parametrize("policy", [DEFAULT, POINT, SPRT], ids=lambda p: p.evidence.value)
def test_young_canary_is_not_promoted_and_reasons_say_the_age_missing(policy: Policy) -> None:
    """Age under promote_after_days blocks promotion; a reason names the age and the 7 days needed."""
    reviews = replay([OK] * 300, policy)
    young = judge(canary(reviews, age_days=5.4), policy, NOW)
    assert young.action is Action.CONTINUE
    assert any("5.4 d" in r and "7 d" in r for r in young.reasons), young.reasons
    assert judge(canary(reviews, age_days=7), policy, NOW).action is Action.PROMOTE


def test_reasons_say_how_many_clean_reviews_are_missing() -> None:
    """Under sequential, 50 clean reviews leave 43 more needed (promotion at 93), and the reasons say so."""
    verdict = judge(canary(replay([OK] * 50)), DEFAULT, NOW)
    assert verdict.action is Action.CONTINUE
    assert any("43 more clean reviews" in r for r in verdict.reasons), verdict.reasons
    assert any("precision 1.000 on 50 reviews" in r for r in verdict.reasons), verdict.reasons


GREY = [OK] * 24 + [BAD] + [OK] * 24 + [BAD] + [OK] * 24 + [BAD] + [OK] * 24 + [BAD]  # 96 / 100


def test_sequential_holds_an_undecided_slice_at_hold_after_days() -> None:
    """Under sequential, a grey-zone slice (0.96) continues before 28 days and is held at 28 days."""
    reviews = replay(GREY)
    assert judge(canary(reviews, age_days=27.9), DEFAULT, NOW).action is Action.CONTINUE
    held = judge(canary(reviews, age_days=28), DEFAULT, NOW)
    assert held.action is Action.HOLD
    assert held.trigger is None
    assert judge(canary(reviews, age_days=40), DEFAULT, NOW).action is Action.HOLD


def test_on_hold_pause_rolls_back_with_trigger_hold() -> None:
    """With on_hold pause, an undecided slice at hold_after_days rolls back with trigger hold."""
    policy = Policy(on_hold=OnHold.PAUSE)
    verdict = judge(canary(replay(GREY), age_days=28), policy, NOW)
    assert verdict.action is Action.ROLLBACK
    assert verdict.trigger is Trigger.HOLD
    assert check_rollback(canary(replay(GREY), age_days=28), policy) is None


def test_hold_is_sequential_only() -> None:
    """Point and sprt never answer hold: the grey-zone slice at 40 days just continues under point."""
    verdict = judge(canary(replay(GREY, POINT), age_days=40), POINT, NOW)
    assert verdict.action is Action.CONTINUE
    sprt = judge(canary(replay(GREY[:30], SPRT), age_days=40), SPRT, NOW)
    assert sprt.action is Action.CONTINUE


# sprt -----------------------------------------------------------------------------------------------------


def wald_first(stream: list[bool], alpha: float = 0.05) -> tuple[Action, int]:
    """Wald's SPRT of 0.98 against 0.95, written out: the first review where the ratio leaves (B, A)."""
    upper = math.log((1 - alpha) / alpha)
    lower = math.log(alpha / (1 - alpha))
    llr = 0.0
    for n, x in enumerate(stream, 1):
        llr += math.log(0.98 / 0.95) if x else math.log(0.02 / 0.05)
        if llr >= upper:
            return Action.PROMOTE, n
        if llr <= lower:
            return Action.ROLLBACK, n
    return Action.CONTINUE, len(stream)


def test_sprt_promotes_clean_reviews_at_walds_bound() -> None:
    """Sprt promotes on clean reviews exactly when the likelihood ratio reaches (1 - β) / α: review 95."""
    assert wald_first([OK] * 200) == (Action.PROMOTE, 95)
    assert first_decision([OK] * 200, SPRT) == (Action.PROMOTE, 95)


def test_sprt_rolls_back_on_errors_at_walds_bound() -> None:
    """Sprt rolls back when the ratio falls to β / (1 - α): the 4th straight error, or later."""
    assert first_decision([BAD] * 10, SPRT) == (Action.ROLLBACK, 4)
    stream = [OK] * 20 + [BAD] * 10
    assert first_decision(stream, SPRT) == wald_first(stream)
    verdict = check_rollback(canary(replay([BAD] * 4, SPRT)), SPRT)
    assert verdict is not None and verdict.trigger is Trigger.PRECISION


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 400), st.integers(0, 12))
def test_sprt_decides_where_wald_does(correct: int, incorrect: int) -> None:
    """For any review counts, sprt promotes at Wald's upper bound and rolls back at the lower one."""
    llr = correct * math.log(0.98 / 0.95) + incorrect * math.log(0.02 / 0.05)
    expected = Action.CONTINUE
    if llr >= math.log(0.95 / 0.05):
        expected = Action.PROMOTE
    if llr <= math.log(0.05 / 0.95):
        expected = Action.ROLLBACK
    reviews = replay([OK] * correct + [BAD] * incorrect, SPRT)
    assert judge(canary(reviews), SPRT, NOW).action is expected


def test_sprt_bounds_and_ratio() -> None:
    """The Wald bounds are log(β / (1 - α)) and log((1 - β) / α); the ratio is the binomial one."""
    low, high = sprt_bounds(0.05, 0.10)
    assert low == pytest.approx(math.log(0.10 / 0.95))
    assert high == pytest.approx(math.log(0.90 / 0.05))
    assert sprt_llr(3, 1, Bets()) == pytest.approx(3 * math.log(0.98 / 0.95) + math.log(0.02 / 0.05))


# intervals ------------------------------------------------------------------------------------------------


def test_wilson_known_value() -> None:
    """Wilson 95% for 95/100 is about 0.888–0.978, and no observation gives no interval."""
    low, high = wilson(95, 100) or (0.0, 0.0)
    assert low == pytest.approx(0.8883, abs=5e-4)
    assert high == pytest.approx(0.9785, abs=5e-4)
    assert wilson(0, 0) is None


def test_confidence_sequence_known_shape() -> None:
    """The beta-binomial confidence sequence is None without reviews and reaches 1 for all-correct reviews."""
    assert beta_binomial_cs(0, 0, 19, 1) is None
    low, high = beta_binomial_cs(100, 0, 19, 1) or (0.0, 0.0)
    assert high == 1.0
    assert 0.9 < low < 1.0


counts = st.integers(0, 2000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n)))


@settings(max_examples=100, deadline=None)
@given(counts.filter(lambda c: c[1] > 0))
def test_wilson_contains_the_estimate_within_unit_interval(c: tuple[int, int]) -> None:
    """Wilson's interval lies in [0, 1] and contains the observed proportion."""
    successes, n = c
    low, high = wilson(successes, n) or (math.nan, math.nan)
    assert 0.0 <= low <= high <= 1.0
    # Floating point may leave an edge a few ulps off an exact 0 or 1 estimate.
    assert low - 1e-12 <= successes / n <= high + 1e-12


@settings(max_examples=100, deadline=None)
@given(counts.filter(lambda c: c[1] > 0), st.integers(2, 10))
def test_wilson_narrows_as_n_grows(c: tuple[int, int], k: int) -> None:
    """The same proportion on k times the reviews gives a strictly narrower Wilson interval."""
    successes, n = c
    low, high = wilson(successes, n) or (math.nan, math.nan)
    low_k, high_k = wilson(k * successes, k * n) or (math.nan, math.nan)
    assert high_k - low_k < high - low


@settings(max_examples=100, deadline=None)
@given(
    counts.filter(lambda c: c[1] > 0),
    st.floats(0.5, 50),
    st.floats(0.5, 50),
    st.sampled_from([0.01, 0.05, 0.1]),
)
def test_confidence_sequence_contains_the_estimate_within_unit_interval(
    c: tuple[int, int], a: float, b: float, alpha: float
) -> None:
    """The beta-binomial confidence sequence lies in [0, 1] and contains the observed precision, any prior."""
    successes, n = c
    low, high = beta_binomial_cs(successes, n - successes, a, b, alpha) or (math.nan, math.nan)
    assert 0.0 <= low <= successes / n <= high <= 1.0


@settings(max_examples=100, deadline=None)
@given(counts.filter(lambda c: c[1] > 0), st.integers(2, 10))
def test_confidence_sequence_narrows_as_n_grows(c: tuple[int, int], k: int) -> None:
    """The same proportion on k times the reviews gives a narrower confidence sequence (default prior)."""
    successes, n = c
    low, high = beta_binomial_cs(successes, n - successes, 19, 1) or (math.nan, math.nan)
    low_k, high_k = beta_binomial_cs(k * successes, k * (n - successes), 19, 1) or (math.nan, math.nan)
    assert high_k - low_k <= high - low + 1e-9


def test_confidence_sequence_is_wider_than_wilson_for_the_same_counts() -> None:
    """Anytime validity costs width: at 95/100 and 990/1000 the sequence is wider than the fixed-n Wilson."""
    for successes, n in ((95, 100), (990, 1000)):
        w_low, w_high = wilson(successes, n) or (0.0, 0.0)
        c_low, c_high = beta_binomial_cs(successes, n - successes, 19, 1) or (0.0, 0.0)
        assert c_high - c_low > w_high - w_low


# rebuilding counters from stored outcomes ----------------------------------------------------------------

DISPOSITIONS = ["false_positive", "benign_positive", "true_positive", "undetermined"]
history_entries = st.lists(
    st.tuples(
        st.integers(0, 12), st.sampled_from(DISPOSITIONS), st.sampled_from(["review", "review", "incident"])
    ),
    max_size=60,
)


def reference_counters(history: list[tuple[int, int, str, str]]) -> tuple[int, list[bool]]:
    """Missed TPs and review stream per DESIGN §4: the latest outcome counts, at its first review's place."""
    ordered = sorted(history, key=lambda h: h[1])
    latest = {d: (disp, src) for d, _, disp, src in ordered}
    first_review: list[int] = []
    for d, _, _, src in ordered:
        if src == "review" and d not in first_review:
            first_review.append(d)
    missed = sum(1 for disp, _ in latest.values() if disp == "true_positive")
    stream = []
    for d in first_review:
        disp, src = latest[d]
        if src == "review" and disp != "undetermined":
            stream.append(disp == "false_positive")
    return missed, stream


@settings(max_examples=100, deadline=None)
@given(history_entries, st.randoms(use_true_random=False))
def test_rebuild_counters_equals_eprocess_over_the_first_review_order(
    entries: list[tuple[int, str, str]], rng: random.Random
) -> None:
    """rebuild_counters over any history equals EProcess.update over the stream in first-review order."""
    history = [(d, seq, disp, src) for seq, (d, disp, src) in enumerate(entries, 1)]
    shuffled = history[:]
    rng.shuffle(shuffled)  # stored rows come in any order; their sequence number is what counts
    counters = rebuild_counters(40, 30, shuffled, DEFAULT)
    missed, stream = reference_counters(history)
    expected = EProcess()
    for x in stream:
        expected = expected.update(x, bets_of(DEFAULT))
    assert counters == Counters(40, 30, missed, expected)


def test_a_correction_replaces_the_review_in_place() -> None:
    """A corrected disposition keeps the decision's first-review position instead of moving last."""
    history = [
        (1, 1, "false_positive", "review"),
        (2, 2, "false_positive", "review"),
        (3, 3, "benign_positive", "review"),
        (1, 4, "benign_positive", "review"),  # correction of decision 1
    ]
    counters = rebuild_counters(3, 3, history, DEFAULT)
    in_place = replay([BAD, OK, BAD])
    moved_last = replay([OK, BAD, BAD])
    assert counters.reviews == in_place
    assert in_place != moved_last  # the order matters to the capitals, so the test can tell them apart
    assert counters.missed_tp == 0


def test_a_true_positive_from_any_source_is_a_missed_tp() -> None:
    """A true_positive is a missed TP whatever its source; found by a review it is also incorrect."""
    history = [
        (1, 1, "true_positive", "incident"),
        (2, 2, "true_positive", "review"),
        (3, 3, "false_positive", "review"),
    ]
    counters = rebuild_counters(3, 3, history, DEFAULT)
    assert counters.missed_tp == 2
    assert counters.reviews == replay([BAD, OK])


# simulation -----------------------------------------------------------------------------------------------


def simulate(precision: float, slices: int, reviews: int, seed: int) -> tuple[int, int, int]:
    """Simulated canaries: how many sequential rollbacks, sequential promotions and point rollbacks happen."""
    rng = random.Random(seed)
    bets = bets_of(DEFAULT)
    seq_rollbacks = seq_promotions = point_rollbacks = 0
    for _ in range(slices):
        state = EProcess()
        seq_done = point_done = False
        for _ in range(reviews):
            state = state.update(rng.random() < precision, bets)
            assert state.p_hat is not None
            # Both methods need observed precision under 0.95 to roll back; only then ask the domain.
            suspicious = state.p_hat < 0.95
            if not seq_done:
                if suspicious and check_rollback(canary(state), DEFAULT) is not None:
                    seq_rollbacks += 1
                    seq_done = True
                elif state.p_hat >= 0.98 and crossed(state.log_e_pr, 0.05):
                    seq_promotions += 1
                    seq_done = True
            if not point_done and suspicious and check_rollback(canary(state), POINT) is not None:
                point_rollbacks += 1
                point_done = True
            if seq_done and point_done:
                break
    return seq_rollbacks, seq_promotions, point_rollbacks


def test_truly_99_percent_slices_are_rarely_rolled_back_under_sequential() -> None:
    """300 simulated 99%-precise canaries × 200 reviews: sequential rolls back well under 5%, point more."""
    seq_rollbacks, _, point_rollbacks = simulate(0.99, slices=300, reviews=200, seed=20260302)
    assert seq_rollbacks / 300 <= 0.02
    assert point_rollbacks > seq_rollbacks


def test_truly_95_percent_slices_are_rarely_promoted_under_sequential() -> None:
    """300 simulated 95%-precise canaries × 200 reviews: sequential promotes about alpha_promote at most."""
    _, seq_promotions, _ = simulate(0.95, slices=300, reviews=200, seed=11)
    assert seq_promotions / 300 <= 0.05 + 0.03


def test_evidence_of_a_very_long_clean_attempt_stays_printable() -> None:
    """Thousands of clean reviews push the promotion capital past a float; the evidence still renders."""
    from tether.domain.evidence import evidence_dict

    long_clean = EProcess(correct=50_000, incorrect=0, log_e_rb=-5.0, log_e_pr=2_000.0)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    s = Slice(
        "sl_long",
        Scope((("tenant", "acme"),)),
        SliceState.ACTIVE,
        1,
        start,
        canary_started_at=start,
        counters=Counters(60_000, 55_000, 0, long_clean),
    )
    ev = evidence_dict(s, Policy(), start + timedelta(days=40))
    assert ev["e_promote"] > 1e300 and ev["precision"] == 1.0
