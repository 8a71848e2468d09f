"""The dashboard's read models on SQLite and PostgreSQL: activity per day, precision per day, events."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from conftest import T0, decision, iso, outcome
from tether.domain.access import Principal, Role
from tether.domain.errors import BadInput
from tether.services import dashboard, decide, kills, lifecycle, outcomes, tokens
from tether.services.context import Context, FixedClock
from tether.store.sql import AuditFilter, Tx
from tether.web import session


def _canary_with_reviews(ctx: Context) -> str:
    """tenant=acme in canary: 10 decisions on day one, 8 reviews (one wrong) over two days."""
    s = lifecycle.create_slice(ctx, "tenant=acme")
    lifecycle.start_canary(ctx, s.id, signed_off_by="lead", reason="by hand")
    decide.decide(ctx, [decision(i) for i in range(10)])
    outcomes.record_outcomes(ctx, [outcome(i) for i in range(4)])
    assert isinstance(ctx.clock, FixedClock)
    ctx.clock.advance(timedelta(days=1))
    later = iso(T0 + timedelta(days=1))
    batch = [outcome(i, observed_at=later) for i in range(4, 7)] + [
        outcome(7, "benign_positive", observed_at=later)
    ]
    outcomes.record_outcomes(ctx, batch)
    return s.id


def test_slice_history_counts_per_day_and_rebuilds_precision_per_day(ctx: Context) -> None:
    """Decisions, executions and reviews per day, and the precision as it stood at the end of each day."""
    slice_id = _canary_with_reviews(ctx)
    history = dashboard.slice_history(ctx, slice_id)
    assert [(d.day, d.decisions, d.executed, d.reviews) for d in history.days] == [
        ("2026-03-02", 10, 10, 4),
        ("2026-03-03", 0, 0, 4),
    ]
    assert [(p.day, p.reviews, p.precision) for p in history.precision] == [
        ("2026-03-02", 4, 1.0),
        ("2026-03-03", 8, 7 / 8),
    ]
    last = history.precision[-1]
    assert last.low is not None and last.high is not None and last.low < 7 / 8 < last.high
    assert history.slice["evidence"]["precision"] == pytest.approx(7 / 8)
    assert [e.type for e in history.events] == ["canary.started"]


def test_overview_gives_the_reasons_of_a_rollback_and_filters(ctx: Context) -> None:
    """A rolled-back slice carries its rollback's reasons; state and tenant filters narrow the list."""
    slice_id = _canary_with_reviews(ctx)
    lifecycle.create_slice(ctx, "tenant=globex")
    lifecycle.roll_back(ctx, slice_id, "drill")
    view = dashboard.overview(ctx, state="rolled_back")
    assert [s["scope"] for s in view.slices] == ["tenant=acme"]
    assert view.rollback_reasons[slice_id] == ["manual: drill"]
    assert [k.scope.text for k in view.active_kills] == ["tenant=acme"]
    assert view.tenants == ["acme", "globex"]
    assert [s["scope"] for s in dashboard.overview(ctx, tenant="globex").slices] == ["tenant=globex"]


def test_recent_events_page_newest_first_and_hide_other_tenants(ctx: Context) -> None:
    """Events come newest first a page at a time; a token limited to a tenant sees only its events."""
    _canary_with_reviews(ctx)
    lifecycle.create_slice(ctx, "tenant=globex")
    every, more = dashboard.recent_events(ctx, AuditFilter(), None, 2)
    assert [e.type for e in every] == ["slice.created", "canary.started"] and more is not None
    older, _ = dashboard.recent_events(ctx, AuditFilter(), more, 10)
    assert all(e.seq < more for e in older)
    globex = ctx.acting_as(Principal("tok_g", "globex", Role.VIEWER, frozenset({"globex"})))
    seen, _ = dashboard.recent_events(globex, AuditFilter(), None, 10)
    assert {e.scope for e in seen} == {"tenant=globex"}
    assert dashboard.chain_status(globex) is None
    report = dashboard.chain_status(ctx)
    assert report is not None and report.ok


def test_known_values_come_from_decisions_slices_and_kill_switches(ctx: Context) -> None:
    """The kill switch picker offers what was seen; severity offers its bands; a tenant token its tenants."""
    _canary_with_reviews(ctx)
    kills.activate(ctx, "rule_family=impossible_travel", "drill")
    values = dashboard.known_values(ctx)
    assert values["tenant"] == ["acme"]
    assert values["severity"] == ["low", "medium", "high", "critical"]
    assert values["rule_family"] == ["impossible_travel", "phishing"]
    assert values["data_source"] == ["o365"]
    limited = ctx.acting_as(Principal("tok_b", None, Role.VIEWER, frozenset({"beta"})))
    assert dashboard.known_values(limited)["tenant"] == ["beta"]


def test_gate_explained_names_the_deciding_slices_and_kill_switch(ctx: Context) -> None:
    """The explorer's answer is the gate's; it lists matching slices and the kill switch that decided."""
    slice_id = _canary_with_reviews(ctx)
    alert = {"tenant": "acme", "severity": "35", "rule_family": "phishing", "data_source": "o365"}
    explained = dashboard.explain_gate(ctx, alert)
    assert explained.answer.mode.value == "canary" and explained.answer.slice_ids == (slice_id,)
    assert explained.alert["severity"] == "low"
    assert [m["scope"] for m in explained.matching] == ["tenant=acme"]
    kill = kills.activate(ctx, "tenant=acme", "drill")
    explained = dashboard.explain_gate(ctx, alert)
    assert explained.answer.mode.value == "killed"
    assert explained.kill_switch is not None and explained.kill_switch.id == kill.id
    with pytest.raises(BadInput, match="severity"):
        dashboard.explain_gate(ctx, {**alert, "severity": "bogus"})


def test_a_session_rests_on_an_active_token(ctx: Context) -> None:
    """A token's session material is there while it is active and gone once it is revoked."""
    token, _ = tokens.create_token(ctx, "operator", ["acme"], "lead")
    found = dashboard.session_of(ctx, token.id)
    assert found is not None and found.principal.role is Role.OPERATOR
    assert found.principal.tenants == frozenset({"acme"})
    tokens.revoke_token(ctx, token.id)
    assert dashboard.session_of(ctx, token.id) is None
    assert dashboard.session_of(ctx, "tok_missing") is None


def test_with_a_session_secret_reading_the_database_is_not_enough_to_make_a_cookie(ctx: Context) -> None:
    """With TETHER_SESSION_SECRET set, a cookie signed from what the database holds (the token's stored hash)
    is refused, while one the server issued is accepted; without the secret the two are the same cookie."""
    token, _ = tokens.create_token(ctx, "admin", name="lead")
    with ctx.db.transaction(write=False) as conn:
        stored_hash = Tx(conn).token(token.id)["secret_hash"]  # type: ignore[index]
    forged = session.issue(token.id, f"\x1f{stored_hash}")
    assert session.read(ctx, forged) is not None  # no secret set: the stored hash is the whole key
    served = dataclasses.replace(ctx, session_secret="s3cret-shared-by-every-replica")
    assert session.read(served, forged) is None
    found = dashboard.session_of(served, token.id)
    assert found is not None
    issued = session.issue(token.id, found.key_material)
    read = session.read(served, issued)
    assert read is not None and read.principal.id == token.id
