"""Read models: the slice object of DESIGN §7 with its evidence, shadow evidence and verdict."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tether.domain.errors import NotFound
from tether.domain.evidence import Action as _Action
from tether.domain.evidence import Judgement, evidence_dict, judge
from tether.domain.model import LIVE_STATES, KillSwitch, Slice, SliceState
from tether.domain.policy import Policy
from tether.domain.scope import parse_scope
from tether.domain.shadow import go_live_unmet
from tether.domain.timefmt import iso
from tether.services.context import Context
from tether.services.lifecycle import effective_policy, load_slice, shadow_of
from tether.store.sql import Tx


def _verdict(tx: Tx, s: Slice, policy: Policy, now: datetime, shadow_unmet: list[str]) -> Judgement:
    if s.state in LIVE_STATES:
        return judge(s, policy, now)
    if s.state is SliceState.ROLLED_BACK:
        when = iso(s.rolled_back_at)
        return Judgement(
            _Action.CONTINUE, (f"rolled back at {when}; reset the slice to start a new attempt",)
        )
    if shadow_unmet:
        return Judgement(_Action.CONTINUE, ("shadow; not ready for canary", *shadow_unmet))
    return Judgement(_Action.CONTINUE, ("shadow; go-live criteria met: ready for canary",))


def slice_view(tx: Tx, s: Slice, now: datetime) -> dict[str, Any]:
    policy = effective_policy(tx, s)
    shadow = shadow_of(tx, s, policy, now)
    unmet = go_live_unmet(shadow, policy)
    return {
        "id": s.id,
        "scope": s.scope.text,
        "state": s.state.value,
        "attempt": s.attempt,
        "created_at": iso(s.created_at),
        "canary_started_at": iso(s.canary_started_at),
        "promoted_at": iso(s.promoted_at),
        "rolled_back_at": iso(s.rolled_back_at),
        "held_at": iso(s.held_at),
        "kill_switch_id": s.kill_switch_id,
        "evidence": evidence_dict(s, policy, now),
        "shadow": shadow.to_dict(),
        "verdict": _verdict(tx, s, policy, now, unmet).to_dict(),
        "policy_overrides": s.policy_overrides,
        "policy": policy.to_dict(),
    }


def get_slice(ctx: Context, slice_id: str) -> dict[str, Any]:
    with ctx.db.transaction(write=False) as conn:
        tx = Tx(conn)
        return slice_view(tx, load_slice(ctx, tx, slice_id, lock=False), ctx.clock.now())


def slice_id_of(ctx: Context, ref: str) -> str:
    """A slice id from an id or a scope (`tenant=acme`): operators may name a slice either way."""
    if "=" not in ref:
        return ref
    scope = parse_scope(ref, ctx.dims)
    with ctx.db.transaction(write=False) as conn:
        s = Tx(conn).slice_by_scope(scope)
    if s is None or not ctx.principal.sees_scope(s.scope):
        raise NotFound(f"no slice for scope {scope}")
    return s.id


def view_of(ctx: Context, s: Slice) -> dict[str, Any]:
    """The slice object for a slice a command just returned."""
    with ctx.db.transaction(write=False) as conn:
        return slice_view(Tx(conn), s, ctx.clock.now())


def list_slices(ctx: Context, state: str | None = None, tenant: str | None = None) -> list[dict[str, Any]]:
    with ctx.db.transaction(write=False) as conn:
        tx = Tx(conn)
        now = ctx.clock.now()
        chosen = [
            s
            for s in tx.slices()
            if (state is None or s.state.value == state)
            and (tenant is None or s.scope.value("tenant") == tenant)
            and ctx.principal.sees_scope(s.scope)
        ]
        return [slice_view(tx, s, now) for s in chosen]


def list_kill_switches(ctx: Context, active_only: bool = False) -> list[KillSwitch]:
    with ctx.db.transaction(write=False) as conn:
        found = Tx(conn).kill_switches(active_only=active_only)
    return [k for k in found if ctx.principal.sees_scope(k.scope)]


def evidence_snapshots(ctx: Context) -> list[dict[str, Any]]:
    """Every slice's state and evidence, without shadow evidence: cheap enough to take often."""
    with ctx.db.transaction(write=False) as conn:
        tx = Tx(conn)
        now = ctx.clock.now()
        return [
            {
                "id": s.id,
                "scope": s.scope.text,
                "state": s.state.value,
                "attempt": s.attempt,
                "evidence": evidence_dict(s, effective_policy(tx, s), now),
            }
            for s in tx.slices()
        ]


def recall(ctx: Context, slice_id: str) -> dict[str, Any]:
    """The attempt's executed closures with no outcome yet: what analysts re-triage after a rollback."""
    with ctx.db.transaction(write=False) as conn:
        tx = Tx(conn)
        s = load_slice(ctx, tx, slice_id, lock=False)
        rows = tx.unreviewed_closures(s.id, s.attempt)
    closures = [{**r, "decided_at": iso(r["decided_at"]), "review": bool(r["review"])} for r in rows]
    return {
        "slice_id": s.id,
        "scope": s.scope.text,
        "state": s.state.value,
        "attempt": s.attempt,
        "closures": closures,
    }
