"""`make demo`: a scripted SOC over ten virtual days, through the library, told as a short story."""

from __future__ import annotations

import random
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tether.bootstrap import build
from tether.config import Settings
from tether.domain.timefmt import iso
from tether.services import audit, decide, evaluate, lifecycle, outcomes, queries, setup
from tether.services.context import Context, FixedClock

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
ALERTS_PER_DAY = 160
FAMILIES = ("phishing", "impossible_travel", "dns_tunnel")


@dataclass
class Tenant:
    name: str
    close_precision: float
    missed_tp_on_day: int | None = None


TENANTS = (Tenant("acme", 0.998), Tenant("globex", 0.99, missed_tp_on_day=5))


def _truth(rng: random.Random, tenant: Tenant, verdict: str, day: int, first_close: bool) -> str:
    if verdict == "escalate":
        return "true_positive" if rng.random() < 0.5 else "benign_positive"
    if first_close and tenant.missed_tp_on_day == day:
        return "true_positive"
    return "false_positive" if rng.random() < tenant.close_precision else "benign_positive"


def _day(ctx: Context, clock: FixedClock, rng: random.Random, day: int, say: Any) -> None:
    """One virtual day: alerts decided through the gate, then analysts' and incidents' outcomes."""
    decisions: list[dict[str, Any]] = []
    truths: dict[str, str] = {}
    for tenant in TENANTS:
        first_close = True
        for n in range(ALERTS_PER_DAY):
            at = ctx.clock.now() + timedelta(minutes=n * 5)
            verdict = "close" if rng.random() < 0.7 else "escalate"
            did = f"{tenant.name}-{day}-{n}"
            decisions.append(
                {
                    "decision_id": did,
                    "alert_id": f"A-{did}",
                    "tenant": tenant.name,
                    "severity": rng.choice((10, 35, 55, 80)),
                    "rule_family": rng.choice(FAMILIES),
                    "data_source": rng.choice(("o365", "okta")),
                    "verdict": verdict,
                    "decided_at": iso(at),
                    "model_version": "triage-2026.03",
                }
            )
            truths[did] = _truth(rng, tenant, verdict, day, first_close and verdict == "close")
            first_close = first_close and verdict != "close"
    answers = decide.decide(ctx, decisions)
    clock.advance(timedelta(hours=12))
    reports = []
    for a in answers:
        truth = truths[a.decision_id]
        observed = iso(ctx.clock.now())
        if not a.answer.execute:  # shadow or killed: an analyst decides every alert
            reports.append(
                {
                    "decision_id": a.decision_id,
                    "disposition": truth,
                    "source": "review",
                    "observed_at": observed,
                }
            )
        elif truth == "true_positive":  # a closed real attack, found later by an incident
            reports.append(
                {
                    "decision_id": a.decision_id,
                    "disposition": truth,
                    "source": "incident",
                    "observed_at": observed,
                }
            )
        elif rng.random() < 0.3:  # analysts review a sample of what the agent closed
            reports.append(
                {
                    "decision_id": a.decision_id,
                    "disposition": truth,
                    "source": "review",
                    "observed_at": observed,
                }
            )
    result = outcomes.record_outcomes(ctx, reports)
    for action in result.actions:
        why = "; ".join(action["reasons"])
        say(day, f"ROLLBACK {action['scope']}: {why}; kill switch {action['kill_switch_id']}")
    executed = sum(a.answer.execute for a in answers)
    say(day, f"{len(answers)} alerts decided, {executed} closed by the agent alone, {len(reports)} outcomes")


def run(db_url: str, days: int = 10, seed: int = 7) -> int:
    """Run the scripted story; returns the exit status (0 when the audit trail verifies)."""
    clock = FixedClock(START)
    ctx = build(Settings(database_url=db_url, actor="demo-soc-lead"), clock=clock, rng=random.Random(seed))
    rng = random.Random(seed)
    setup.init(ctx)

    def say(day: int, text: str) -> None:
        print(f"day {day:>2}  {text}")

    ids = {t.name: lifecycle.create_slice(ctx, f"tenant={t.name}").id for t in TENANTS}
    lifecycle.set_slice_policy(ctx, ids["acme"], {"shadow_min_decisions": 100})
    lifecycle.set_slice_policy(ctx, ids["globex"], {"shadow_min_decisions": 100})
    say(0, "slices tenant=acme and tenant=globex created: every alert in shadow, analysts decide")
    for day in range(days + 1):
        if day == 2:
            for name, sid in ids.items():
                started = lifecycle.start_canary(ctx, sid, if_ready=True)
                shadow = queries.view_of(ctx, started)["shadow"]
                say(
                    day,
                    f"canary started for tenant={name} (go-live met: {shadow['with_outcome']} shadow "
                    f"decisions with an outcome, agreement {shadow['agreement']:.1%})",
                )
        _day(ctx, clock, rng, day, say)
        clock.moment = START + timedelta(days=day + 1)
        for r in evaluate.evaluate(ctx).results:
            if r["action"] != "continue":
                say(day, f"{r['action'].upper()} {r['scope']}: {'; '.join(r['reasons'])}")
    print()
    for view in queries.list_slices(ctx):
        ev = view["evidence"]
        print(
            f"{view['scope']:<16} {view['state']:<12} precision {ev['precision']:.3f} "
            f"on {ev['reviewed']} reviews, missed TPs {ev['missed_tp']}"
        )
    report = audit.verify(ctx)
    status = "verified" if report.ok else f"BROKEN at seq {report.bad_seq}"
    print(f"\naudit trail: {report.count} events, {status}; head {report.head_seq}:{report.head_hash[:16]}…")
    print("Try it yourself: `tether --db", db_url, "slice list` and `tether --db", db_url, "audit list`.")
    ctx.db.dispose()
    return 0 if report.ok else 1


def main() -> None:
    default = Path(tempfile.mkdtemp(prefix="tether-demo-")) / "demo.db"
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else default
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    sys.exit(run(f"sqlite:///{target}"))


if __name__ == "__main__":
    main()
