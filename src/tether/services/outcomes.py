"""record_outcomes: store what alerts really were and check rollback at once (DESIGN §4, §5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tether.domain.errors import BadInput, TooLarge
from tether.domain.evidence import REVIEW_SOURCE, bets_of, check_rollback, counts_as_review, review_value
from tether.domain.inputs import parse_outcome
from tether.domain.model import LIVE_STATES, Counters, Disposition, KillSwitch, OutcomeIn, Slice
from tether.domain.policy import Policy
from tether.services.context import Context
from tether.services.decide import MAX_BATCH
from tether.services.lifecycle import (
    effective_policy,
    note_dry_run,
    note_rollbacks_in_gate,
    recount,
    roll_back_in,
)
from tether.store.engine import retry_transient
from tether.store.sql import Grant, StoredDecision, Tx


@dataclass(frozen=True)
class OutcomesResult:
    accepted: int
    actions: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "actions": self.actions}


@dataclass(frozen=True)
class _Latest:
    """A decision's latest outcome as the batch is applied in order."""

    disposition: str | None
    source: str | None
    seq: int | None
    first_review_seq: int | None


def parse_batch(items: list[Any]) -> list[OutcomeIn]:
    if len(items) > MAX_BATCH:
        raise TooLarge(f"batch of {len(items)} outcomes is over the limit of {MAX_BATCH}")
    parsed = []
    for index, item in enumerate(items):
        try:
            parsed.append(parse_outcome(item))
        except BadInput as exc:
            raise exc.with_index(index) from None
    return parsed


def _resolve(tx: Tx, batch: list[OutcomeIn]) -> list[StoredDecision]:
    """The decision each outcome names; an unknown one refuses the whole batch."""
    # Locked: two replicas given outcomes for one decision count them one after the other, never both
    # from the same "before".
    by_id = tx.decisions_by_id([o.decision_id for o in batch if o.decision_id], lock=True)
    found: list[StoredDecision] = []
    for index, o in enumerate(batch):
        if o.decision_id is not None:
            decision = by_id.get(o.decision_id)
            if decision is None:
                raise BadInput.at("decision_id", f"no recorded decision {o.decision_id!r}", index)
        else:
            assert o.tenant is not None and o.alert_id is not None
            decision = tx.latest_decision_for_alert(o.tenant, o.alert_id, lock=True)
            if decision is None:
                raise BadInput.at("alert_id", f"no recorded decision for {o.tenant}/{o.alert_id}", index)
        found.append(decision)
    return found


class _Batch:
    """The slices touched by one batch of outcomes, updated in memory in batch order and saved once."""

    def __init__(self, ctx: Context, tx: Tx, grants: dict[int, list[Grant]]) -> None:
        self.ctx, self.tx, self.grants = ctx, tx, grants
        self.slices: dict[str, Slice] = {}
        self.policies: dict[str, Policy] = {}
        self.actions: list[dict[str, Any]] = []
        self.rolled: list[tuple[Slice, Policy, KillSwitch]] = []

    def slice(self, slice_id: str) -> tuple[Slice, Policy]:
        if slice_id not in self.slices:
            s = self.tx.slice(slice_id, lock=True)
            assert s is not None
            self.slices[slice_id] = s
            self.policies[slice_id] = effective_policy(self.tx, s)
        return self.slices[slice_id], self.policies[slice_id]

    def apply(self, index: int, decision: StoredDecision, before: _Latest, after: _Latest) -> None:
        """Count one outcome for every slice its decision was evidence for; roll back at once if due."""
        for grant in self.grants.get(decision.pk, []):
            if not grant.executed:
                continue
            s, policy = self.slice(grant.slice_id)
            if s.attempt != grant.attempt:
                continue  # evidence of an earlier attempt
            s = _count(self.tx, s, policy, (before, after), decision.review)
            self.slices[s.id] = s
            judgement = check_rollback(s, policy) if s.state in LIVE_STATES else None
            if judgement is None:
                continue
            if policy.dry_run:
                self.slices[s.id] = note_dry_run(self.ctx, self.tx, s, policy, judgement)
                continue
            s, kill = roll_back_in(self.ctx, self.tx, s, policy, judgement)
            self.slices[s.id] = s
            self.rolled.append((s, policy, kill))
            self.actions.append(
                {
                    "action": "rollback",
                    "slice_id": s.id,
                    "scope": s.scope.text,
                    "kill_switch_id": kill.id,
                    "trigger": judgement.trigger.value if judgement.trigger else None,
                    "reasons": list(judgement.reasons),
                    "index": index,
                }
            )

    def save(self) -> None:
        for s in self.slices.values():
            self.tx.save_slice(s)


# Each disposition's text, read once: an enum's .value is a Python-level descriptor, and adds up per outcome.
_TEXT = {d: d.value for d in Disposition}
_TRUE_POSITIVE = Disposition.TRUE_POSITIVE.value


def _count(tx: Tx, s: Slice, policy: Policy, change: tuple[_Latest, _Latest], sampled: bool) -> Slice:
    """The slice's counters after a decision's latest outcome changed from `before` to `after`."""
    before, after = change
    tp = _TRUE_POSITIVE
    missed = s.counters.missed_tp - (before.disposition == tp) + (after.disposition == tp)
    old = review_value(before.disposition, before.source)
    new = review_value(after.disposition, after.source)
    c = s.counters
    if not counts_as_review(sampled, policy):  # shown apart, never in the precision
        other = c.other_reviews - (old is not None) + (new is not None)
        return s.with_counters(Counters(c.decisions, c.executed, missed, c.reviews, other))
    if old is None and new is not None and before.first_review_seq is None:
        reviews = c.reviews.update(new, bets_of(policy))
        return s.with_counters(Counters(c.decisions, c.executed, missed, reviews, c.other_reviews))
    if old != new or (new is not None and before.first_review_seq is None):
        # A correction replaces a value in place: replay the stream up to this outcome.
        return recount(tx, s, policy, upto_seq=after.seq)
    if missed == c.missed_tp:
        return s  # nothing this slice counts changed
    return s.with_counters(Counters(c.decisions, c.executed, missed, c.reviews, c.other_reviews))


@retry_transient
def record_outcomes(ctx: Context, items: list[Any]) -> OutcomesResult:
    """Record a batch of outcomes, all or nothing; rollbacks they trigger happen in the same transaction."""
    batch = parse_batch(items)
    now = ctx.clock.now()
    with ctx.db.transaction(write=True) as conn:
        tx = Tx(conn)
        decisions = _resolve(tx, batch)
        ctx.principal.require_tenants(d.tenant for d in decisions)
        seqs = tx.insert_outcomes(
            {
                "decision_pk": [d.pk for d in decisions],
                "disposition": [_TEXT[o.disposition] for o in batch],
                "source": [o.source for o in batch],
                "reviewer": [o.reviewer for o in batch],
                "observed_at": [o.observed_at for o in batch],
                "recorded_at": [now] * len(batch),
            }
        )
        work = _Batch(ctx, tx, tx.grants_of([d.pk for d in decisions if d.answer.execute]))
        latest: dict[int, _Latest] = {}
        for index, (o, d, seq) in enumerate(zip(batch, decisions, seqs, strict=True)):
            before = latest.get(d.pk) or _Latest(d.out_disposition, d.out_source, None, d.first_review_seq)
            first_review = seq if o.source == REVIEW_SOURCE and before.first_review_seq is None else None
            after = _Latest(_TEXT[o.disposition], o.source, seq, first_review or before.first_review_seq)
            latest[d.pk] = after
            if d.answer.execute:
                work.apply(index, d, before, after)
        tx.cache_latest_outcomes(
            [
                {
                    "b_pk": pk,
                    "b_disposition": x.disposition,
                    "b_source": x.source,
                    "b_seq": x.seq,
                    "b_first_review_seq": x.first_review_seq,
                }
                for pk, x in latest.items()
            ]
        )
        work.save()
        version = tx.version() if work.rolled else 0
    if work.rolled:  # committed: this process's gate answers `killed` without rebuilding its view
        note_rollbacks_in_gate(ctx, version, work.rolled)
    return OutcomesResult(len(batch), work.actions)
