"""Slice lifecycle: create, per-slice policy, start canary, promote, roll back, reset (DESIGN §2)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

from tether.domain.audit import EventType
from tether.domain.errors import (
    BadInput,
    CriteriaNotMet,
    DuplicateScope,
    Forbidden,
    NotFound,
    refuse_unstorable,
    require_reason,
)
from tether.domain.evidence import Action, Judgement, Trigger, evidence_dict, rebuild_counters
from tether.domain.gate import GateView, key_of
from tether.domain.model import (
    Counters,
    KillSwitch,
    Slice,
    SliceState,
    Transition,
    new_attempt,
    require_transition,
)
from tether.domain.policy import Policy, check_fields
from tether.domain.scope import parse_scope
from tether.domain.shadow import ShadowEvidence, go_live_unmet, shadow_evidence
from tether.domain.views import kill_switch_dict
from tether.services.context import Context, global_policy
from tether.services.gate import gate_slice
from tether.store.engine import retry_transient
from tether.store.sql import EventSubject, Tx


def effective_policy(tx: Tx, s: Slice) -> Policy:
    return global_policy(tx).merged(s.policy_overrides)


def snapshot(s: Slice, policy: Policy, now: datetime) -> dict[str, Any]:
    """The evidence and the policy that decided, as audit payloads carry them."""
    return {"evidence": evidence_dict(s, policy, now), "policy": policy.to_dict()}


def load_slice(ctx: Context, tx: Tx, slice_id: str, lock: bool = True) -> Slice:
    """A slice the caller may see (locked for a write); NotFound otherwise, not revealing others'."""
    found = tx.slice(slice_id, lock=lock)
    if found is None or not ctx.principal.sees_scope(found.scope):
        raise NotFound(f"no slice {slice_id!r}")
    return found


def emit(ctx: Context, tx: Tx, type_: EventType, s: Slice | None, payload: dict[str, Any]) -> None:
    subject = EventSubject(s.id if s else None, s.scope.text if s else None, payload)
    tx.append_event(ctx.clock.now(), type_.value, ctx.actor, subject)


def shadow_of(tx: Tx, s: Slice, policy: Policy, now: datetime) -> ShadowEvidence:
    since = now - timedelta(days=policy.shadow_window_days)
    rows = tx.shadow_rows(since, s.scope.value("tenant"))
    return shadow_evidence(((r.dims, r.verdict, r.disposition, r.count) for r in rows), s.scope)


@retry_transient
def create_slice(ctx: Context, scope_text: str, overrides: dict[str, Any] | None = None) -> Slice:
    scope = parse_scope(scope_text, ctx.dims)
    if not ctx.principal.sees_scope(scope):
        raise Forbidden(f"this token may not create a slice on {scope}")
    checked = check_fields(overrides or {})
    with ctx.db.transaction(write=True) as conn:
        tx = Tx(conn)
        global_policy(tx).merged(checked)  # the whole merged policy must be valid
        if tx.slice_by_scope(scope) is not None:
            raise DuplicateScope(f"a slice already exists for scope {scope}")
        s = Slice(ctx.ids.new("sl"), scope, SliceState.SHADOW, 0, ctx.clock.now(), policy_overrides=checked)
        tx.insert_slice(s)
        emit(ctx, tx, EventType.SLICE_CREATED, s, {"policy_overrides": checked})
        tx.bump_version()
    return s


@retry_transient
def set_slice_policy(ctx: Context, slice_id: str, changes: dict[str, Any]) -> Slice:
    checked = check_fields(changes)
    if not checked:
        raise BadInput.at("set", "give at least one field=value")
    with ctx.db.transaction(write=True) as conn:
        tx = Tx(conn)
        s = load_slice(ctx, tx, slice_id)
        merged = {**s.policy_overrides, **checked}
        policy = global_policy(tx).merged(merged)
        before = dict(s.policy_overrides)
        s = dataclasses.replace(s, policy_overrides=merged)
        s = recount(tx, s, policy)
        tx.save_slice(s)
        emit(
            ctx,
            tx,
            EventType.SLICE_POLICY_CHANGED,
            s,
            {"before": before, "after": merged, "changed": checked},
        )
        tx.bump_version()
    return s


def recount(tx: Tx, s: Slice, policy: Policy, upto_seq: int | None = None) -> Slice:
    """The slice with its counters rebuilt from decisions and outcomes (up to an outcome's seq)."""
    if s.state is SliceState.SHADOW:
        return dataclasses.replace(s, counters=Counters())
    decisions, executed, history = tx.attempt_history(s.id, s.attempt, upto_seq)
    rows = [(h.decision_pk, h.seq, h.disposition, h.source) for h in history]
    unsampled = {h.decision_pk for h in history if not h.sampled}
    return dataclasses.replace(s, counters=rebuild_counters(decisions, executed, rows, policy, unsampled))


@retry_transient
def start_canary(
    ctx: Context,
    slice_id: str,
    *,
    signed_off_by: str | None = None,
    reason: str | None = None,
    if_ready: bool = False,
    override_cooldown: bool = False,
) -> Slice:
    """shadow → canary, on the go-live criteria (--if-ready) or an explicit sign-off by a person."""
    refuse_unstorable(signed_off_by=signed_off_by, reason=reason)
    if not if_ready and not (signed_off_by and reason):
        raise BadInput.at("signed_off_by", "give --signed-off-by NAME and --reason TEXT, or --if-ready")
    if override_cooldown and not reason:
        raise BadInput.at("reason", "overriding the cool-down needs a reason")
    now = ctx.clock.now()
    with ctx.db.transaction(write=True) as conn:
        tx = Tx(conn)
        s = load_slice(ctx, tx, slice_id)
        require_transition(s, Transition.START_CANARY)
        policy = effective_policy(tx, s)
        shadow = shadow_of(tx, s, policy, now)
        unmet = go_live_unmet(shadow, policy) if if_ready else []
        cooldown_until = (
            s.rolled_back_at + timedelta(hours=policy.cooldown_hours) if s.rolled_back_at else None
        )
        if cooldown_until is not None and now < cooldown_until and not override_cooldown:
            unmet.append(f"cool-down after the rollback runs until {cooldown_until.isoformat()}")
        if unmet:
            raise CriteriaNotMet("not ready for canary: " + "; ".join(unmet), unmet)
        s = new_attempt(s, now)
        tx.save_slice(s)
        payload = {
            "attempt": s.attempt,
            "signed_off_by": signed_off_by,
            "reason": reason,
            "if_ready": if_ready,
            "cooldown_overridden": bool(override_cooldown and cooldown_until and now < cooldown_until),
            "shadow": shadow.to_dict(),
            "policy": policy.to_dict(),
        }
        emit(ctx, tx, EventType.CANARY_STARTED, s, payload)
        tx.bump_version()
    return s


def promote_in(ctx: Context, tx: Tx, s: Slice, policy: Policy, judgement: Judgement, forced: bool) -> Slice:
    """canary → active inside an open transaction, with its audit event."""
    now = ctx.clock.now()
    promoted = dataclasses.replace(s, state=SliceState.ACTIVE, promoted_at=now)
    tx.save_slice(promoted)
    payload = {"forced": forced, "reasons": list(judgement.reasons), **snapshot(s, policy, now)}
    emit(ctx, tx, EventType.CANARY_PROMOTED, promoted, payload)
    tx.bump_version()
    return promoted


def roll_back_in(
    ctx: Context, tx: Tx, s: Slice, policy: Policy, judgement: Judgement
) -> tuple[Slice, KillSwitch]:
    """canary/active → rolled_back plus a kill switch on its exact scope, both audited, in one transaction."""
    now = ctx.clock.now()
    reason = "; ".join(judgement.reasons)
    kill = KillSwitch(
        ctx.ids.new("ks"), s.scope, f"rollback of {s.id}: {reason}", True, ctx.actor, now, slice_id=s.id
    )
    tx.insert_kill_switch(kill)
    rolled = dataclasses.replace(s, state=SliceState.ROLLED_BACK, rolled_back_at=now, kill_switch_id=kill.id)
    tx.save_slice(rolled)
    silenced = tx.refining_slice_ids(s.scope)
    shot = snapshot(s, policy, now)
    trigger = (judgement.trigger or Trigger.MANUAL).value
    emit(
        ctx,
        tx,
        EventType.CANARY_ROLLED_BACK,
        rolled,
        {
            "trigger": trigger,
            "reasons": list(judgement.reasons),
            "attempt": s.attempt,
            "kill_switch_id": kill.id,
            "silenced": silenced,
            **shot,
        },
    )
    emit(ctx, tx, EventType.KILL_SWITCH_ACTIVATED, rolled, {"kill_switch": kill_switch_dict(kill), **shot})
    tx.bump_version()
    return rolled, kill


def note_rollbacks_in_gate(
    ctx: Context, version: int, rolled: list[tuple[Slice, Policy, KillSwitch]]
) -> None:
    """After a commit whose only gate changes were `rolled` (one version bump each, ending at `version`):
    bring this process's gate view forward without rebuilding it from the database.

    Only a view of exactly the version before those bumps is patched; any other view is left for the
    gate to rebuild as usual, as is a kill switch on a scope that already has one (which of the two
    the gate names depends on activation times the view does not hold).
    """
    cache = ctx.gate
    with cache.lock:
        view = cache.view
        if view is None or view.version != version - len(rolled):
            return
        slices = dict(view.slices)
        kills = dict(view.kills)
        for s, policy, kill in rolled:
            key = key_of(s.scope, ctx.dims)
            if key not in slices or slices[key].id != s.id or key in kills:
                return
            slices[key] = gate_slice(s, policy)
            kills[key] = kill.id
        cache.view = GateView(ctx.dims, slices, kills, view.tenants_start_in_shadow, version)


def restart_in(ctx: Context, tx: Tx, s: Slice, policy: Policy, model_version: str) -> Slice:
    """A new model on a live slice: a new attempt in canary; one model's evidence never promotes another."""
    now = ctx.clock.now()
    restarted = new_attempt(s, now, model_version)
    tx.save_slice(restarted)
    payload = {
        "attempt": restarted.attempt,
        "previous_state": s.state.value,
        "previous_model_version": s.model_version,
        "model_version": model_version,
        **snapshot(s, policy, now),
    }
    emit(ctx, tx, EventType.CANARY_RESTARTED, restarted, payload)
    tx.bump_version()
    return restarted


def note_dry_run(ctx: Context, tx: Tx, s: Slice, policy: Policy, judgement: Judgement) -> Slice:
    """Under dry_run, audit what would happen (once per attempt and kind) and change nothing else."""
    now = ctx.clock.now()
    promote = judgement.action is Action.PROMOTE
    if (s.would_promote_at if promote else s.would_roll_back_at) is not None:
        return s
    if promote:
        noted = dataclasses.replace(s, would_promote_at=now)
    else:
        noted = dataclasses.replace(s, would_roll_back_at=now)
    tx.save_slice(noted)
    kind = EventType.CANARY_WOULD_PROMOTE if promote else EventType.CANARY_WOULD_ROLL_BACK
    trigger = judgement.trigger.value if judgement.trigger else None
    emit(
        ctx,
        tx,
        kind,
        noted,
        {"reasons": list(judgement.reasons), "trigger": trigger, **snapshot(s, policy, now)},
    )
    return noted


@retry_transient
def promote(ctx: Context, slice_id: str, reason: str) -> Slice:
    """A forced promotion by an admin, with a reason."""
    require_reason(reason, "a forced promotion needs a reason")
    with ctx.db.transaction(write=True) as conn:
        tx = Tx(conn)
        s = load_slice(ctx, tx, slice_id)
        require_transition(s, Transition.PROMOTE)
        policy = effective_policy(tx, s)
        return promote_in(ctx, tx, s, policy, Judgement(Action.PROMOTE, (f"forced: {reason}",)), forced=True)


@retry_transient
def roll_back(ctx: Context, slice_id: str, reason: str) -> Slice:
    """A manual rollback by an operator, with a reason."""
    require_reason(reason, "a rollback needs a reason")
    with ctx.db.transaction(write=True) as conn:
        tx = Tx(conn)
        s = load_slice(ctx, tx, slice_id)
        require_transition(s, Transition.ROLL_BACK)
        policy = effective_policy(tx, s)
        judgement = Judgement(Action.ROLLBACK, (f"manual: {reason}",), Trigger.MANUAL)
        rolled, kill = roll_back_in(ctx, tx, s, policy, judgement)
        version = tx.version()
    note_rollbacks_in_gate(ctx, version, [(rolled, policy, kill)])
    return rolled


@retry_transient
def reset(ctx: Context, slice_id: str, reason: str) -> Slice:
    """rolled_back → shadow; the same transaction deactivates the slice's rollback kill switch."""
    require_reason(reason, "a reset needs a reason")
    now = ctx.clock.now()
    with ctx.db.transaction(write=True) as conn:
        tx = Tx(conn)
        s = load_slice(ctx, tx, slice_id)
        require_transition(s, Transition.RESET)
        kill = tx.kill_switch(s.kill_switch_id) if s.kill_switch_id else None
        s = dataclasses.replace(s, state=SliceState.SHADOW, kill_switch_id=None, counters=Counters())
        tx.save_slice(s)
        emit(ctx, tx, EventType.SLICE_RESET, s, {"reason": reason, "attempt": s.attempt})
        if kill is not None and kill.active:
            off = dataclasses.replace(kill, active=False, deactivated_by=ctx.actor, deactivated_at=now)
            tx.deactivate_kill_switch(off, reason)
            emit(
                ctx,
                tx,
                EventType.KILL_SWITCH_DEACTIVATED,
                s,
                {"kill_switch": kill_switch_dict(off), "reason": reason},
            )
        tx.bump_version()
    return s
