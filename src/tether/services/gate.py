"""The gate's view of slices and kill switches, kept fresh, and the read-only gate question."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from tether.domain.gate import GateSlice, GateView, safe_answer
from tether.domain.inputs import parse_alert
from tether.domain.model import Answer, Slice, SliceState
from tether.domain.policy import Policy
from tether.services.context import Context, global_policy
from tether.store.sql import Tx


def view_in(ctx: Context, tx: Tx) -> GateView:
    """The current view, rebuilt inside this transaction if anything changed since it was built."""
    version = tx.version()
    cache = ctx.gate
    with cache.lock:
        view = cache.view
        if view is None or view.version != version:
            policy = global_policy(tx)
            view = GateView.build(
                ctx.dims,
                [gate_slice(s, policy.merged(s.policy_overrides)) for s in tx.slices()],
                tx.kill_switches(active_only=True),
                tenants_start_in_shadow=policy.tenants_start_in_shadow,
                version=version,
            )
            cache.view = view
        cache.fresh_at = ctx.clock.now()
    return view


def gate_slice(s: Slice, policy: Policy) -> GateSlice:
    rate = {SliceState.CANARY: policy.review_rate_canary, SliceState.ACTIVE: policy.review_rate_active}
    return GateSlice(s.id, s.scope, s.state, s.attempt, review_rate=rate.get(s.state, 0.0))


def refresh(ctx: Context) -> GateView:
    """Re-read the version (and the view when it changed)."""
    seen = ctx.db.bumps
    with ctx.db.transaction(write=False) as conn:
        view = view_in(ctx, Tx(conn))
    ctx.gate.bumps_seen = seen
    return view


def gate(ctx: Context, raw_alert: Mapping[str, object]) -> Answer:
    """Read-only: the mode an alert would get, and whether a close would be executed. Records nothing."""
    alert = parse_alert(raw_alert, ctx.dims)
    ctx.principal.require_tenants([alert.get("tenant", "")])
    # When the database is unreachable the cached view answers while it is fresh enough, then "stale".
    cache = ctx.gate
    if not cache.watched or cache.bumps_seen != ctx.db.bumps:
        with contextlib.suppress(Exception):
            refresh(ctx)
    answer = safe_answer(
        cache.view, alert, fresh_at=cache.fresh_at, now=ctx.clock.now(), max_staleness=ctx.max_staleness
    )
    ctx.observer.answered(answer.mode.value)
    if answer.reason in ("stale", "error"):
        ctx.observer.gate_failed(answer.reason)
    return answer
