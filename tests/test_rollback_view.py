"""A rollback brings this process's gate view forward in place: the same view a rebuild would give."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from conftest import decision, outcome
from tether.domain.gate import GateView
from tether.services import audit, gate, lifecycle
from tether.services.context import Context
from tether.services.decide import decide
from tether.services.outcomes import record_outcomes
from tether.store.sql import AuditFilter

ALERT = {"tenant": "acme", "severity": "low", "rule_family": "phishing", "data_source": "o365"}


def canary(ctx: Context, scope: str, **overrides: Any) -> str:
    s = lifecycle.create_slice(ctx, scope, overrides or None)
    lifecycle.start_canary(ctx, s.id, signed_off_by="ana", reason="pilot")
    return s.id


def rebuilt(ctx: Context) -> GateView:
    """The view read from the database from scratch."""
    ctx.gate.view = None
    return gate.refresh(ctx)


def test_missed_tp_rollback_patches_the_view_to_what_a_rebuild_gives(ctx: Context) -> None:
    """After a missed TP the view in memory is at the new version and equals one rebuilt from the database."""
    sid = canary(ctx, "tenant=acme", review_rate_canary=0.5)
    canary(ctx, "tenant=globex")
    lifecycle.create_slice(ctx, "tenant=acme,rule_family=dns_tunnel")
    decide(ctx, [decision(1)])
    before = gate.refresh(ctx)
    result = record_outcomes(ctx, [outcome(1, "true_positive", "review")])
    assert [a["slice_id"] for a in result.actions] == [sid]
    patched = ctx.gate.view
    assert patched is not None and patched is not before
    assert patched.version == before.version + 1
    assert gate.gate(ctx, ALERT).mode.value == "killed"
    assert ctx.gate.view is patched  # answered without rebuilding
    assert patched == rebuilt(ctx)


def test_a_stale_view_is_left_for_the_gate_to_rebuild(ctx: Context) -> None:
    """A view older than the version the rollback started from is not patched; the gate rebuilds it."""
    canary(ctx, "tenant=acme")
    decide(ctx, [decision(1)])
    old = gate.refresh(ctx)
    lifecycle.create_slice(ctx, "tenant=globex")  # moves the version on without this view
    record_outcomes(ctx, [outcome(1, "true_positive", "review")])
    assert ctx.gate.view is old
    assert gate.gate(ctx, ALERT).mode.value == "killed"
    assert ctx.gate.view == rebuilt(ctx)


def test_manual_rollback_patches_the_view_and_lists_silenced_slices_oldest_first(ctx: Context) -> None:
    """A manual rollback answers killed at once; its audit lists exactly the refining slices, oldest first."""
    sid = canary(ctx, "tenant=acme")
    narrow = []
    for scope in ("tenant=acme,severity=low", "tenant=acme,rule_family=phishing", "tenant=acme_2"):
        ctx.clock.advance(timedelta(minutes=1))
        narrow.append(lifecycle.create_slice(ctx, scope).id)
    lifecycle.create_slice(ctx, "rule_family=phishing")
    gate.refresh(ctx)
    lifecycle.roll_back(ctx, sid, "drill")
    assert gate.gate(ctx, ALERT).mode.value == "killed"
    assert ctx.gate.view == rebuilt(ctx)
    (event,) = audit.list_events(ctx, AuditFilter(type="canary.rolled_back"))
    assert event.payload["silenced"] == narrow[:2]
