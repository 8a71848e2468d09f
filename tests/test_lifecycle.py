"""The slice lifecycle end to end through the library on a real database, SQLite or PostgreSQL, in virtual
time (DESIGN §1-§6)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from conftest import T0, decision, iso, outcome
from tether.domain.audit import AuditEvent
from tether.domain.errors import BadInput, CriteriaNotMet, DuplicateScope, NotAllowed, ReplayConflict
from tether.domain.model import Mode
from tether.services import audit, evaluate, kills, lifecycle, policy, queries
from tether.services.context import Context
from tether.services.decide import decide
from tether.services.gate import gate
from tether.services.outcomes import record_outcomes
from tether.store.sql import AuditFilter

ACME = "tenant=acme"
ALERT = {"tenant": "acme", "severity": "low", "rule_family": "phishing", "data_source": "o365"}


# helpers ---------------------------------------------------------------------------------------------


def events(ctx: Context, type_: str | None = None, slice_id: str | None = None) -> list[AuditEvent]:
    return audit.list_events(ctx, AuditFilter(slice_id=slice_id, type=type_))


def evidence(ctx: Context, slice_id: str) -> dict[str, Any]:
    return dict(queries.get_slice(ctx, slice_id)["evidence"])


def state(ctx: Context, slice_id: str) -> str:
    return str(queries.get_slice(ctx, slice_id)["state"])


def footprint(ctx: Context) -> dict[str, Any]:
    """Row counts of everything a command may write, and every slice's cached counters."""
    with ctx.db.transaction(write=False) as conn:
        counts = {
            table: conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
            for table in ("decisions", "decision_slices", "outcomes", "audit_events", "kill_switches")
        }
        rows = conn.execute(
            text(
                "SELECT id, state, attempt, kill_switch_id, ev_decisions, ev_executed, ev_missed_tp, "
                "ev_correct, ev_incorrect, ev_log_e_rb, ev_log_e_pr FROM slices ORDER BY id"
            )
        ).all()
        active_kills = conn.execute(text("SELECT COUNT(*) FROM kill_switches WHERE active")).scalar_one()
        latest = conn.execute(
            text(
                "SELECT decision_id, out_disposition, out_source, first_review_seq FROM decisions ORDER BY pk"
            )
        ).all()
    return {
        "counts": counts,
        "slices": [tuple(r) for r in rows],
        "active_kills": active_kills,
        "latest_outcomes": [tuple(r) for r in latest],
    }


def stored_decision(ctx: Context, decision_id: str) -> dict[str, Any]:
    with ctx.db.transaction(write=False) as conn:
        row = conn.execute(
            text("SELECT mode, execute, slice_ids FROM decisions WHERE decision_id = :id"),
            {"id": decision_id},
        ).one()
    return {"mode": row[0], "execute": bool(row[1]), "slice_ids": json.loads(row[2])}


def canary(ctx: Context, scope: str = ACME, **overrides: Any) -> str:
    """A slice on `scope`, started as a canary by sign-off; returns its id."""
    s = lifecycle.create_slice(ctx, scope, overrides or None)
    lifecycle.start_canary(ctx, s.id, signed_off_by="ana", reason="pilot")
    return s.id


def closes(ctx: Context, ids: range, **over: Any) -> list[dict[str, Any]]:
    """Send close decisions d-<i> for each i; returns the answers as dicts."""
    return [a.to_dict() for a in decide(ctx, [decision(i, **over) for i in ids])]


def reviews(ctx: Context, ids: range, disposition: str = "false_positive", source: str = "review") -> Any:
    return record_outcomes(ctx, [outcome(i, disposition, source) for i in ids])


def by_alert(tenant: str, alert_id: str, disposition: str, source: str = "review") -> dict[str, Any]:
    body = outcome(0, disposition, source)
    del body["decision_id"]
    return {**body, "tenant": tenant, "alert_id": alert_id}


def reasons_text(result: dict[str, Any]) -> str:
    return " | ".join(result["reasons"])


def result_for(evaluation: Any, slice_id: str) -> dict[str, Any]:
    (found,) = [r for r in evaluation.results if r["slice_id"] == slice_id]
    return dict(found)


# 1. slices -------------------------------------------------------------------------------------------


def test_create_slice_starts_in_shadow_at_attempt_zero_with_canonical_scope(ctx: Context) -> None:
    """A new slice is in shadow at attempt 0 with a canonical scope, and slice.created is audited."""
    s = lifecycle.create_slice(ctx, " rule_family=phishing , tenant=acme ")
    assert (s.state.value, s.attempt, s.scope.text) == ("shadow", 0, "tenant=acme,rule_family=phishing")
    shown = queries.get_slice(ctx, s.id)
    assert (shown["state"], shown["attempt"], shown["scope"]) == (
        "shadow",
        0,
        "tenant=acme,rule_family=phishing",
    )
    (created,) = events(ctx, "slice.created")
    assert (created.slice_id, created.scope) == (s.id, "tenant=acme,rule_family=phishing")


def test_second_slice_on_same_scope_is_duplicate_and_writes_nothing(ctx: Context) -> None:
    """A second slice on an equal scope (pairs in another order) is DuplicateScope and leaves no trace."""
    lifecycle.create_slice(ctx, "tenant=acme,rule_family=phishing")
    before = footprint(ctx)
    with pytest.raises(DuplicateScope):
        lifecycle.create_slice(ctx, "rule_family=phishing,tenant=acme")
    assert footprint(ctx) == before
    assert len(queries.list_slices(ctx)) == 1


@pytest.mark.parametrize(
    "scope",
    ["colour=red", "tenant=", "tenant=acme,tenant=beta", "severity=extreme", "severity=50", "tenant"],
)
def test_bad_scope_is_bad_input(ctx: Context, scope: str) -> None:
    """Unknown dimension, empty value, repeated dimension, non-band severity or a bare word is BadInput."""
    before = footprint(ctx)
    with pytest.raises(BadInput):
        lifecycle.create_slice(ctx, scope)
    assert footprint(ctx) == before


# 2. decisions ----------------------------------------------------------------------------------------


def test_decision_resolves_and_records_its_mode_in_one_call(ctx: Context) -> None:
    """One decide call answers the mode and stores exactly that answer as evidence of the granting slice."""
    sid = canary(ctx)
    (answer,) = closes(ctx, range(1, 2))
    assert answer == {
        "decision_id": "d-1",
        "mode": "canary",
        "execute": True,
        "slice_ids": [sid],
        "reason": answer["reason"],
        "review": answer["review"],
    }
    assert isinstance(answer["review"], bool), "an executed close says whether to route it to an analyst"
    assert "tenant=acme" in answer["reason"]
    assert stored_decision(ctx, "d-1") == {"mode": "canary", "execute": True, "slice_ids": [sid]}
    assert (evidence(ctx, sid)["decisions"], evidence(ctx, sid)["executed"]) == (1, 1)


def test_replay_returns_first_answer_after_the_slice_changed_state(ctx: Context) -> None:
    """A replayed decision_id returns its first answer and records nothing, even after a state change."""
    s = lifecycle.create_slice(ctx, ACME)
    (first,) = closes(ctx, range(1, 2))
    assert (first["mode"], first["execute"]) == ("shadow", False)
    lifecycle.start_canary(ctx, s.id, signed_off_by="ana", reason="pilot")
    before = footprint(ctx)
    (again,) = closes(ctx, range(1, 2))
    assert again == first
    assert footprint(ctx) == before
    assert evidence(ctx, s.id)["decisions"] == 0

    (live,) = closes(ctx, range(2, 3))
    assert (live["mode"], live["execute"]) == ("canary", True)
    lifecycle.roll_back(ctx, s.id, "drill")
    before = footprint(ctx)
    (replayed,) = closes(ctx, range(2, 3))
    assert replayed == live
    assert footprint(ctx) == before
    assert (evidence(ctx, s.id)["decisions"], evidence(ctx, s.id)["executed"]) == (1, 1)


def test_same_decision_twice_in_one_batch_is_recorded_once(ctx: Context) -> None:
    """The same decision_id twice in one batch with the same body gets one answer and one record."""
    sid = canary(ctx)
    answers = [a.to_dict() for a in decide(ctx, [decision(1), decision(2), decision(1)])]
    assert answers[0] == answers[2]
    assert footprint(ctx)["counts"]["decisions"] == 2
    assert (evidence(ctx, sid)["decisions"], evidence(ctx, sid)["executed"]) == (2, 2)


def test_same_id_with_another_body_in_one_batch_is_a_conflict_and_writes_nothing(ctx: Context) -> None:
    """The same decision_id with another body in one batch is ReplayConflict and nothing is written."""
    canary(ctx)
    before = footprint(ctx)
    with pytest.raises(ReplayConflict) as caught:
        decide(ctx, [decision(2), decision(1), decision(1, severity="high")])
    assert caught.value.index == 2
    assert footprint(ctx) == before


def test_same_id_with_another_body_than_stored_is_a_conflict_and_writes_nothing(ctx: Context) -> None:
    """A decision_id already recorded, sent again with another body, refuses the whole batch."""
    sid = canary(ctx)
    closes(ctx, range(1, 2))
    before = footprint(ctx)
    with pytest.raises(ReplayConflict) as caught:
        decide(ctx, [decision(7), decision(1, verdict="escalate")])
    assert caught.value.index == 1
    assert footprint(ctx) == before
    assert evidence(ctx, sid)["decisions"] == 1


def _without_tenant() -> dict[str, Any]:
    body = decision(9)
    del body["tenant"]
    return body


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        (decision(9, colour="red"), "colour"),
        (decision(9, severity="extreme"), "severity"),
        (decision(9, severity=101), "severity"),
        (_without_tenant(), "tenant"),
        (decision(9, verdict="ignore"), "verdict"),
        (decision(9, decided_at="yesterday"), "decided_at"),
    ],
)
def test_invalid_item_refuses_the_batch_naming_its_index(
    ctx: Context, bad: dict[str, Any], field: str
) -> None:
    """One invalid decision is BadInput naming its batch index and field, and nothing is written."""
    sid = canary(ctx)
    before = footprint(ctx)
    with pytest.raises(BadInput) as caught:
        decide(ctx, [decision(1), decision(2), bad])
    (problem,) = caught.value.problems
    assert problem.index == 2
    assert field in problem.field()
    assert footprint(ctx) == before
    assert evidence(ctx, sid)["decisions"] == 0


def test_only_a_close_in_canary_or_active_is_executed(ctx: Context) -> None:
    """Only a close in canary/active executes; an escalate counts in decisions but never in executed."""
    shadow = lifecycle.create_slice(ctx, "tenant=beta")
    sid = canary(ctx)
    answers = [
        a.to_dict()
        for a in decide(
            ctx,
            [
                decision(1),
                decision(2, verdict="escalate"),
                decision(3, tenant="beta"),
                decision(4, tenant="beta", verdict="escalate"),
                decision(5, tenant="gamma"),
            ],
        )
    ]
    got = [(a["mode"], a["execute"]) for a in answers]
    assert got == [
        ("canary", True),
        ("canary", False),
        ("shadow", False),
        ("shadow", False),
        ("shadow", False),
    ]
    assert answers[1]["slice_ids"] == [sid]
    assert answers[2]["slice_ids"] == [shadow.id]
    assert (evidence(ctx, sid)["decisions"], evidence(ctx, sid)["executed"]) == (2, 1)
    assert (evidence(ctx, shadow.id)["decisions"], evidence(ctx, shadow.id)["executed"]) == (0, 0)

    lifecycle.promote(ctx, sid, "trusted")
    answers = [a.to_dict() for a in decide(ctx, [decision(6), decision(7, verdict="escalate")])]
    assert [(a["mode"], a["execute"]) for a in answers] == [("active", True), ("active", False)]
    assert (evidence(ctx, sid)["decisions"], evidence(ctx, sid)["executed"]) == (4, 2)


# 3. outcomes -----------------------------------------------------------------------------------------


def test_outcome_by_tenant_and_alert_goes_to_the_latest_decision_on_that_alert(ctx: Context) -> None:
    """An outcome given by tenant + alert_id applies to the latest decision on that alert."""
    s = lifecycle.create_slice(ctx, ACME)
    decide(ctx, [decision("old", alert_id="A-7")])  # answered shadow
    lifecycle.start_canary(ctx, s.id, signed_off_by="ana", reason="pilot")
    decide(ctx, [decision("new", alert_id="A-7", decided_at=iso(T0 + timedelta(hours=1)))])
    result = record_outcomes(ctx, [by_alert("acme", "A-7", "false_positive")])
    assert result.accepted == 1
    assert (evidence(ctx, s.id)["reviewed"], evidence(ctx, s.id)["correct"]) == (1, 1)
    with ctx.db.transaction(write=False) as conn:
        rows = conn.execute(
            text("SELECT d.decision_id FROM outcomes o JOIN decisions d ON d.pk = o.decision_pk")
        ).all()
    assert [r[0] for r in rows] == ["d-new"]


def test_outcome_by_decision_id_counts_for_that_decision(ctx: Context) -> None:
    """An outcome given by decision_id counts for that decision's slice."""
    sid = canary(ctx)
    closes(ctx, range(1, 3))
    record_outcomes(ctx, [outcome(2, "benign_positive")])
    ev = evidence(ctx, sid)
    assert (ev["reviewed"], ev["correct"], ev["incorrect"]) == (1, 0, 1)


@pytest.mark.parametrize(
    "unknown",
    [
        outcome("nope"),
        by_alert("acme", "A-unknown", "false_positive"),
        by_alert("beta", "A-1", "false_positive"),
    ],
)
def test_outcome_for_an_unknown_decision_refuses_the_whole_batch(
    ctx: Context, unknown: dict[str, Any]
) -> None:
    """An outcome naming no recorded decision is BadInput with its index, and nothing is written."""
    sid = canary(ctx)
    closes(ctx, range(1, 3))
    before = footprint(ctx)
    with pytest.raises(BadInput) as caught:
        record_outcomes(ctx, [outcome(1), outcome(2, "true_positive", "incident"), unknown])
    assert [p.index for p in caught.value.problems] == [2]
    assert footprint(ctx) == before
    assert state(ctx, sid) == "canary"


def test_latest_outcome_of_a_decision_counts(ctx: Context) -> None:
    """A later review replaces an earlier one: false_positive then benign_positive is one incorrect."""
    sid = canary(ctx)
    closes(ctx, range(1, 3))
    reviews(ctx, range(1, 2), "false_positive")
    reviews(ctx, range(1, 2), "benign_positive")
    ev = evidence(ctx, sid)
    assert (ev["reviewed"], ev["correct"], ev["incorrect"]) == (1, 0, 1)
    record_outcomes(ctx, [outcome(2, "benign_positive"), outcome(2, "false_positive")])
    ev = evidence(ctx, sid)
    assert (ev["reviewed"], ev["correct"], ev["incorrect"]) == (2, 1, 1)


@pytest.mark.parametrize(
    ("disposition", "source", "expected"),
    [
        ("false_positive", "review", {"reviewed": 1, "correct": 1, "incorrect": 0, "missed_tp": 0}),
        ("benign_positive", "review", {"reviewed": 1, "correct": 0, "incorrect": 1, "missed_tp": 0}),
        ("true_positive", "review", {"reviewed": 1, "correct": 0, "incorrect": 1, "missed_tp": 1}),
        ("undetermined", "review", {"reviewed": 0, "correct": 0, "incorrect": 0, "missed_tp": 0}),
        ("false_positive", "incident", {"reviewed": 0, "correct": 0, "incorrect": 0, "missed_tp": 0}),
        ("benign_positive", "escalation", {"reviewed": 0, "correct": 0, "incorrect": 0, "missed_tp": 0}),
        ("true_positive", "incident", {"reviewed": 0, "correct": 0, "incorrect": 0, "missed_tp": 1}),
        ("true_positive", "escalation", {"reviewed": 0, "correct": 0, "incorrect": 0, "missed_tp": 1}),
    ],
)
def test_disposition_maps_to_evidence(
    ctx: Context, disposition: str, source: str, expected: dict[str, int]
) -> None:
    """On an executed close, each disposition and source lands in exactly the counters of DESIGN §4."""
    sid = canary(ctx, max_missed_tp=5)  # keep the slice live so only the mapping is observed
    closes(ctx, range(1, 2))
    record_outcomes(ctx, [outcome(1, disposition, source)])
    ev = evidence(ctx, sid)
    assert {k: ev[k] for k in expected} == expected
    assert state(ctx, sid) == "canary"


@pytest.mark.parametrize("source", ["incident", "escalation", "review"])
def test_missed_true_positive_rolls_back_within_the_same_call(ctx: Context, source: str) -> None:
    """A true_positive on an executed close rolls back at once, with a kill switch on exactly its scope."""
    sid = canary(ctx, "tenant=acme,rule_family=phishing")
    closes(ctx, range(1, 4))
    result = record_outcomes(ctx, [outcome(1), outcome(2, "true_positive", source)])
    (action,) = result.actions
    assert (action["action"], action["slice_id"], action["trigger"], action["index"]) == (
        "rollback",
        sid,
        "missed_tp",
        1,
    )
    shown = queries.get_slice(ctx, sid)
    assert shown["state"] == "rolled_back"
    (kill,) = queries.list_kill_switches(ctx, active_only=True)
    assert (kill.id, kill.scope.text, kill.slice_id) == (
        action["kill_switch_id"],
        "tenant=acme,rule_family=phishing",
        sid,
    )
    assert shown["kill_switch_id"] == kill.id
    (rolled,) = events(ctx, "canary.rolled_back")
    (activated,) = events(ctx, "kill_switch.activated")
    for event in (rolled, activated):
        assert event.slice_id == sid
        assert event.payload["evidence"]["missed_tp"] == 1
        assert event.payload["policy"]["max_missed_tp"] == 0
    assert rolled.payload["trigger"] == "missed_tp"
    assert activated.seq == rolled.seq + 1
    assert gate(ctx, ALERT).mode is Mode.KILLED


def test_two_missed_true_positives_in_one_batch_roll_back_once(ctx: Context) -> None:
    """A second missed TP in the same batch finds the slice rolled back: one rollback, one kill switch."""
    sid = canary(ctx)
    closes(ctx, range(1, 3))
    result = record_outcomes(
        ctx, [outcome(1, "true_positive", "incident"), outcome(2, "true_positive", "review")]
    )
    assert [(a["slice_id"], a["index"]) for a in result.actions] == [(sid, 0)]
    assert len(events(ctx, "canary.rolled_back")) == 1
    assert len(queries.list_kill_switches(ctx, active_only=True)) == 1


def test_missed_true_positive_rolls_back_every_slice_that_granted_the_execution(ctx: Context) -> None:
    """A close granted by two unrelated canaries is evidence for both, so a missed TP rolls both back."""
    by_tenant = canary(ctx, ACME)
    by_rule = canary(ctx, "rule_family=phishing")
    (answer,) = closes(ctx, range(1, 2))
    assert (answer["execute"], set(answer["slice_ids"])) == (True, {by_tenant, by_rule})
    result = record_outcomes(ctx, [outcome(1, "true_positive", "incident")])
    assert {a["slice_id"] for a in result.actions} == {by_tenant, by_rule}
    assert (state(ctx, by_tenant), state(ctx, by_rule)) == ("rolled_back", "rolled_back")
    scopes = sorted(k.scope.text for k in queries.list_kill_switches(ctx, active_only=True))
    assert scopes == ["rule_family=phishing", "tenant=acme"]


# 4. precision rollback at arrival --------------------------------------------------------------------


def test_three_incorrect_reviews_roll_back_within_the_call_that_brings_the_third(ctx: Context) -> None:
    """Under sequential, the third incorrect review rolls back inside the call that brings it."""
    sid = canary(ctx)
    closes(ctx, range(1, 4))
    assert reviews(ctx, range(1, 3), "benign_positive").actions == []
    assert state(ctx, sid) == "canary"
    result = reviews(ctx, range(3, 4), "benign_positive")
    (action,) = result.actions
    assert (action["slice_id"], action["trigger"]) == (sid, "precision")
    assert state(ctx, sid) == "rolled_back"
    (rolled,) = events(ctx, "canary.rolled_back")
    assert rolled.payload["evidence"]["incorrect"] == 3
    assert rolled.payload["policy"]["evidence"] == "sequential"


@pytest.mark.parametrize(
    ("correct", "incorrect", "rolls_back"), [(16, 4, True), (17, 3, False), (7, 3, True)]
)
def test_sequential_rollback_vectors_at_arrival(
    ctx: Context, correct: int, incorrect: int, rolls_back: bool
) -> None:
    """STATISTICS.md vectors: 3 errors in 10 or 4 in 20 roll back at the last review; 3 in 20 do not."""
    sid = canary(ctx)
    total = correct + incorrect
    closes(ctx, range(1, total + 1))
    assert reviews(ctx, range(1, correct + 1)).actions == []
    assert reviews(ctx, range(correct + 1, total), "benign_positive").actions == []
    assert state(ctx, sid) == "canary"
    last = reviews(ctx, range(total, total + 1), "benign_positive")
    assert [a["slice_id"] for a in last.actions] == ([sid] if rolls_back else [])
    assert state(ctx, sid) == ("rolled_back" if rolls_back else "canary")


def test_three_incorrect_reviews_in_one_batch_roll_back_at_the_third_item(ctx: Context) -> None:
    """In one batch the rollback rules are checked after each outcome: the action names the third item."""
    sid = canary(ctx)
    closes(ctx, range(1, 5))
    result = record_outcomes(ctx, [outcome(i, "benign_positive") for i in range(1, 5)])
    assert [(a["slice_id"], a["index"]) for a in result.actions] == [(sid, 2)]
    assert state(ctx, sid) == "rolled_back"
    assert len(events(ctx, "canary.rolled_back")) == 1


def test_corrections_are_checked_for_rollback_on_arrival(ctx: Context) -> None:
    """Correcting three clean reviews to incorrect rolls back at the third correction."""
    sid = canary(ctx)
    closes(ctx, range(1, 4))
    reviews(ctx, range(1, 4))
    assert reviews(ctx, range(1, 3), "benign_positive").actions == []
    assert state(ctx, sid) == "canary"
    (action,) = reviews(ctx, range(3, 4), "benign_positive").actions
    assert (action["slice_id"], action["trigger"]) == (sid, "precision")
    ev = evidence(ctx, sid)
    assert (ev["reviewed"], ev["correct"], ev["incorrect"]) == (3, 0, 3)


def test_point_evidence_waits_for_min_reviews_before_a_precision_rollback(ctx: Context) -> None:
    """Under evidence=point, no precision rollback comes before min_reviews_to_judge_rollback reviews."""
    policy.set_policy(ctx, {"evidence": "point"})
    sid = canary(ctx)
    closes(ctx, range(1, 21))
    assert reviews(ctx, range(1, 20), "benign_positive").actions == []
    ev = evidence(ctx, sid)
    assert (state(ctx, sid), ev["reviewed"], ev["incorrect"]) == ("canary", 19, 19)
    (action,) = reviews(ctx, range(20, 21), "benign_positive").actions
    assert (action["slice_id"], action["trigger"]) == (sid, "precision")
    assert state(ctx, sid) == "rolled_back"


# 5. promotion, hold and monitoring by the evaluator ----------------------------------------------------


def test_93_clean_reviews_after_7_days_promote_on_evaluate(ctx: Context) -> None:
    """93 clean reviews and age >= 7 d promote, only when evaluate runs; the event says forced false."""
    sid = canary(ctx)
    closes(ctx, range(1, 94))
    assert reviews(ctx, range(1, 94)).actions == []
    ctx.clock.advance(timedelta(days=7))
    assert state(ctx, sid) == "canary"  # outcomes never promote
    result = result_for(evaluate.evaluate(ctx), sid)
    assert result["action"] == "promote"
    shown = queries.get_slice(ctx, sid)
    assert (shown["state"], shown["promoted_at"]) == ("active", iso(T0 + timedelta(days=7)))
    (promoted,) = events(ctx, "canary.promoted")
    assert promoted.payload["forced"] is False
    assert promoted.payload["evidence"]["correct"] == 93
    assert promoted.payload["policy"]["promote_after_days"] == 7


def test_92_clean_reviews_continue_naming_what_is_missing(ctx: Context) -> None:
    """92 clean reviews at 7 d continue, and the reasons name the one clean review still missing."""
    sid = canary(ctx)
    closes(ctx, range(1, 93))
    reviews(ctx, range(1, 93))
    ctx.clock.advance(timedelta(days=7))
    result = result_for(evaluate.evaluate(ctx), sid)
    assert result["action"] == "continue"
    assert "1 more clean review" in reasons_text(result)
    assert "age" not in reasons_text(result)
    assert state(ctx, sid) == "canary"
    assert events(ctx, "canary.promoted") == []


def test_young_canary_continues_naming_the_missing_days(ctx: Context) -> None:
    """A canary with enough clean reviews but younger than 7 d continues; the reasons name the age."""
    sid = canary(ctx)
    closes(ctx, range(1, 94))
    reviews(ctx, range(1, 94))
    ctx.clock.advance(timedelta(days=6))
    result = result_for(evaluate.evaluate(ctx), sid)
    assert result["action"] == "continue"
    assert "age 6.0 d < 7 d" in reasons_text(result)
    assert "clean review" not in reasons_text(result)
    assert state(ctx, sid) == "canary"


def test_rollback_is_checked_before_promotion_and_a_second_evaluate_adds_nothing(ctx: Context) -> None:
    """evaluate rolls back a canary meeting a rollback rule at promotion age; again, it writes nothing."""
    sid = canary(ctx, max_missed_tp=1)
    closes(ctx, range(1, 96))
    record_outcomes(ctx, [outcome(95, "true_positive", "incident")])
    reviews(ctx, range(1, 95))
    ctx.clock.advance(timedelta(days=8))
    assert evidence(ctx, sid)["missed_tp"] == 1
    # tighten the rule: the same evidence now calls for a rollback (set_slice_policy itself judges nothing)
    lifecycle.set_slice_policy(ctx, sid, {"max_missed_tp": 0})
    assert state(ctx, sid) == "canary"
    result = result_for(evaluate.evaluate(ctx), sid)
    assert result["action"] == "rollback"
    assert state(ctx, sid) == "rolled_back"
    assert events(ctx, "canary.promoted") == []
    (rolled,) = events(ctx, "canary.rolled_back")
    assert rolled.payload["trigger"] == "missed_tp"
    seen = len(events(ctx))
    assert evaluate.evaluate(ctx).results == []
    assert len(events(ctx)) == seen


def test_undecided_canary_is_held_once_at_hold_after_days_and_stays_canary(ctx: Context) -> None:
    """Grey-zone evidence at hold_after_days emits canary.held once, stays canary, and may still promote."""
    sid = canary(ctx)
    closes(ctx, range(1, 42))
    reviews(ctx, range(1, 41))
    reviews(ctx, range(41, 42), "benign_positive")
    ctx.clock.advance(timedelta(days=27))
    assert result_for(evaluate.evaluate(ctx), sid)["action"] == "continue"
    ctx.clock.advance(timedelta(days=1))
    assert result_for(evaluate.evaluate(ctx), sid)["action"] == "hold"
    assert result_for(evaluate.evaluate(ctx), sid)["action"] == "hold"
    (held,) = events(ctx, "canary.held")
    assert held.slice_id == sid
    assert held.payload["evidence"]["incorrect"] == 1
    shown = queries.get_slice(ctx, sid)
    assert (shown["state"], shown["held_at"]) == ("canary", iso(T0 + timedelta(days=28)))
    # on_hold=keep: automatic promotion still happens once the evidence is strong enough
    closes(ctx, range(42, 242))
    reviews(ctx, range(42, 242))
    assert result_for(evaluate.evaluate(ctx), sid)["action"] == "promote"
    assert len(events(ctx, "canary.held")) == 1


def test_one_error_then_clean_reviews_promote_at_review_132(ctx: Context) -> None:
    """STATISTICS.md vector: one incorrect review then correct ones promote at review 132, not 131."""
    sid = canary(ctx)
    closes(ctx, range(1, 133))
    reviews(ctx, range(1, 2), "benign_positive")
    reviews(ctx, range(2, 132))
    ctx.clock.advance(timedelta(days=7))
    result = result_for(evaluate.evaluate(ctx), sid)
    assert (result["action"], state(ctx, sid)) == ("continue", "canary")
    assert "1 more clean review" in reasons_text(result)
    reviews(ctx, range(132, 133))
    assert result_for(evaluate.evaluate(ctx), sid)["action"] == "promote"
    assert state(ctx, sid) == "active"


def test_point_evidence_promotes_after_min_reviews_to_promote(ctx: Context) -> None:
    """Under evidence=point, promotion needs min_reviews_to_promote reviews at >= promote_min_precision."""
    sid = canary(ctx, evidence="point")
    closes(ctx, range(1, 31))
    reviews(ctx, range(1, 30))
    ctx.clock.advance(timedelta(days=7))
    assert result_for(evaluate.evaluate(ctx), sid)["action"] == "continue"
    reviews(ctx, range(30, 31))
    assert result_for(evaluate.evaluate(ctx), sid)["action"] == "promote"
    (promoted,) = events(ctx, "canary.promoted")
    assert promoted.payload["policy"]["evidence"] == "point"


def test_on_hold_pause_rolls_back_at_hold_after_days(ctx: Context) -> None:
    """With on_hold=pause, an undecided canary at hold_after_days is rolled back with trigger hold."""
    sid = canary(ctx, on_hold="pause")
    ctx.clock.advance(timedelta(days=28))
    result = result_for(evaluate.evaluate(ctx), sid)
    assert result["action"] == "rollback"
    assert state(ctx, sid) == "rolled_back"
    (rolled,) = events(ctx, "canary.rolled_back")
    assert rolled.payload["trigger"] == "hold"
    assert events(ctx, "canary.held") == []
    (kill,) = queries.list_kill_switches(ctx, active_only=True)
    assert kill.scope.text == ACME


def test_active_slice_keeps_the_rollback_rules(ctx: Context) -> None:
    """A missed TP on a promoted slice rolls it back at arrival (monitor_active on by default)."""
    sid = canary(ctx)
    lifecycle.promote(ctx, sid, "trusted")
    closes(ctx, range(1, 3))
    (action,) = record_outcomes(ctx, [outcome(1, "true_positive", "escalation")]).actions
    assert action["slice_id"] == sid
    assert state(ctx, sid) == "rolled_back"


def test_active_slice_is_not_rolled_back_automatically_when_monitor_active_is_off(ctx: Context) -> None:
    """With monitor_active=false, an active slice is never rolled back automatically."""
    sid = canary(ctx, monitor_active=False)
    lifecycle.promote(ctx, sid, "trusted")
    closes(ctx, range(1, 6))
    result = record_outcomes(
        ctx,
        [outcome(1, "true_positive", "incident"), *(outcome(i, "benign_positive") for i in range(2, 6))],
    )
    assert result.actions == []
    assert result_for(evaluate.evaluate(ctx), sid)["action"] == "continue"
    ev = evidence(ctx, sid)
    assert (state(ctx, sid), ev["missed_tp"], ev["incorrect"]) == ("active", 1, 4)
    assert events(ctx, "canary.rolled_back") == []
    lifecycle.roll_back(ctx, sid, "manual still works")
    assert state(ctx, sid) == "rolled_back"


# 6. shadow go-live -----------------------------------------------------------------------------------


def _shadow_history(ctx: Context, ids: range, **over: Any) -> None:
    """Shadow closes d-<i> that analysts confirmed as false positives."""
    decide(ctx, [decision(i, **over) for i in ids])
    record_outcomes(ctx, [outcome(i) for i in ids])


def test_if_ready_start_refuses_on_thin_shadow_evidence_naming_each_criterion(ctx: Context) -> None:
    """An if-ready start on thin shadow evidence is CriteriaNotMet naming each unmet criterion."""
    s = lifecycle.create_slice(ctx, ACME)
    decide(ctx, [decision(1), decision(2), decision(3, verdict="escalate"), decision(4)])
    record_outcomes(
        ctx,
        [
            outcome(1),
            outcome(2, "true_positive", "incident"),
            outcome(3, "false_positive"),
            outcome(4, "undetermined"),
        ],
    )
    before = footprint(ctx)
    with pytest.raises(CriteriaNotMet) as caught:
        lifecycle.start_canary(ctx, s.id, if_ready=True)
    unmet = caught.value.unmet
    assert len(unmet) == 4
    assert "shadow_min_decisions" in unmet[0] and "3 <" in unmet[0]
    assert "agreement" in unmet[1]
    assert "close precision" in unmet[2]
    assert "missed TP" in unmet[3]
    assert footprint(ctx) == before
    shown = queries.get_slice(ctx, s.id)
    assert shown["shadow"] == {
        "decisions": 4,
        "with_outcome": 3,
        "agreement": pytest.approx(1 / 3, abs=1e-6),
        "close_precision": 0.5,
        "missed_tp": 1,
    }


def test_if_ready_start_succeeds_on_enough_shadow_evidence_and_records_it(ctx: Context) -> None:
    """With enough shadow evidence an if-ready start begins attempt 1 and canary.started records it."""
    policy.set_policy(ctx, {"shadow_min_decisions": 10})
    s = lifecycle.create_slice(ctx, ACME)
    _shadow_history(ctx, range(1, 10))
    decide(ctx, [decision(10, verdict="escalate"), decision(11, tenant="beta")])
    record_outcomes(ctx, [outcome(10, "benign_positive"), outcome(11, "true_positive")])
    started = lifecycle.start_canary(ctx, s.id, if_ready=True)
    assert (started.state.value, started.attempt) == ("canary", 1)
    (event,) = events(ctx, "canary.started")
    assert event.payload["if_ready"] is True
    assert event.payload["attempt"] == 1
    assert event.payload["shadow"] == {
        "decisions": 10,
        "with_outcome": 10,
        "agreement": 1.0,
        "close_precision": 1.0,
        "missed_tp": 0,
    }
    assert event.payload["policy"]["shadow_min_decisions"] == 10


def test_if_ready_start_with_fifty_real_shadow_decisions(ctx: Context) -> None:
    """Under the default policy, 50 agreeing shadow decisions with outcomes are enough to go live."""
    s = lifecycle.create_slice(ctx, ACME)
    _shadow_history(ctx, range(1, 50))
    with pytest.raises(CriteriaNotMet) as caught:
        lifecycle.start_canary(ctx, s.id, if_ready=True)
    assert caught.value.unmet == ["shadow decisions with an outcome: 49 < shadow_min_decisions 50"]
    _shadow_history(ctx, range(50, 51))
    assert lifecycle.start_canary(ctx, s.id, if_ready=True).state.value == "canary"


def test_sign_off_start_records_who_and_why(ctx: Context) -> None:
    """A sign-off start needs no shadow evidence and records signed_off_by, the reason and the actor."""
    s = lifecycle.create_slice(ctx, ACME)
    with pytest.raises(BadInput):
        lifecycle.start_canary(ctx, s.id, signed_off_by="ana")
    started = lifecycle.start_canary(ctx.as_user("lead"), s.id, signed_off_by="ana", reason="pilot approved")
    assert (started.state.value, started.attempt, started.canary_started_at) == ("canary", 1, T0)
    (event,) = events(ctx, "canary.started")
    assert (event.payload["signed_off_by"], event.payload["reason"]) == ("ana", "pilot approved")
    assert event.payload["if_ready"] is False
    assert event.actor == {"type": "user", "id": "lead"}
    with pytest.raises(NotAllowed):
        lifecycle.start_canary(ctx, s.id, signed_off_by="ana", reason="again")


def test_only_shadow_decisions_within_the_window_count(ctx: Context) -> None:
    """Shadow decisions older than shadow_window_days no longer count toward go-live."""
    policy.set_policy(ctx, {"shadow_min_decisions": 10})
    s = lifecycle.create_slice(ctx, ACME)
    _shadow_history(ctx, range(1, 11))
    ctx.clock.advance(timedelta(days=13, hours=23))
    assert queries.get_slice(ctx, s.id)["shadow"]["with_outcome"] == 10
    ctx.clock.advance(timedelta(hours=2))
    assert queries.get_slice(ctx, s.id)["shadow"]["with_outcome"] == 0
    with pytest.raises(CriteriaNotMet) as caught:
        lifecycle.start_canary(ctx, s.id, if_ready=True)
    assert "0 < shadow_min_decisions 10" in caught.value.unmet[0]
    _shadow_history(ctx, range(11, 21), decided_at=iso(ctx.clock.now()))
    started = lifecycle.start_canary(ctx, s.id, if_ready=True)
    assert started.state.value == "canary"
    assert events(ctx, "canary.started")[0].payload["shadow"]["with_outcome"] == 10


def test_killed_decisions_are_not_shadow_evidence(ctx: Context) -> None:
    """Decisions answered killed do not count as shadow evidence."""
    policy.set_policy(ctx, {"shadow_min_decisions": 5})
    s = lifecycle.create_slice(ctx, ACME)
    kill = kills.activate(ctx, "", "incident")
    _shadow_history(ctx, range(1, 6))
    assert queries.get_slice(ctx, s.id)["shadow"]["decisions"] == 0
    kills.deactivate(ctx, kill.id, "over")
    _shadow_history(ctx, range(6, 11))
    assert queries.get_slice(ctx, s.id)["shadow"]["with_outcome"] == 5


# 7. forced promotion, manual rollback, reset, cool-down -------------------------------------------------


def test_forced_promotion_is_audited_as_forced(ctx: Context) -> None:
    """promote() makes a canary active at once and canary.promoted says forced true with its reason."""
    s = lifecycle.create_slice(ctx, ACME)
    with pytest.raises(NotAllowed):
        lifecycle.promote(ctx, s.id, "too early")
    lifecycle.start_canary(ctx, s.id, signed_off_by="ana", reason="pilot")
    promoted = lifecycle.promote(ctx, s.id, "board decision")
    assert (promoted.state.value, promoted.promoted_at) == ("active", T0)
    (event,) = events(ctx, "canary.promoted")
    assert event.payload["forced"] is True
    assert "board decision" in " ".join(event.payload["reasons"])
    assert {"evidence", "policy"} <= set(event.payload)
    with pytest.raises(NotAllowed):
        lifecycle.promote(ctx, s.id, "twice")


def test_manual_rollback_kills_the_scope_with_a_reason(ctx: Context) -> None:
    """A manual rollback moves the slice to rolled_back with a kill switch on its scope, trigger manual."""
    sid = canary(ctx)
    rolled = lifecycle.roll_back(ctx.as_user("oncall"), sid, "odd closures")
    assert rolled.state.value == "rolled_back"
    (event,) = events(ctx, "canary.rolled_back")
    assert event.payload["trigger"] == "manual"
    assert "odd closures" in " ".join(event.payload["reasons"])
    assert event.actor == {"type": "user", "id": "oncall"}
    (kill,) = queries.list_kill_switches(ctx, active_only=True)
    assert (kill.scope.text, kill.id) == (ACME, rolled.kill_switch_id)
    with pytest.raises(NotAllowed):
        lifecycle.roll_back(ctx, sid, "again")


def test_rollback_kill_switch_is_released_only_by_reset(ctx: Context) -> None:
    """A rollback's kill switch cannot be deactivated directly; reset releases it with both events."""
    sid = canary(ctx)
    kill_id = lifecycle.roll_back(ctx, sid, "drill").kill_switch_id
    assert kill_id is not None
    before = footprint(ctx)
    with pytest.raises(NotAllowed) as caught:
        kills.deactivate(ctx, kill_id, "shortcut")
    assert "reset" in str(caught.value)
    assert footprint(ctx) == before

    ctx.clock.advance(timedelta(hours=1))
    reset = lifecycle.reset(ctx, sid, "fixed the prompt")
    assert (reset.state.value, reset.attempt, reset.kill_switch_id) == ("shadow", 1, None)
    assert queries.list_kill_switches(ctx, active_only=True) == []
    (kill,) = queries.list_kill_switches(ctx)
    assert (kill.active, kill.deactivated_at) == (False, T0 + timedelta(hours=1))
    tail = events(ctx)[-2:]
    assert sorted(e.type for e in tail) == ["kill_switch.deactivated", "slice.reset"]
    assert tail[0].at == tail[1].at == iso(T0 + timedelta(hours=1))
    deactivated = next(e for e in tail if e.type == "kill_switch.deactivated")
    assert deactivated.payload["kill_switch"]["id"] == kill_id
    assert gate(ctx, ALERT).mode is Mode.SHADOW
    with pytest.raises(NotAllowed):
        lifecycle.reset(ctx, sid, "twice")


def test_new_canary_after_reset_is_attempt_two_with_empty_evidence(ctx: Context) -> None:
    """After a reset the next canary is attempt 2 with empty evidence; late attempt-1 outcomes don't count."""
    sid = canary(ctx)
    closes(ctx, range(1, 6))
    record_outcomes(ctx, [outcome(1), outcome(2, "true_positive", "incident")])
    assert state(ctx, sid) == "rolled_back"
    lifecycle.reset(ctx, sid, "retrained")
    assert evidence(ctx, sid)["decisions"] == 0
    ctx.clock.advance(timedelta(hours=25))
    started = lifecycle.start_canary(ctx, sid, signed_off_by="ana", reason="second try")
    assert started.attempt == 2
    ev = evidence(ctx, sid)
    assert (ev["decisions"], ev["executed"], ev["reviewed"], ev["missed_tp"]) == (0, 0, 0, 0)
    assert events(ctx, "canary.started")[-1].payload["attempt"] == 2
    result = record_outcomes(ctx, [outcome(3, "true_positive", "incident"), outcome(4, "benign_positive")])
    assert result.actions == []
    assert state(ctx, sid) == "canary"
    ev = evidence(ctx, sid)
    assert (ev["reviewed"], ev["missed_tp"]) == (0, 0)


def test_cooldown_refuses_an_early_start_unless_overridden_with_a_reason(ctx: Context) -> None:
    """Within cooldown_hours of a rollback a new canary is refused unless overridden with a reason."""
    sid = canary(ctx)
    lifecycle.roll_back(ctx, sid, "drill")
    ctx.clock.advance(timedelta(hours=2))
    lifecycle.reset(ctx, sid, "done")
    before = footprint(ctx)
    with pytest.raises(CriteriaNotMet) as caught:
        lifecycle.start_canary(ctx, sid, signed_off_by="ana", reason="retry")
    assert any("cool-down" in u for u in caught.value.unmet)
    with pytest.raises(BadInput):
        lifecycle.start_canary(ctx, sid, signed_off_by="ana", override_cooldown=True)
    assert footprint(ctx) == before
    started = lifecycle.start_canary(
        ctx, sid, signed_off_by="ana", reason="hotfix verified", override_cooldown=True
    )
    assert (started.state.value, started.attempt) == ("canary", 2)
    event = events(ctx, "canary.started")[-1]
    assert event.payload["cooldown_overridden"] is True
    assert event.payload["reason"] == "hotfix verified"


def test_cooldown_is_over_after_cooldown_hours(ctx: Context) -> None:
    """Once cooldown_hours have passed since the rollback, a new canary starts without override."""
    sid = canary(ctx)
    lifecycle.roll_back(ctx, sid, "drill")
    lifecycle.reset(ctx, sid, "done")
    ctx.clock.advance(timedelta(hours=23, minutes=59))
    with pytest.raises(CriteriaNotMet):
        lifecycle.start_canary(ctx, sid, signed_off_by="ana", reason="retry")
    ctx.clock.advance(timedelta(minutes=1))
    started = lifecycle.start_canary(ctx, sid, signed_off_by="ana", reason="retry")
    assert started.attempt == 2
    assert events(ctx, "canary.started")[-1].payload["cooldown_overridden"] is False


# 8. kill switches ------------------------------------------------------------------------------------


def test_global_kill_switch_kills_every_alert(ctx: Context) -> None:
    """A kill switch on the empty scope answers killed for every alert, naming the switch."""
    sid = canary(ctx)
    kill = kills.activate(ctx, "", "incident in progress")
    assert kill.scope.text == ""
    for alert in (ALERT, {**ALERT, "tenant": "beta", "severity": "95"}):
        answer = gate(ctx, alert)
        assert (answer.mode, answer.execute, answer.slice_ids, answer.kill_switch_id) == (
            Mode.KILLED,
            False,
            (),
            kill.id,
        )
    (answer,) = closes(ctx, range(1, 2))
    assert (answer["mode"], answer["execute"], answer["slice_ids"], answer["kill_switch_id"]) == (
        "killed",
        False,
        [],
        kill.id,
    )
    assert evidence(ctx, sid)["decisions"] == 0
    (event,) = events(ctx, "kill_switch.activated")
    assert event.payload["kill_switch"]["id"] == kill.id
    kills.deactivate(ctx, kill.id, "over")
    assert gate(ctx, ALERT).mode is Mode.CANARY
    assert [e.type for e in events(ctx)][-1] == "kill_switch.deactivated"


def test_rolled_back_broad_slice_kills_its_carve_outs_and_lists_them(ctx: Context) -> None:
    """Rolling back a broad slice kills its carve-outs, and the rollback event lists them in silenced."""
    broad = canary(ctx, ACME)
    carve = canary(ctx, "tenant=acme,rule_family=phishing")
    other = canary(ctx, "tenant=beta,rule_family=phishing")
    assert gate(ctx, ALERT).slice_ids == (carve,)
    closes(ctx, range(1, 2), rule_family="malware")
    result = record_outcomes(ctx, [outcome(1, "true_positive", "incident")])
    (action,) = result.actions
    assert action["slice_id"] == broad
    (rolled,) = events(ctx, "canary.rolled_back")
    assert rolled.payload["silenced"] == [carve]
    answer = gate(ctx, ALERT)
    assert (answer.mode, answer.kill_switch_id, answer.slice_ids) == (
        Mode.KILLED,
        action["kill_switch_id"],
        (),
    )
    assert gate(ctx, {**ALERT, "tenant": "beta"}).mode is Mode.CANARY
    assert (state(ctx, carve), state(ctx, other)) == ("canary", "canary")


# 9. policy -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"promote_min_precision": 1.5}, "promote_min_precision"),
        ({"rollback_below_precision": -0.1}, "rollback_below_precision"),
        ({"shadow_min_agreement": 2}, "shadow_min_agreement"),
        ({"alpha_promote": 0}, "alpha_promote"),
        ({"alpha_rollback": 1}, "alpha_rollback"),
        ({"prior_a": 0}, "prior_a"),
        ({"prior_b": -1}, "prior_b"),
        ({"rollback_below_precision": 0.99}, "rollback_below_precision"),
        ({"promote_min_precision": 0.9}, "rollback_below_precision"),
        ({"colour": "red"}, "colour"),
        ({"evidence": "vibes"}, "evidence"),
    ],
)
def test_set_policy_validates_and_writes_nothing_on_error(
    ctx: Context, change: dict[str, Any], field: str
) -> None:
    """An invalid global policy change is BadInput naming the field, and nothing is written."""
    before, trail = policy.show_policy(ctx), footprint(ctx)
    with pytest.raises(BadInput) as caught:
        policy.set_policy(ctx, change)
    assert [p.field() for p in caught.value.problems] == [field]
    assert policy.show_policy(ctx) == before
    assert footprint(ctx) == trail


def test_valid_policy_change_is_audited_and_applies_to_running_attempts_at_once(ctx: Context) -> None:
    """A valid global change emits policy.changed and the very next evaluation of a running canary uses it."""
    sid = canary(ctx)
    closes(ctx, range(1, 94))
    reviews(ctx, range(1, 94))
    ctx.clock.advance(timedelta(days=3))
    assert result_for(evaluate.evaluate(ctx), sid)["action"] == "continue"
    after = policy.set_policy(ctx, {"promote_after_days": "2"})
    assert after.promote_after_days == 2
    (changed,) = events(ctx, "policy.changed")
    assert changed.payload["changed"] == {"promote_after_days": 2.0}
    assert (
        changed.payload["before"]["promote_after_days"],
        changed.payload["after"]["promote_after_days"],
    ) == (7, 2)
    assert queries.get_slice(ctx, sid)["policy"]["promote_after_days"] == 2
    assert result_for(evaluate.evaluate(ctx), sid)["action"] == "promote"
    assert events(ctx, "canary.promoted")[0].payload["policy"]["promote_after_days"] == 2


def test_global_change_of_max_missed_tp_applies_at_arrival(ctx: Context) -> None:
    """A global max_missed_tp change governs the very next outcome of a running canary."""
    sid = canary(ctx)
    closes(ctx, range(1, 3))
    policy.set_policy(ctx, {"max_missed_tp": 1})
    assert record_outcomes(ctx, [outcome(1, "true_positive", "incident")]).actions == []
    assert state(ctx, sid) == "canary"
    (action,) = record_outcomes(ctx, [outcome(2, "true_positive", "incident")]).actions
    assert action["slice_id"] == sid


def test_slice_policy_overrides_only_that_slice(ctx: Context) -> None:
    """set_slice_policy emits slice.policy_changed and changes that slice's rules only."""
    acme = canary(ctx, ACME)
    beta = canary(ctx, "tenant=beta")
    changed = lifecycle.set_slice_policy(ctx, acme, {"max_missed_tp": "1"})
    assert changed.policy_overrides == {"max_missed_tp": 1}
    (event,) = events(ctx, "slice.policy_changed")
    assert (event.slice_id, event.payload["changed"]) == (acme, {"max_missed_tp": 1})
    assert queries.get_slice(ctx, acme)["policy"]["max_missed_tp"] == 1
    assert queries.get_slice(ctx, beta)["policy"]["max_missed_tp"] == 0
    assert policy.show_policy(ctx).max_missed_tp == 0
    closes(ctx, range(1, 2))
    closes(ctx, range(2, 3), tenant="beta")
    result = record_outcomes(
        ctx, [outcome(1, "true_positive", "incident"), outcome(2, "true_positive", "incident")]
    )
    assert [a["slice_id"] for a in result.actions] == [beta]
    assert (state(ctx, acme), state(ctx, beta)) == ("canary", "rolled_back")
    before = footprint(ctx)
    with pytest.raises(BadInput):
        lifecycle.set_slice_policy(ctx, acme, {"rollback_below_precision": 0.99})
    assert footprint(ctx) == before


# 10. recompute ---------------------------------------------------------------------------------------


def test_recompute_finds_no_difference_then_repairs_a_corrupted_counter(ctx: Context) -> None:
    """evaluate(recompute) agrees with the counters after corrections, and repairs a tampered one."""
    acme = canary(ctx, ACME, max_missed_tp=3)
    beta = canary(ctx, "tenant=beta", max_missed_tp=3)
    closes(ctx, range(1, 21))
    closes(ctx, range(21, 41), tenant="beta")
    decide(ctx, [decision(41, verdict="escalate"), decision(42, verdict="escalate", tenant="beta")])
    record_outcomes(ctx, [outcome(i) for i in (*range(1, 15), *range(21, 35))])
    record_outcomes(
        ctx,
        [
            outcome(15, "benign_positive"),
            outcome(16, "true_positive", "incident"),
            outcome(17, "undetermined"),
            outcome(35, "benign_positive"),
            outcome(41, "true_positive", "escalation"),
            by_alert("beta", "A-36", "false_positive"),
        ],
    )
    # corrections: a decision's disposition changes later, in place in the review stream
    record_outcomes(
        ctx,
        [
            outcome(3, "benign_positive"),
            outcome(15, "false_positive"),
            outcome(17, "false_positive"),
            outcome(16, "false_positive", "incident"),
            by_alert("beta", "A-35", "false_positive"),
            outcome(22, "true_positive", "incident"),
            outcome(36, "undetermined"),
        ],
    )
    cached = {sid: evidence(ctx, sid) for sid in (acme, beta)}
    assert {k: cached[acme][k] for k in ("correct", "incorrect", "missed_tp")} == {
        "correct": 15,
        "incorrect": 1,
        "missed_tp": 0,
    }
    # beta: d-22's latest outcome is an incident, so its earlier review no longer counts; d-36 is undetermined
    assert {k: cached[beta][k] for k in ("correct", "incorrect", "missed_tp")} == {
        "correct": 14,
        "incorrect": 0,
        "missed_tp": 1,
    }
    clean = evaluate.evaluate(ctx, recompute=True)
    assert clean.differences == []
    assert clean.to_dict()["recompute"] == {"differences": [], "ok": True}

    with ctx.db.transaction(write=True) as conn:
        conn.execute(text("UPDATE slices SET ev_correct = ev_correct + 5"))
    assert evidence(ctx, acme)["correct"] == 20
    repaired = evaluate.evaluate(ctx, recompute=True)
    diffs = {d["slice_id"]: d for d in repaired.differences}
    assert set(diffs) == {acme, beta}
    for sid in (acme, beta):
        assert diffs[sid]["cached"]["correct"] == diffs[sid]["rebuilt"]["correct"] + 5
        assert diffs[sid]["rebuilt"]["correct"] == cached[sid]["correct"]
    assert repaired.to_dict()["recompute"]["ok"] is False
    assert {sid: evidence(ctx, sid) for sid in (acme, beta)} == cached
    assert evaluate.evaluate(ctx, recompute=True).differences == []


# 11. one transaction per command ---------------------------------------------------------------------


def test_failing_decision_batch_leaves_no_trace(ctx: Context) -> None:
    """A decision batch whose last item is bad leaves no decision, no audit event and no counter change."""
    sid = canary(ctx)
    closes(ctx, range(1, 3))
    before, ev = footprint(ctx), evidence(ctx, sid)
    with pytest.raises(BadInput) as caught:
        decide(ctx, [*(decision(i) for i in range(3, 13)), decision(13, confidence=7)])
    assert caught.value.problems[0].index == 10
    assert footprint(ctx) == before
    assert evidence(ctx, sid) == ev


def test_failing_outcome_batch_leaves_no_trace_even_after_a_rollback_within_it(ctx: Context) -> None:
    """A rollback-triggering outcome batch ending in a bad item leaves no outcome, event or counter change."""
    sid = canary(ctx)
    closes(ctx, range(1, 6))
    reviews(ctx, range(1, 2))
    before, ev, trail = footprint(ctx), evidence(ctx, sid), len(events(ctx))
    with pytest.raises(BadInput) as caught:
        record_outcomes(
            ctx,
            [
                outcome(2, "benign_positive"),
                outcome(3, "true_positive", "incident"),
                outcome(4),
                outcome(5, "maybe"),
            ],
        )
    assert caught.value.problems[0].index == 3
    assert footprint(ctx) == before
    assert evidence(ctx, sid) == ev
    assert len(events(ctx)) == trail
    assert state(ctx, sid) == "canary"
    assert queries.list_kill_switches(ctx) == []
    assert gate(ctx, ALERT).mode is Mode.CANARY


def test_failing_outcome_batch_after_a_rollback_in_the_database_phase_leaves_no_trace(ctx: Context) -> None:
    """An unknown decision after an item that would roll back undoes the whole batch, rollback included."""
    sid = canary(ctx)
    closes(ctx, range(1, 3))
    before = footprint(ctx)
    with pytest.raises(BadInput):
        record_outcomes(ctx, [outcome(1, "true_positive", "incident"), outcome(2), outcome("ghost")])
    assert footprint(ctx) == before
    assert state(ctx, sid) == "canary"
    assert events(ctx, "canary.rolled_back") == []


def test_text_with_a_nul_character_is_refused_alike_on_every_database(ctx: Context) -> None:
    """PostgreSQL cannot store U+0000 in text, so no database takes it: each way in refuses it as bad input
    naming the field, and nothing is written."""
    sid = lifecycle.create_slice(ctx, "tenant=acme").id
    lifecycle.start_canary(ctx, sid, signed_off_by="lead", reason="pilot")
    before = footprint(ctx)
    attempts = {
        "scope": lambda: lifecycle.create_slice(ctx, "tenant=a\x00b"),
        "reason": lambda: kills.activate(ctx, "tenant=acme", "drill\x00"),
        "decision_id": lambda: decide(ctx, [decision(1), decision("2\x00")]),
        "tenant": lambda: decide(ctx, [decision(3, tenant="ac\x00me")]),
        "source": lambda: record_outcomes(ctx, [outcome(1, source="rev\x00iew")]),
    }
    for name, attempt in attempts.items():
        with pytest.raises(BadInput, match=f"{name}: must not contain the NUL character"):
            attempt()
    with pytest.raises(BadInput, match="reason: must not contain the NUL character"):
        lifecycle.roll_back(ctx, sid, "bad\x00")
    assert footprint(ctx) == before
    assert state(ctx, sid) == "canary"
