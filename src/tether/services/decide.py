"""decide: resolve each decision's mode at the gate and record it, in one transaction."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from tether.domain.errors import BadInput, ReplayConflict, TooLarge
from tether.domain.gate import safe_answer
from tether.domain.inputs import parse_decision
from tether.domain.model import Answer, DecisionIn
from tether.services.context import Context
from tether.services.gate import view_in
from tether.store.sql import Tx

MAX_BATCH = 10_000


@dataclass(frozen=True)
class DecisionAnswer:
    decision_id: str
    answer: Answer

    def to_dict(self) -> dict[str, Any]:
        a = self.answer
        out: dict[str, Any] = {
            "decision_id": self.decision_id,
            "mode": a.mode.value,
            "execute": a.execute,
            "slice_ids": list(a.slice_ids),
            "reason": a.reason,
        }
        if a.kill_switch_id is not None:
            out["kill_switch_id"] = a.kill_switch_id
        return out


def parse_batch(items: list[Any], ctx: Context) -> list[DecisionIn]:
    """Validate every item first: a batch is all or nothing; errors carry the item's index."""
    if len(items) > MAX_BATCH:
        raise TooLarge(f"batch of {len(items)} decisions is over the limit of {MAX_BATCH}")
    parsed: list[DecisionIn] = []
    first_body: dict[str, str] = {}
    for index, item in enumerate(items):
        try:
            decision = parse_decision(item, ctx.dims)
        except BadInput as exc:
            raise exc.with_index(index) from None
        earlier = first_body.setdefault(decision.decision_id, decision.body)
        if earlier != decision.body:
            raise ReplayConflict(
                f"item {index}: decision_id: {decision.decision_id!r} repeated with a different body", index
            )
        parsed.append(decision)
    return parsed


def decide(ctx: Context, items: list[Any]) -> list[DecisionAnswer]:
    """Answer and record a batch of decisions; a replayed decision_id returns its first answer."""
    batch = parse_batch(items, ctx)
    ctx.principal.require_tenants(d.tenant for d in batch)
    with ctx.db.transaction(write=True) as conn:
        tx = Tx(conn)
        known = tx.decisions_by_id([d.decision_id for d in batch])
        answers: dict[str, Answer] = {}
        fresh: list[tuple[DecisionIn, Answer]] = []
        view = view_in(ctx, tx)
        now = ctx.clock.now()
        for index, d in enumerate(batch):
            stored = known.get(d.decision_id)
            if stored is not None:
                if stored.body != d.body:
                    raise ReplayConflict(
                        f"item {index}: decision_id: {d.decision_id!r} was recorded with a different body",
                        index,
                    )
                answers[d.decision_id] = stored.answer
            elif d.decision_id not in answers:
                gate_answer = safe_answer(
                    view, d.alert, fresh_at=now, now=now, max_staleness=ctx.max_staleness
                )
                answer = gate_answer.for_verdict(d.verdict)
                answers[d.decision_id] = answer
                fresh.append((d, answer))
        _record(tx, fresh, now)
    return [DecisionAnswer(d.decision_id, answers[d.decision_id]) for d in batch]


def _record(tx: Tx, fresh: list[tuple[DecisionIn, Answer]], now: Any) -> None:
    rows = [
        {
            "decision_id": d.decision_id,
            "alert_id": d.alert_id,
            "tenant": d.tenant,
            "dims": json.dumps(d.alert, sort_keys=True),
            "verdict": d.verdict.value,
            "confidence": d.confidence,
            "model_version": d.model_version,
            "decided_at": d.decided_at,
            "recorded_at": now,
            "body": d.body,
            "mode": a.mode.value,
            "execute": a.execute,
            "slice_ids": json.dumps(list(a.slice_ids)),
            "reason": a.reason,
            "kill_switch_id": a.kill_switch_id,
        }
        for d, a in fresh
    ]
    pks = tx.insert_decisions(rows)
    grants: list[dict[str, Any]] = []
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for pk, (_, answer) in zip(pks, fresh, strict=True):
        for slice_id, attempt in answer.granted:
            grants.append(
                {"decision_pk": pk, "slice_id": slice_id, "attempt": attempt, "executed": answer.execute}
            )
            counts[slice_id][0] += 1
            counts[slice_id][1] += int(answer.execute)
    tx.insert_grants(grants)
    tx.add_decision_counts({k: (v[0], v[1]) for k, v in counts.items()})
