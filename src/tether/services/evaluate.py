"""evaluate: promote, roll back or hold each slice in canary or active; recompute checks the caches."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from tether.domain.audit import EventType
from tether.domain.errors import Fenced
from tether.domain.evidence import Action, judge
from tether.domain.model import LIVE_STATES, Counters, Slice
from tether.domain.policy import Policy
from tether.services.context import Context, global_policy
from tether.services.lifecycle import (
    effective_policy,
    emit,
    note_dry_run,
    promote_in,
    recount,
    roll_back_in,
    snapshot,
)
from tether.store.engine import retry_transient
from tether.store.sql import Tx


@dataclass(frozen=True)
class EvaluationResult:
    results: list[dict[str, Any]]
    differences: list[dict[str, Any]] = field(default_factory=list)
    recomputed: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"results": self.results}
        if self.recomputed:
            out["recompute"] = {"differences": self.differences, "ok": not self.differences}
        return out


def _same(a: Counters, b: Counters) -> bool:
    ra, rb = a.reviews, b.reviews
    return (
        (a.decisions, a.executed, a.missed_tp, ra.correct, ra.incorrect)
        == (b.decisions, b.executed, b.missed_tp, rb.correct, rb.incorrect)
        and math.isclose(ra.log_e_rb, rb.log_e_rb, rel_tol=1e-9, abs_tol=1e-9)
        and math.isclose(ra.log_e_pr, rb.log_e_pr, rel_tol=1e-9, abs_tol=1e-9)
    )


def _counters_dict(c: Counters) -> dict[str, Any]:
    return {
        "decisions": c.decisions,
        "executed": c.executed,
        "missed_tp": c.missed_tp,
        "correct": c.reviews.correct,
        "incorrect": c.reviews.incorrect,
        "log_e_rb": c.reviews.log_e_rb,
        "log_e_pr": c.reviews.log_e_pr,
    }


def recompute_in(tx: Tx) -> list[dict[str, Any]]:
    """Rebuild every slice's counters from decisions and outcomes; report and repair any difference."""
    differences = []
    for s in tx.slices(lock=True):
        rebuilt = recount(tx, s, effective_policy(tx, s))
        if not _same(s.counters, rebuilt.counters):
            differences.append(
                {
                    "slice_id": s.id,
                    "cached": _counters_dict(s.counters),
                    "rebuilt": _counters_dict(rebuilt.counters),
                }
            )
            tx.save_slice(rebuilt)
    return differences


class _Policies:
    """Each slice's policy in one cycle: the global policy read once, merged once per distinct override."""

    def __init__(self, tx: Tx) -> None:
        self.base = global_policy(tx)
        self.merged: dict[str, Policy] = {}

    def of(self, s: Slice) -> Policy:
        key = json.dumps(s.policy_overrides, sort_keys=True)
        found = self.merged.get(key)
        if found is None:
            found = self.merged[key] = self.base.merged(s.policy_overrides)
        return found


def _act(ctx: Context, tx: Tx, s: Slice, policy: Policy) -> dict[str, Any]:
    verdict = judge(s, policy, ctx.clock.now())
    result = {
        "slice_id": s.id,
        "scope": s.scope.text,
        "action": verdict.action.value,
        "reasons": list(verdict.reasons),
    }
    if policy.dry_run and verdict.action in (Action.PROMOTE, Action.ROLLBACK):
        note_dry_run(ctx, tx, s, policy, verdict)
        return {**result, "dry_run": True}
    if verdict.action is Action.PROMOTE:
        promote_in(ctx, tx, s, policy, verdict, forced=False)
    elif verdict.action is Action.ROLLBACK:
        roll_back_in(ctx, tx, s, policy, verdict)
    elif verdict.action is Action.HOLD and s.held_at is None:
        held = dataclasses.replace(s, held_at=ctx.clock.now())
        tx.save_slice(held)
        emit(
            ctx,
            tx,
            EventType.CANARY_HELD,
            held,
            {"reasons": list(verdict.reasons), **snapshot(s, policy, ctx.clock.now())},
        )
    return result


@retry_transient
def evaluate(ctx: Context, recompute: bool = False, epoch: int | None = None) -> EvaluationResult:
    """One evaluation cycle, in one transaction: a result per slice that was in canary or active.

    `epoch` is the evaluator's fencing token (services.leader): when another replica has taken over since,
    the cycle is refused and changes nothing.
    """
    with ctx.db.transaction(write=True) as conn:
        tx = Tx(conn)
        if epoch is not None and (current := tx.epoch()) != epoch:
            raise Fenced(f"evaluator epoch {epoch} was superseded by epoch {current}")
        differences = recompute_in(tx) if recompute else []
        live = [s for s in tx.slices(lock=True) if s.state in LIVE_STATES]
        policies = _Policies(tx)
        results = [_act(ctx, tx, s, policies.of(s)) for s in live]
    return EvaluationResult(results, differences, recompute)
