"""Runs a scenario hour by hour through Tether's real services in virtual time; deterministic per seed."""

from __future__ import annotations

import contextlib
import heapq
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tether.bootstrap import build
from tether.config import Settings
from tether.domain.errors import Refused
from tether.domain.model import SliceState
from tether.domain.scope import Scope, parse_scope
from tether.domain.timefmt import iso
from tether.services import decide, evaluate, lifecycle, outcomes, policy, queries, setup
from tether.services.context import Context, FixedClock
from tether.sim.scenario import Scenario
from tether.sim.truth import Behaviour, behaviour, pick

OPERATOR = "simulated operator"


@dataclass
class Alert:
    decision_id: str
    at: datetime
    dims: dict[str, str]
    verdict: str
    truth: str
    granted: tuple[str, ...] = ()  # slices whose autonomy executed it


@dataclass
class SliceTally:
    """What happened to one slice's alerts, as only the simulator (knowing the truth) can count."""

    alerts: int = 0
    executed: int = 0
    reviews_used: int = 0
    harm_at: list[datetime] = field(default_factory=list)  # decided_at of executed true-positive closes
    first_missed_report: datetime | None = None
    executed_tp_by_attempt: dict[int, int] = field(default_factory=lambda: defaultdict(int))


@dataclass
class RunLog:
    """Everything the summary needs, gathered while the run goes."""

    alerts: int = 0
    decisions: int = 0
    executed: int = 0
    reviews_used: int = 0
    per_day: list[dict[str, int]] = field(default_factory=list)
    tallies: dict[str, SliceTally] = field(default_factory=lambda: defaultdict(SliceTally))
    snapshots: list[dict[str, Any]] = field(default_factory=list)
    harm: list[tuple[datetime, tuple[str, ...]]] = field(default_factory=list)


class Simulation:
    """One run of a scenario on one database."""

    def __init__(self, scenario: Scenario, db_url: str, seed: int, evidence: str | None = None) -> None:
        self.scenario, self.seed = scenario, seed
        self.rng = random.Random(seed)
        self.clock = FixedClock(scenario.start)
        self.ctx: Context = build(
            Settings(database_url=db_url, actor=OPERATOR, sqlite_synchronous="NORMAL"),
            clock=self.clock,
            rng=random.Random(seed + 1),
        )
        self.evidence = evidence
        self.log = RunLog()
        self._pending: list[tuple[datetime, int, dict[str, Any]]] = []
        self._counter = 0
        self._alerts: dict[str, Alert] = {}
        self._behaviours: dict[tuple[tuple[str, str], ...], Behaviour] = {}
        self.scopes: dict[str, Scope] = {}
        self._carry: dict[str, float] = defaultdict(float)

    # setup -----------------------------------------------------------------
    def prepare(self) -> None:
        setup.init(self.ctx)
        changes = dict(self.scenario.policy)
        if self.evidence is not None:
            changes["evidence"] = self.evidence
        if changes:
            policy.set_policy(self.ctx, changes)
        for text in self.scenario.slices:
            self._ensure_slice(text)

    def _ensure_slice(self, text: str) -> str:
        scope = parse_scope(text, self.ctx.dims)
        for sid, known in self.scopes.items():
            if known == scope:
                return sid
        created = lifecycle.create_slice(self.ctx, scope.text)
        self.scopes[created.id] = scope
        return created.id

    # traffic ---------------------------------------------------------------
    def _behaviour(self, dims: dict[str, str], day: int) -> Behaviour:
        key = tuple(sorted(dims.items()))
        found = self._behaviours.get(key)
        if found is None:
            found = behaviour(self.scenario, dims, day)
            self._behaviours[key] = found
        return found

    def _alerts_for_hour(self, day: int, hour: int, start: datetime) -> list[Alert]:
        s, rng = self.scenario, self.rng
        families = [(f.name, f.share) for f in s.rule_families]
        sources = [(d.name, d.share) for d in s.data_sources]
        bands = list(s.severity.items())
        made: list[Alert] = []
        for tenant in s.tenants:
            if day < tenant.from_day:
                continue
            self._carry[tenant.name] += tenant.alerts_per_day / 24
            count = int(self._carry[tenant.name])
            self._carry[tenant.name] -= count
            for n in range(count):
                dims = {
                    "tenant": tenant.name,
                    "severity": pick(rng, bands),
                    "rule_family": pick(rng, families),
                    "data_source": pick(rng, sources),
                }
                b = self._behaviour(dims, day)
                verdict = "close" if rng.random() < b.close_rate else "escalate"
                at = start + timedelta(seconds=rng.uniform(0, 3600))
                did = f"{tenant.name}-{day}-{hour}-{n}"
                made.append(Alert(did, at, dims, verdict, self._truth(verdict, b)))
        made.sort(key=lambda a: a.at)
        return made

    def _truth(self, verdict: str, b: Behaviour) -> str:
        x = self.rng.random()
        if verdict == "escalate":
            return "false_positive" if x < 0.1 else ("benign_positive" if x < 0.55 else "true_positive")
        if x < b.close_precision:
            return "false_positive"
        return "benign_positive" if self.rng.random() < b.benign_share_of_errors else "true_positive"

    def _schedule(self, due: datetime, body: dict[str, Any]) -> None:
        self._counter += 1
        heapq.heappush(self._pending, (due, self._counter, body))

    def _delay(self, bounds: tuple[float, float]) -> timedelta:
        return timedelta(hours=self.rng.uniform(*bounds))

    def _route(self, alert: Alert, answer: decide.DecisionAnswer) -> None:
        """Who learns the truth about an alert, and when: analysts, or a later escalation."""
        s = self.scenario
        if not answer.answer.execute:
            if s.reviews.shadow_analysts_decide:
                self._schedule(alert.at + self._delay(s.reviews.delay_hours), self._outcome(alert, "review"))
            return
        follow = s.reviews.follow_sampling
        asked = answer.answer.review if follow else self.rng.random() < s.reviews.review_rate
        if asked:
            self._schedule(alert.at + self._delay(s.reviews.delay_hours), self._outcome(alert, "review"))
            self.log.reviews_used += 1
            for sid in answer.answer.slice_ids:
                self.log.tallies[sid].reviews_used += 1
        elif alert.truth == "true_positive" and self.rng.random() < s.escalations.probability:
            self._schedule(
                alert.at + self._delay(s.escalations.delay_hours), self._outcome(alert, "escalation")
            )

    @staticmethod
    def _outcome(alert: Alert, source: str) -> dict[str, Any]:
        return {"decision_id": alert.decision_id, "disposition": alert.truth, "source": source}

    def _decide(self, alerts: list[Alert], today: dict[str, int]) -> None:
        bodies = [
            {
                "decision_id": a.decision_id,
                "alert_id": "A-" + a.decision_id,
                **a.dims,
                "verdict": a.verdict,
                "decided_at": iso(a.at),
                "model_version": "sim-agent",
            }
            for a in alerts
        ]
        answers = decide.decide(self.ctx, bodies) if bodies else []
        attempts = (
            {s.id: s.attempt for s in self._live_slices()} if any(a.answer.execute for a in answers) else {}
        )
        executed = 0
        for alert, answer in zip(alerts, answers, strict=True):
            self._alerts[alert.decision_id] = alert
            for sid, scope in self.scopes.items():
                if scope.matches(alert.dims):
                    self.log.tallies[sid].alerts += 1
            if answer.answer.execute:
                executed += 1
                alert.granted = answer.answer.slice_ids
                for sid in answer.answer.slice_ids:
                    tally = self.log.tallies[sid]
                    tally.executed += 1
                    if alert.truth == "true_positive":
                        tally.harm_at.append(alert.at)
                        tally.executed_tp_by_attempt[attempts.get(sid, 0)] += 1
                if alert.truth == "true_positive":
                    self.log.harm.append((alert.at, alert.granted))
            self._route(alert, answer)
        self.log.decisions += len(answers)
        self.log.executed += executed
        today["executed"] += executed

    def _live_slices(self) -> list[Any]:
        from tether.store.sql import Tx

        with self.ctx.db.transaction(write=False) as conn:
            return Tx(conn).slices()

    def _flush(self, until: datetime) -> None:
        """Record every outcome due by `until`, in the order they became known."""
        batch: list[dict[str, Any]] = []
        while self._pending and self._pending[0][0] <= until:
            due, _, body = heapq.heappop(self._pending)
            batch.append({**body, "observed_at": iso(due)})
            alert = self._alerts[body["decision_id"]]
            if alert.truth == "true_positive":
                for sid in alert.granted:  # a missed TP of this slice is now known
                    tally = self.log.tallies[sid]
                    tally.first_missed_report = tally.first_missed_report or due
        for start in range(0, len(batch), decide.MAX_BATCH):
            outcomes.record_outcomes(self.ctx, batch[start : start + decide.MAX_BATCH])

    # operator --------------------------------------------------------------
    def _operate(self, day: int) -> None:
        op = self.scenario.operator
        now = self.clock.now()
        for s in self._live_slices():
            if s.state is SliceState.ROLLED_BACK and op.reset_after_rollback_days is not None:
                assert s.rolled_back_at is not None
                if now - s.rolled_back_at >= timedelta(days=op.reset_after_rollback_days):
                    lifecycle.reset(
                        self.ctx,
                        s.id,
                        f"scenario: reset {op.reset_after_rollback_days:g} days after rollback",
                    )
        if op.start_canary == "when_ready":
            for s in self._live_slices():
                if s.state is SliceState.SHADOW:
                    with contextlib.suppress(Refused):  # not ready or cooling down: try again tomorrow
                        lifecycle.start_canary(self.ctx, s.id, if_ready=True)
            return
        for entry in op.start_canary:
            if entry.day == day:
                sid = self._ensure_slice(entry.scope)
                with contextlib.suppress(Refused):  # already live, or cooling down
                    lifecycle.start_canary(
                        self.ctx, sid, signed_off_by=OPERATOR, reason=f"scenario start on day {day}"
                    )

    # the run ---------------------------------------------------------------
    def run(self, on_day: Callable[[int], None] | None = None) -> RunLog:
        self.prepare()
        for day in range(self.scenario.days):
            self._behaviours.clear()
            day_start = self.scenario.start + timedelta(days=day)
            self.clock.moment = day_start
            self._operate(day)
            today = {"alerts": 0, "executed": 0}
            for hour in range(24):
                start = day_start + timedelta(hours=hour)
                self.clock.moment = start
                alerts = self._alerts_for_hour(day, hour, start)
                today["alerts"] += len(alerts)
                self._decide(alerts, today)
                self.clock.moment = start + timedelta(hours=1)
                self._flush(self.clock.moment)
                evaluate.evaluate(self.ctx)
            self.log.alerts += today["alerts"]
            self.log.per_day.append({"day": day, "alerts": today["alerts"], "executed": today["executed"]})
            self.log.snapshots.append({"day": day + 1, "slices": queries.evidence_snapshots(self.ctx)})
            if on_day is not None:
                on_day(day)
        return self.log
