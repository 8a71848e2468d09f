"""'needs N more clean reviews': the fast count equals stepping the evidence one clean review at a time."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tether.domain.evidence import _promote_precision, bets_of, clean_reviews_to_promote
from tether.domain.policy import EvidenceMethod, Policy
from tether.stats.sequential import EProcess

_CAP = 20_000


def stepped(r: EProcess, policy: Policy) -> int | None:
    """The definition: clean reviews added one by one until the promotion rule for precision holds."""
    bets = bets_of(policy)
    for k in range(_CAP + 1):
        if _promote_precision(r, policy):
            return k
        r = r.update(True, bets)
    return None


policies = st.builds(
    lambda method, pm, gap, a, b, ap, ar, minr: Policy(
        evidence=method,
        promote_min_precision=pm,
        rollback_below_precision=pm - gap,
        prior_a=a,
        prior_b=b,
        alpha_promote=ap,
        alpha_rollback=ar,
        min_reviews_to_promote=minr,
    ),
    st.sampled_from(list(EvidenceMethod)),
    st.floats(0.5, 0.995),
    st.floats(0.0, 0.2),
    st.floats(0.5, 40),
    st.floats(0.1, 5),
    st.floats(0.001, 0.3),
    st.floats(0.001, 0.3),
    st.integers(0, 200),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.booleans(), max_size=120), st.integers(0, 40), policies)
def test_the_count_matches_stepping(stream: list[bool], clean_first: int, policy: Policy) -> None:
    """For any review history and policy, the count is the one stepping the e-process would give."""
    r = EProcess().replay([True] * clean_first + stream, bets_of(policy))
    assert clean_reviews_to_promote(r, policy) == stepped(r, policy)


def test_default_policy_vectors() -> None:
    """Default policy: 93 clean reviews from nothing, what stepping gives after an error, 0 when ready."""
    policy = Policy()
    bets = bets_of(policy)
    assert clean_reviews_to_promote(EProcess(), policy) == 93
    assert clean_reviews_to_promote(EProcess().update(False, bets), policy) == stepped(
        EProcess().update(False, bets), policy
    )
    ready = EProcess().replay([True] * 93, bets)
    assert clean_reviews_to_promote(ready, policy) == 0


def test_out_of_reach_is_none() -> None:
    """A precision that clean reviews cannot lift far enough within the cap gives None, as stepping does."""
    policy = Policy(evidence=EvidenceMethod.POINT, promote_min_precision=1.0, rollback_below_precision=0.9)
    r = EProcess().replay([False], bets_of(policy))
    assert clean_reviews_to_promote(r, policy) is None
    assert stepped(r, policy) is None
