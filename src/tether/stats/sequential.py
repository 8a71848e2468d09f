"""Two betting e-processes over reviews (STATISTICS.md), and Wald's SPRT as the third method."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tether.domain.frozen import quick_init


@dataclass(frozen=True)
class Bets:
    """The thresholds and prior that the e-processes bet with."""

    rollback_at: float = 0.95
    promote_at: float = 0.98
    prior_a: float = 19
    prior_b: float = 1


@quick_init
@dataclass(frozen=True)
class EProcess:
    """Running state of one slice attempt: reviews so far and the two log-capitals.

    `log_e_rb` bets against "precision >= promote_at" (grounds for rollback);
    `log_e_pr` bets against "precision <= rollback_at" (grounds for promotion).
    """

    correct: int = 0
    incorrect: int = 0
    log_e_rb: float = 0.0
    log_e_pr: float = 0.0

    @property
    def reviews(self) -> int:
        return self.correct + self.incorrect

    @property
    def p_hat(self) -> float | None:
        return self.correct / self.reviews if self.reviews else None

    def update(self, correct: bool, bets: Bets) -> EProcess:
        """The state after one more review, in arrival order."""
        x = 1.0 if correct else 0.0
        mu = (bets.prior_a + self.correct) / (bets.prior_a + bets.prior_b + self.reviews)
        m = bets.promote_at
        lam = min((mu - m) / (m * (1 - m)), 0.0) if 0 < m < 1 else 0.0
        log_rb = self.log_e_rb + math.log1p(lam * (x - m))
        m = bets.rollback_at
        lam = max((mu - m) / (m * (1 - m)), 0.0) if 0 < m < 1 else 0.0
        log_pr = self.log_e_pr + math.log1p(lam * (x - m))
        return EProcess(self.correct + int(correct), self.incorrect + int(not correct), log_rb, log_pr)

    def replay(self, stream: list[bool], bets: Bets) -> EProcess:
        state = self
        for x in stream:
            state = state.update(x, bets)
        return state


def crossed(log_capital: float, alpha: float) -> bool:
    """True when the capital has reached 1/alpha (Ville's inequality bounds this by alpha under H0)."""
    return log_capital >= math.log(1 / alpha) - 1e-12


def sprt_llr(correct: int, incorrect: int, bets: Bets) -> float:
    """Wald's log-likelihood ratio of p = promote_at against p = rollback_at."""
    p1, p0 = bets.promote_at, bets.rollback_at
    if not (0 < p0 < 1 and 0 < p1 < 1):
        return 0.0
    return correct * math.log(p1 / p0) + incorrect * math.log((1 - p1) / (1 - p0))


def sprt_bounds(alpha_promote: float, alpha_rollback: float) -> tuple[float, float]:
    """(lower, upper): at or below lower, accept p = rollback_at; at or above upper, accept promote_at."""
    return math.log(alpha_rollback / (1 - alpha_promote)), math.log((1 - alpha_rollback) / alpha_promote)
