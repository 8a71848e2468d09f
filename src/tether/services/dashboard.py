"""Read models for the web dashboard, over the same queries, visibility rules and evidence as the API."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from tether.domain.access import Principal, Role
from tether.domain.audit import AuditEvent, ChainReport, EventType
from tether.domain.evidence import interval, rebuild_counters
from tether.domain.inputs import parse_alert
from tether.domain.model import Answer, KillSwitch, SliceState
from tether.domain.policy import Policy
from tether.domain.scope import SEVERITY
from tether.services import audit, gate, queries
from tether.services.context import Context, Observer
from tether.services.lifecycle import effective_policy, load_slice
from tether.store import activity
from tether.store.activity import DayCount
from tether.store.sql import AuditFilter, Tx

_MAX_POINTS = 60  # precision points drawn per attempt; longer attempts are thinned evenly


@dataclass(frozen=True)
class PrecisionPoint:
    """The attempt's precision and its 95% interval at the end of one UTC day."""

    day: str
    reviews: int
    precision: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class SliceHistory:
    """One slice (the JSON of DESIGN §7), its attempt's activity per day, precision over time and events."""

    slice: dict[str, Any]
    days: list[DayCount]
    precision: list[PrecisionPoint]
    events: list[AuditEvent]


@dataclass(frozen=True)
class Overview:
    slices: list[dict[str, Any]]
    active_kills: list[KillSwitch]
    tenants: list[str]
    rollback_reasons: dict[str, list[str]]  # slice id -> reasons of its latest rollback


@dataclass(frozen=True)
class GateExplained:
    """A gate answer with the alert as banded, every matching slice and the deciding kill switch."""

    alert: dict[str, str]
    answer: Answer
    matching: list[dict[str, Any]]
    kill_switch: KillSwitch | None


@dataclass(frozen=True)
class Session:
    """What a dashboard session rests on: the token's principal, and what keys its cookie (the server's
    session secret, when one is set, and the token's stored hash)."""

    principal: Principal
    key_material: str


def session_of(ctx: Context, token_id: str) -> Session | None:
    """The active token behind a dashboard session, checked on every request (None once revoked)."""
    with ctx.db.transaction(write=False) as conn:
        row = Tx(conn).token(token_id)
    if row is None or row["revoked_at"] is not None:
        return None
    tenants = frozenset(str(t) for t in json.loads(row["tenants"]))
    principal = Principal(row["id"], row["name"], Role(row["role"]), tenants)
    return Session(principal, f"{ctx.session_secret}\x1f{row['secret_hash']}")


def overview(ctx: Context, state: str | None = None, tenant: str | None = None) -> Overview:
    """Every visible slice (filtered), the active kill switches, and why the rolled-back ones rolled back."""
    every = queries.list_slices(ctx)
    chosen = [
        s
        for s in every
        if (state is None or s["state"] == state) and (tenant is None or _tenant_of(s["scope"]) == tenant)
    ]
    tenants = sorted({t for t in (_tenant_of(s["scope"]) for s in every) if t is not None})
    reasons: dict[str, list[str]] = {}
    with ctx.db.transaction(write=False) as conn:
        for s in chosen:
            if s["state"] == SliceState.ROLLED_BACK.value:
                last = AuditFilter(
                    slice_id=s["id"], type=EventType.CANARY_ROLLED_BACK.value, limit=1, newest_first=True
                )
                found = Tx(conn).events(last)
                reasons[s["id"]] = [str(r) for r in found[0].payload.get("reasons", [])] if found else []
    return Overview(chosen, queries.list_kill_switches(ctx, active_only=True), tenants, reasons)


def _tenant_of(scope_text: str) -> str | None:
    for pair in scope_text.split(","):
        name, _, value = pair.partition("=")
        if name == "tenant":
            return value
    return None


def slice_history(ctx: Context, slice_id: str) -> SliceHistory:
    """A slice with its current attempt's activity per day, precision per day and audit timeline."""
    now = ctx.clock.now()
    with ctx.db.transaction(write=False) as conn:
        tx = Tx(conn)
        s = load_slice(ctx, tx, slice_id, lock=False)
        view = queries.slice_view(tx, s, now)
        days = activity.daily_counts(conn, s.id, s.attempt) if s.attempt else []
        points = _precision_per_day(tx, s.id, s.attempt, effective_policy(tx, s)) if s.attempt else []
        newest = AuditFilter(slice_id=s.id, limit=500, newest_first=True)
        events = list(reversed(tx.events(newest)))
    return SliceHistory(view, days, points, _this_attempt(events, s.attempt))


def _precision_per_day(tx: Tx, slice_id: str, attempt: int, policy: Policy) -> list[PrecisionPoint]:
    """The evidence as Tether saw it at the end of each day: the same counters, rebuilt on a prefix."""
    decisions, executed, history = tx.attempt_history(slice_id, attempt)
    moments = activity.review_moments(tx.conn, slice_id, attempt)
    last_seq_of_day: dict[str, int] = {}
    for m in moments:
        last_seq_of_day[m.recorded_at.date().isoformat()] = m.seq
    days = sorted(last_seq_of_day)
    if len(days) > _MAX_POINTS:
        step = len(days) / _MAX_POINTS
        days = sorted({days[int(i * step)] for i in range(_MAX_POINTS)} | {days[-1]})
    unsampled = {h.decision_pk for h in history if not h.sampled}
    points = []
    for day in days:
        upto = last_seq_of_day[day]
        rows = [(h.decision_pk, h.seq, h.disposition, h.source) for h in history if h.seq <= upto]
        reviews = rebuild_counters(decisions, executed, rows, policy, unsampled).reviews
        bounds = interval(reviews, policy) if reviews.reviews else None
        low, high = bounds if bounds else (None, None)
        points.append(PrecisionPoint(day, reviews.reviews, reviews.p_hat, low, high))
    return points


def _this_attempt(events: list[AuditEvent], attempt: int) -> list[AuditEvent]:
    """The events since the current attempt began (its canary.started or canary.restarted)."""
    starts = (EventType.CANARY_STARTED.value, EventType.CANARY_RESTARTED.value)
    begin = 0
    for i, e in enumerate(events):
        if e.type in starts and e.payload.get("attempt") == attempt:
            begin = i
    return events[begin:]


def recent_events(
    ctx: Context, filters: AuditFilter, before_seq: int | None, size: int
) -> tuple[list[AuditEvent], int | None]:
    """A page of the events the caller may see, newest first, and the seq to continue below (None: done)."""
    newest = dataclasses.replace(filters, before_seq=before_seq, newest_first=True)
    return audit.page_events(ctx, newest, size)


def chain_status(ctx: Context) -> ChainReport | None:
    """The chain verified end to end; None for a token limited to tenants (it cannot see the whole chain)."""
    if ctx.principal.restricted:
        return None
    return audit.verify(ctx)


def known_values(ctx: Context) -> dict[str, list[str]]:
    """Per dimension, the values seen in decisions, slices and kill switches (severity: its bands)."""
    with ctx.db.transaction(write=False) as conn:
        seen = activity.seen_dimension_values(conn)
        tx = Tx(conn)
        scopes = [s.scope for s in tx.slices()] + [k.scope for k in tx.kill_switches()]
    for scope in scopes:
        for name, value in scope.pairs:
            seen.setdefault(name, set()).add(value)
    out: dict[str, list[str]] = {}
    for name in ctx.dims.names:
        values = sorted(seen.get(name, set()))
        if name == SEVERITY:
            values = list(ctx.dims.bands.names)
        elif name == "tenant" and ctx.principal.restricted:
            values = sorted(ctx.principal.tenants)
        out[name] = values
    return out


def explain_gate(ctx: Context, raw_alert: dict[str, str]) -> GateExplained:
    """The gate's answer for an alert (nothing recorded, not counted as traffic) with what decided it."""
    alert = parse_alert(raw_alert, ctx.dims)
    answer = gate.gate(dataclasses.replace(ctx, observer=Observer()), raw_alert)
    with ctx.db.transaction(write=False) as conn:
        tx = Tx(conn)
        slices = [s for s in tx.slices() if s.scope.matches(alert) and ctx.principal.sees_scope(s.scope)]
        kill = tx.kill_switch(answer.kill_switch_id) if answer.kill_switch_id else None
    matching = [{"id": s.id, "scope": s.scope.text, "state": s.state.value} for s in slices]
    return GateExplained(alert, answer, matching, kill)
