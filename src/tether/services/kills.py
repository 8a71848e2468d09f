"""Kill switches: activate on any scope, deactivate with a reason (DESIGN §6)."""

from __future__ import annotations

import dataclasses

from tether.domain.audit import EventType
from tether.domain.errors import Forbidden, NotAllowed, NotFound, require_reason
from tether.domain.model import KillSwitch, SliceState
from tether.domain.scope import parse_scope
from tether.domain.views import kill_switch_dict
from tether.services.context import Context
from tether.store.engine import retry_transient
from tether.store.sql import EventSubject, Tx


@retry_transient
def activate(ctx: Context, scope_text: str, reason: str) -> KillSwitch:
    """A kill switch on a scope (empty = everything); the gate answers killed at once."""
    scope = parse_scope(scope_text, ctx.dims)
    if not ctx.principal.sees_scope(scope):
        raise Forbidden(f"this token may not activate a kill switch on {scope or '(everything)'}")
    require_reason(reason, "a kill switch needs a reason")
    with ctx.db.transaction(write=True) as conn:
        tx = Tx(conn)
        kill = KillSwitch(ctx.ids.new("ks"), scope, reason, True, ctx.actor, ctx.clock.now())
        tx.insert_kill_switch(kill)
        subject = EventSubject(None, scope.text, {"kill_switch": kill_switch_dict(kill)})
        tx.append_event(kill.activated_at, EventType.KILL_SWITCH_ACTIVATED.value, ctx.actor, subject)
        tx.bump_version()
    return kill


@retry_transient
def deactivate(ctx: Context, kill_id: str, reason: str) -> KillSwitch:
    """Turn a kill switch off; a rolled-back slice's own switch is released only by `slice reset`."""
    require_reason(reason, "deactivating a kill switch needs a reason")
    with ctx.db.transaction(write=True) as conn:
        tx = Tx(conn)
        kill = tx.kill_switch(kill_id, lock=True)
        if kill is None or not ctx.principal.sees_scope(kill.scope):
            raise NotFound(f"no kill switch {kill_id!r}")
        if not kill.active:
            raise NotAllowed(f"kill switch {kill_id} is already inactive")
        owner = tx.slice(kill.slice_id) if kill.slice_id else None
        if owner is not None and owner.state is SliceState.ROLLED_BACK and owner.kill_switch_id == kill.id:
            raise NotAllowed(
                f"kill switch {kill_id} holds rolled-back slice {owner.id}: "
                f"use `tether slice reset {owner.id}` instead"
            )
        off = dataclasses.replace(
            kill, active=False, deactivated_by=ctx.actor, deactivated_at=ctx.clock.now()
        )
        tx.deactivate_kill_switch(off, reason)
        subject = EventSubject(
            kill.slice_id, kill.scope.text, {"kill_switch": kill_switch_dict(off), "reason": reason}
        )
        tx.append_event(ctx.clock.now(), EventType.KILL_SWITCH_DEACTIVATED.value, ctx.actor, subject)
        tx.bump_version()
    return off
