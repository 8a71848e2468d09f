"""The simulated world's ground truth: how the agent behaves on each kind of alert, day by day."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

from tether.domain.scope import Scope
from tether.sim.scenario import Scenario


@dataclass(frozen=True)
class Behaviour:
    close_rate: float
    close_precision: float
    benign_share_of_errors: float


@dataclass(frozen=True)
class Kind:
    """One combination of dimensions and its share of a tenant's alerts."""

    alert: tuple[tuple[str, str], ...]
    weight: float

    def as_dict(self) -> dict[str, str]:
        return dict(self.alert)


def behaviour(scenario: Scenario, alert: dict[str, str], day: int) -> Behaviour:
    """The agent's behaviour on an alert on a day: defaults, then each matching override in order."""
    agent = scenario.agent
    rate, precision, benign = agent.close_rate, agent.close_precision, agent.benign_share_of_errors
    for o in agent.overrides:
        if day >= o.from_day and all(alert.get(k) == v for k, v in o.where.items()):
            rate = o.close_rate if o.close_rate is not None else rate
            precision = o.close_precision if o.close_precision is not None else precision
            benign = o.benign_share_of_errors if o.benign_share_of_errors is not None else benign
    return Behaviour(rate, precision, benign)


def kinds(scenario: Scenario, day: int) -> list[Kind]:
    """Every alert kind of the day with its expected alerts per day."""
    out = []
    for tenant in scenario.tenants:
        if day < tenant.from_day:
            continue
        for fam, src, (band, band_share) in itertools.product(
            scenario.rule_families, scenario.data_sources, scenario.severity.items()
        ):
            alert = (
                ("tenant", tenant.name),
                ("severity", band),
                ("rule_family", fam.name),
                ("data_source", src.name),
            )
            out.append(Kind(alert, tenant.alerts_per_day * fam.share * src.share * band_share))
    return out


def true_precision(scenario: Scenario, scope: Scope, day: int) -> float | None:
    """The expected precision of the agent's closes on a scope's alerts that day (None: no closes)."""
    closes = correct = 0.0
    for kind in kinds(scenario, day):
        alert = kind.as_dict()
        if not scope.matches(alert):
            continue
        b = behaviour(scenario, alert, day)
        closes += kind.weight * b.close_rate
        correct += kind.weight * b.close_rate * b.close_precision
    return correct / closes if closes else None


def pick(rng: random.Random, shares: list[tuple[str, float]]) -> str:
    """A name drawn by share."""
    x = rng.random()
    for name, share in shares:
        if x < share:
            return name
        x -= share
    return shares[-1][0]
