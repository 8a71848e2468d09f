"""decide: resolve each decision's mode at the gate and record it, in one transaction."""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tether.domain.errors import BadInput, ReplayConflict, TooLarge
from tether.domain.frozen import quick_init
from tether.domain.gate import safe_answer, sampled_for_review
from tether.domain.inputs import parse_decision
from tether.domain.model import Answer, DecisionIn, Slice, Verdict
from tether.domain.policy import ModelChange
from tether.services.context import Context
from tether.services.gate import view_in
from tether.services.lifecycle import effective_policy, restart_in
from tether.store.engine import retry_transient
from tether.store.sql import Tx

MAX_BATCH = 10_000


@quick_init
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
            "review": a.review,
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


class _Resolver:
    """Answers one batch's new decisions in order, restarting slices whose model changed."""

    def __init__(self, ctx: Context, tx: Tx) -> None:
        self.ctx, self.tx = ctx, tx
        self.now = ctx.clock.now()
        self.view = view_in(ctx, tx)
        self.slices: dict[str, Slice] = {}
        # an answer's variants (by verdict; sampled for review), made once per batch: (answer, variant)
        self.variants: dict[tuple[int, object], tuple[Answer, Answer]] = {}

    def answer(self, d: DecisionIn) -> Answer:
        answer = self._ask(d)
        if answer.granted and d.model_version is not None and self._note_model(answer, d.model_version):
            self.view = view_in(self.ctx, self.tx)  # a slice restarted: answer on the new attempt
            answer = self._ask(d)
        if answer.execute and sampled_for_review(d.decision_id, answer.review_rate):
            return self._variant(answer, True, lambda a: dataclasses.replace(a, review=True))
        return answer

    def _ask(self, d: DecisionIn) -> Answer:
        now = self.now
        answer = safe_answer(self.view, d.alert, fresh_at=now, now=now, max_staleness=self.ctx.max_staleness)
        if answer.execute and d.verdict is not Verdict.CLOSE:
            return self._variant(answer, d.verdict, lambda a: a.for_verdict(d.verdict))
        return answer

    def _variant(self, answer: Answer, kind: object, make: Callable[[Answer], Answer]) -> Answer:
        known = self.variants.get((id(answer), kind))
        if known is None or known[0] is not answer:  # the identity check: ids are reused once freed
            known = self.variants[(id(answer), kind)] = (answer, make(answer))
        return known[1]

    def _note_model(self, answer: Answer, model_version: str) -> bool:
        """Record the attempt's model on first sight; True when a new model restarted a slice."""
        restarted = False
        for slice_id, _attempt in answer.granted:
            s = self.slices.get(slice_id) or self.tx.slice(slice_id, lock=True)
            assert s is not None
            if s.model_version is None:
                s = dataclasses.replace(s, model_version=model_version)
                self.tx.set_model_version(s.id, model_version)
            elif s.model_version != model_version:
                policy = effective_policy(self.tx, s)
                if policy.model_change is ModelChange.RESTART:
                    s = restart_in(self.ctx, self.tx, s, policy, model_version)
                    restarted = True
            self.slices[slice_id] = s
        return restarted


@retry_transient
def decide(ctx: Context, items: list[Any]) -> list[DecisionAnswer]:
    """Answer and record a batch of decisions; a replayed decision_id returns its first answer."""
    batch = parse_batch(items, ctx)
    ctx.principal.require_tenants(d.tenant for d in batch)
    with ctx.db.transaction(write=True) as conn:
        answers, fresh = decide_in(ctx, Tx(conn), batch)
    observe(ctx, fresh)
    return answers


def decide_in(
    ctx: Context, tx: Tx, batch: list[DecisionIn]
) -> tuple[list[DecisionAnswer], list[tuple[DecisionIn, Answer]]]:
    """Answer and record a parsed batch inside an open transaction; the answers, and the new decisions."""
    known = tx.decisions_by_id([d.decision_id for d in batch])
    answers: dict[str, Answer] = {}
    fresh: list[tuple[DecisionIn, Answer]] = []
    resolver = _Resolver(ctx, tx)
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
            answer = resolver.answer(d)
            answers[d.decision_id] = answer
            fresh.append((d, answer))
    _record(tx, fresh, resolver.now)
    return [DecisionAnswer(d.decision_id, answers[d.decision_id]) for d in batch], fresh


def observe(ctx: Context, fresh: list[tuple[DecisionIn, Answer]]) -> None:
    """Count committed answers by mode, and the gate's failures, for the metrics."""
    modes: dict[str, int] = defaultdict(int)
    for _, answer in fresh:
        modes[answer.mode.value] += 1
        if answer.reason in ("stale", "error"):
            ctx.observer.gate_failed(answer.reason)
    for mode, n in modes.items():
        ctx.observer.answered(mode, n)


def _record(tx: Tx, fresh: list[tuple[DecisionIn, Answer]], now: Any) -> None:
    """Store the new decisions and their evidence rows, and add them to their slices' counters."""
    # Alerts and answers repeat within a batch (answers are cached per alert): encode each once.
    dims_json: dict[tuple[tuple[str, str], ...], str] = {}
    ids_json: dict[tuple[str, ...], str] = {}
    dims, slice_ids = [], []
    for d, a in fresh:
        alert_key = tuple(d.alert.items())
        text = dims_json.get(alert_key)
        if text is None:
            text = dims_json[alert_key] = json.dumps(d.alert, sort_keys=True)
        dims.append(text)
        ids = ids_json.get(a.slice_ids)
        if ids is None:
            ids = ids_json[a.slice_ids] = json.dumps(list(a.slice_ids))
        slice_ids.append(ids)
    decisions = [d for d, _ in fresh]
    answers = [a for _, a in fresh]
    pks = tx.insert_decisions(
        {
            "decision_id": [d.decision_id for d in decisions],
            "alert_id": [d.alert_id for d in decisions],
            "tenant": [d.tenant for d in decisions],
            "dims": dims,
            "verdict": [d.verdict.value for d in decisions],
            "confidence": [d.confidence for d in decisions],
            "model_version": [d.model_version for d in decisions],
            "decided_at": [d.decided_at for d in decisions],
            "recorded_at": [now] * len(fresh),
            "body": [d.body for d in decisions],
            "mode": [a.mode.value for a in answers],
            "execute": [a.execute for a in answers],
            "slice_ids": slice_ids,
            "reason": [a.reason for a in answers],
            "kill_switch_id": [a.kill_switch_id for a in answers],
            "review": [a.review for a in answers],
        }
    )
    grants: dict[str, list[Any]] = {"decision_pk": [], "slice_id": [], "attempt": [], "executed": []}
    counts: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
    for pk, answer in zip(pks, answers, strict=True):
        for slice_id, attempt in answer.granted:
            grants["decision_pk"].append(pk)
            grants["slice_id"].append(slice_id)
            grants["attempt"].append(attempt)
            grants["executed"].append(answer.execute)
            count = counts[(slice_id, attempt)]
            count[0] += 1
            count[1] += answer.execute
    tx.insert_grants(grants)
    # Per attempt: a slice restarted mid-batch counts only the decisions of its new attempt.
    tx.add_decision_counts({k: (v[0], v[1]) for k, v in counts.items()})
