"""Confidence intervals for a proportion: Wilson (fixed n) and the beta-binomial confidence sequence."""

from __future__ import annotations

import math

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval; None when there is no observation."""
    if n <= 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def beta_binomial_cs(
    successes: int, failures: int, a: float, b: float, alpha: float = 0.05
) -> tuple[float, float] | None:
    """Robbins' beta-binomial mixture confidence sequence: {p : mixture wealth against p < 1/alpha}.

    Valid at every n simultaneously, so it stays honest however often it is looked at.
    """
    if successes + failures == 0:
        return None
    log_mix = _log_beta(a + successes, b + failures) - _log_beta(a, b)
    threshold = math.log(1 / alpha)

    def inside(p: float) -> bool:
        log_lik = (successes * math.log(p) if successes else 0.0) + (
            failures * math.log1p(-p) if failures else 0.0
        )
        return log_mix - log_lik < threshold

    centre = successes / (successes + failures)
    centre = min(max(centre, 1e-12), 1 - 1e-12)
    return _edge(inside, centre, 0.0), _edge(inside, centre, 1.0)


def _edge(inside: object, centre: float, bound: float) -> float:
    """Bisect between the centre (inside) and a bound for the interval's edge."""
    assert callable(inside)
    probe = min(max(bound, 1e-15), 1 - 1e-15)
    if inside(probe):
        return bound
    lo, hi = centre, probe
    for _ in range(60):
        mid = (lo + hi) / 2
        if inside(mid):
            lo = mid
        else:
            hi = mid
    return lo
