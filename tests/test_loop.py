"""Closing the evidence loop (DESIGN §9) through the library and the CLI, on real SQLite in virtual time."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import T0, Cli, decision, iso, outcome
from tether.bootstrap import build
from tether.config import Settings
from tether.domain.audit import AuditEvent
from tether.domain.errors import BadInput, CriteriaNotMet, NotFound
from tether.services import audit, evaluate, lifecycle, policy, queries, setup
from tether.services.context import Context, FixedClock
from tether.services.decide import decide
from tether.services.outcomes import record_outcomes
from tether.store.sql import AuditFilter

ACME = "tenant=acme"


# helpers ---------------------------------------------------------------------------------------------


def events(ctx: Context, type_: str, slice_id: str | None = None) -> list[AuditEvent]:
    return audit.list_events(ctx, AuditFilter(slice_id=slice_id, type=type_))


def show(ctx: Context, slice_id: str) -> dict[str, Any]:
    return dict(queries.get_slice(ctx, slice_id))


def evidence(ctx: Context, slice_id: str) -> dict[str, Any]:
    return dict(show(ctx, slice_id)["evidence"])


def canary(ctx: Context, scope: str = ACME, **overrides: Any) -> str:
    """A slice on `scope`, started as a canary by sign-off; returns its id."""
    s = lifecycle.create_slice(ctx, scope, overrides or None)
    lifecycle.start_canary(ctx, s.id, signed_off_by="ana", reason="pilot")
    return s.id


def answers(ctx: Context, ids: range | list[int], **over: Any) -> list[dict[str, Any]]:
    """Send decisions d-<i> (close unless overridden); returns the answers as dicts."""
    return [a.to_dict() for a in decide(ctx, [decision(i, **over) for i in ids])]


def sampled_ids(found: list[dict[str, Any]]) -> set[str]:
    return {a["decision_id"] for a in found if a["review"]}


def reviews(ctx: Context, ids: Any, disposition: str = "false_positive", source: str = "review") -> Any:
    return record_outcomes(ctx, [outcome(i, disposition, source) for i in ids])


def number(decision_id: str) -> int:
    return int(decision_id.removeprefix("d-"))


def kill_switches(ctx: Context) -> list[Any]:
    return queries.list_kill_switches(ctx, active_only=True)


@pytest.fixture
def shell(ctx: Context, tmp_path: Path, db_url: str) -> Cli:
    """The real `tether` executable on the database `ctx` initialised, at the same virtual time."""
    return Cli(tmp_path, db_url)


# 1. review sampling ------------------------------------------------------------------------------------


def test_executed_closes_in_canary_carry_a_review_flag_sampled_at_the_canary_rate(ctx: Context) -> None:
    """Every answer has `review`; executed closes in canary are sampled near review_rate_canary (0.25)."""
    canary(ctx)
    found = answers(ctx, range(400))
    assert all(a["mode"] == "canary" and a["execute"] for a in found)
    assert all(isinstance(a["review"], bool) for a in found)
    share = len(sampled_ids(found)) / 400
    assert 0.17 <= share <= 0.33, share  # 0.25 ± 3.5 standard deviations
    escalations = answers(ctx, range(1000, 1100), verdict="escalate")
    assert all(a["mode"] == "canary" and not a["execute"] and a["review"] is False for a in escalations)
    shadow = answers(ctx, range(2000, 2100), tenant="beta")
    assert all(a["mode"] == "shadow" and a["review"] is False for a in shadow)


def test_active_slices_sample_at_the_active_rate(ctx: Context) -> None:
    """Once promoted, executed closes are sampled near review_rate_active (0.05), not the canary rate."""
    slice_id = canary(ctx)
    lifecycle.promote(ctx, slice_id, "pilot went well")
    found = answers(ctx, range(1000))
    assert all(a["mode"] == "active" and a["execute"] for a in found)
    share = len(sampled_ids(found)) / 1000
    assert 0.025 <= share <= 0.08, share  # 0.05 ± 3.5 standard deviations


def test_review_rates_are_policy_fields_per_slice(ctx: Context) -> None:
    """A slice's review_rate_canary of 1 samples every executed close, of 0 none."""
    canary(ctx, "tenant=all", review_rate_canary=1.0)
    canary(ctx, "tenant=none", review_rate_canary=0.0)
    assert all(a["review"] for a in answers(ctx, range(50), tenant="all"))
    assert not any(a["review"] for a in answers(ctx, range(50, 100), tenant="none"))


def test_review_sample_is_a_function_of_the_decision_id_and_a_replay_answers_the_same(
    ctx: Context, fresh_db_url: str
) -> None:
    """The sample depends only on the decision id: a replay and another database answer the same."""
    canary(ctx)
    first = answers(ctx, range(200))
    assert answers(ctx, range(200)) == first  # a replay returns the first answers, review included
    other = build(Settings(database_url=fresh_db_url, actor="x"), clock=FixedClock(T0))
    setup.init(other)
    try:
        canary(other)
        again = answers(other, range(200), alert_id="elsewhere")
    finally:
        other.db.dispose()
    assert sampled_ids(again) == sampled_ids(first)
    assert sampled_ids(first)  # the sample is not empty


def test_cli_answers_carry_review_and_the_slice_shows_coverage(ctx: Context, shell: Cli) -> None:
    """`tether ingest decisions --json` shows review, a replay the same; `slice show` shows coverage."""
    slice_id = canary(ctx)
    rows = [decision(i) for i in range(40)]
    path = shell.jsonl(rows)
    first = json.loads(shell.run("ingest", "decisions", path, "--json").stdout)["results"]
    assert all(isinstance(a["review"], bool) for a in first)
    assert answers(ctx, range(40)) == first  # a replay through the library answers the same
    assert any(a["review"] for a in first) and not all(a["review"] for a in first)
    reviews(ctx, range(10))
    shown = shell.json("slice", "show", slice_id)
    assert shown["evidence"]["review_coverage"] == pytest.approx(0.25)
    assert shown["evidence"]["clean_reviews_to_promote"] == 83


# 2. review coverage and clean reviews still needed ----------------------------------------------------------


def test_slice_shows_review_coverage_and_clean_reviews_promotion_still_needs(ctx: Context) -> None:
    """Evidence shows review_coverage = reviewed / executed and clean_reviews_to_promote (93 at first)."""
    slice_id = canary(ctx)
    start = evidence(ctx, slice_id)
    assert start["clean_reviews_to_promote"] == 93  # DESIGN §5: promotion needs >= 93 clean reviews
    answers(ctx, range(40))
    reviews(ctx, range(10))
    ev = evidence(ctx, slice_id)
    assert (ev["executed"], ev["reviewed"]) == (40, 10)
    assert ev["review_coverage"] == pytest.approx(0.25)
    assert ev["clean_reviews_to_promote"] == 83
    answers(ctx, range(40, 123))
    reviews(ctx, range(10, 93))
    assert evidence(ctx, slice_id)["clean_reviews_to_promote"] == 0
    ctx.clock.advance(timedelta(days=7))
    (result,) = evaluate.evaluate(ctx).results
    assert result["action"] == "promote"


def test_clean_reviews_to_promote_follows_the_point_floor_and_is_empty_in_shadow(ctx: Context) -> None:
    """Under evidence=point it is the review floor still missing; a shadow slice shows none."""
    slice_id = canary(ctx, evidence="point", min_reviews_to_promote=30)
    shadow_id = lifecycle.create_slice(ctx, "tenant=beta").id
    answers(ctx, range(12))
    reviews(ctx, range(12))
    assert evidence(ctx, slice_id)["clean_reviews_to_promote"] == 18
    assert evidence(ctx, shadow_id)["clean_reviews_to_promote"] is None
    assert evidence(ctx, shadow_id)["review_coverage"] is None


# 3. recall on rollback ------------------------------------------------------------------------------------


def _recall_world(ctx: Context) -> tuple[str, dict[str, dict[str, Any]]]:
    """A canary with closes d-0..d-5 (later ids decided earlier), an escalation, a shadow decision, outcomes
    on d-0 (review) and d-1 (undetermined incident), then a missed TP on d-2 that rolls it back."""
    slice_id = canary(ctx)
    closes = [decision(i, decided_at=iso(T0 - timedelta(minutes=i))) for i in range(6)]
    found = {a.decision_id: a.to_dict() for a in decide(ctx, closes)}
    answers(ctx, [10], verdict="escalate")
    answers(ctx, [20], tenant="beta")
    record_outcomes(ctx, [outcome(0), outcome(1, "undetermined", "incident")])
    result = record_outcomes(ctx, [outcome(2, "true_positive", "escalation")])
    assert [a["action"] for a in result.actions] == ["rollback"]
    return slice_id, found


def test_recall_lists_the_attempts_executed_closures_without_an_outcome_oldest_first(ctx: Context) -> None:
    """After a rollback the recall list is the attempt's executed closes with no outcome, oldest first."""
    slice_id, found = _recall_world(ctx)
    recalled = queries.recall(ctx, slice_id)
    assert (recalled["slice_id"], recalled["scope"], recalled["state"], recalled["attempt"]) == (
        slice_id,
        ACME,
        "rolled_back",
        1,
    )
    assert [c["decision_id"] for c in recalled["closures"]] == ["d-5", "d-4", "d-3"]
    for c in recalled["closures"]:
        i = number(c["decision_id"])
        assert c["alert_id"] == f"A-{i}" and c["tenant"] == "acme"
        assert c["decided_at"] == iso(T0 - timedelta(minutes=i))
        assert c["review"] is found[c["decision_id"]]["review"]


def test_recall_covers_only_the_current_attempt(ctx: Context) -> None:
    """A new attempt's recall list holds its own closures, not those of the rolled-back attempt."""
    slice_id, _ = _recall_world(ctx)
    lifecycle.reset(ctx, slice_id, "model fixed")
    ctx.clock.advance(timedelta(hours=25))
    lifecycle.start_canary(ctx, slice_id, signed_off_by="ana", reason="second try")
    assert queries.recall(ctx, slice_id)["closures"] == []
    answers(ctx, [30, 31])
    recalled = queries.recall(ctx, slice_id)
    assert recalled["attempt"] == 2
    assert [c["decision_id"] for c in recalled["closures"]] == ["d-30", "d-31"]


def test_recall_of_an_unknown_slice_is_not_found(ctx: Context) -> None:
    """Recall names a slice that exists; an unknown id is NotFound."""
    with pytest.raises(NotFound):
        queries.recall(ctx, "sl_missing")


def test_cli_slice_recall_json_matches_the_library(ctx: Context, shell: Cli) -> None:
    """`tether slice recall ID --json` prints the recall list of the library; an unknown id exits 2."""
    slice_id, _ = _recall_world(ctx)
    expected = queries.recall(ctx, slice_id)
    assert len(expected["closures"]) == 3
    assert shell.json("slice", "recall", slice_id) == expected
    missing = shell.run("slice", "recall", "sl_missing", expect=2)
    assert missing.stderr.count("\n") == 1 and "sl_missing" in missing.stderr


# 4. a new model is a new rollout ----------------------------------------------------------------------------


def test_a_new_model_version_restarts_a_canary_as_a_new_attempt(ctx: Context) -> None:
    """A decision from a new model on a canary starts attempt 2 in canary, audited canary.restarted."""
    slice_id = canary(ctx)
    answers(ctx, range(10), model_version="m1")
    reviews(ctx, range(10))
    ctx.clock.advance(timedelta(hours=2))
    (answer,) = answers(ctx, [100], model_version="m2")
    assert (answer["mode"], answer["execute"], answer["slice_ids"]) == ("canary", True, [slice_id])
    shown = show(ctx, slice_id)
    assert (shown["state"], shown["attempt"]) == ("canary", 2)
    assert shown["canary_started_at"] == iso(T0 + timedelta(hours=2))
    assert (shown["evidence"]["decisions"], shown["evidence"]["reviewed"]) == (1, 0)
    (restarted,) = events(ctx, "canary.restarted", slice_id)
    payload = restarted.payload
    assert (payload["attempt"], payload["previous_state"]) == (2, "canary")
    assert (payload["previous_model_version"], payload["model_version"]) == ("m1", "m2")
    assert payload["evidence"]["reviewed"] == 10  # the snapshot of the attempt that ended


def test_a_new_model_on_an_active_slice_sends_it_back_to_canary(ctx: Context) -> None:
    """An active slice that sees a new model restarts in canary: not promoted, a new attempt."""
    slice_id = canary(ctx)
    answers(ctx, [0], model_version="m1")
    lifecycle.promote(ctx, slice_id, "looks good")
    ctx.clock.advance(timedelta(days=3))
    (answer,) = answers(ctx, [1], model_version="m2")
    assert answer["mode"] == "canary" and answer["execute"]
    shown = show(ctx, slice_id)
    assert (shown["state"], shown["attempt"], shown["promoted_at"]) == ("canary", 2, None)
    assert shown["canary_started_at"] == iso(T0 + timedelta(days=3))
    (restarted,) = events(ctx, "canary.restarted", slice_id)
    assert restarted.payload["previous_state"] == "active"


def test_evidence_of_one_model_never_promotes_another(ctx: Context) -> None:
    """A model with enough clean reviews to promote loses them when a new model decides first."""
    slice_id = canary(ctx)
    answers(ctx, range(150), model_version="m1")
    reviews(ctx, range(100))
    ctx.clock.advance(timedelta(days=8))
    assert evidence(ctx, slice_id)["clean_reviews_to_promote"] == 0  # m1 alone would be promoted now
    answers(ctx, [500], model_version="m2")
    reviews(ctx, range(100, 150))  # late reviews of m1's closes belong to the attempt that ended
    (result,) = evaluate.evaluate(ctx).results
    assert result["action"] == "continue"
    shown = show(ctx, slice_id)
    assert (shown["state"], shown["attempt"], shown["evidence"]["reviewed"]) == ("canary", 2, 0)
    assert events(ctx, "canary.promoted") == []


def test_model_change_ignore_keeps_the_attempt_and_its_evidence(ctx: Context) -> None:
    """With model_change=ignore a new model changes nothing: same attempt, evidence keeps growing."""
    slice_id = canary(ctx, model_change="ignore")
    answers(ctx, range(5), model_version="m1")
    reviews(ctx, range(5))
    answers(ctx, range(5, 8), model_version="m2")
    shown = show(ctx, slice_id)
    assert (shown["state"], shown["attempt"]) == ("canary", 1)
    assert (shown["evidence"]["decisions"], shown["evidence"]["reviewed"]) == (8, 5)
    assert events(ctx, "canary.restarted") == []


def test_only_a_new_model_on_a_live_slice_restarts_and_only_once(ctx: Context) -> None:
    """Same model, no model, a shadow slice or a replay never restart; a new model restarts once."""
    slice_id = canary(ctx)
    shadow_id = lifecycle.create_slice(ctx, "tenant=beta").id
    answers(ctx, [0, 1], model_version="m1")
    answers(ctx, [2])  # no model_version
    answers(ctx, [3], model_version="m1")
    answers(ctx, [4, 5], tenant="beta", model_version="m1")
    answers(ctx, [6], tenant="beta", model_version="m2")
    assert events(ctx, "canary.restarted") == []
    assert show(ctx, shadow_id)["state"] == "shadow"
    batch = [decision(8, model_version="m2"), decision(9, model_version="m2")]
    found = [a.to_dict() for a in decide(ctx, batch)]
    assert all(a["mode"] == "canary" and a["execute"] for a in found)
    assert [a.to_dict() for a in decide(ctx, batch)] == found  # a replay restarts nothing
    assert len(events(ctx, "canary.restarted", slice_id)) == 1
    shown = show(ctx, slice_id)
    assert (shown["attempt"], shown["evidence"]["decisions"]) == (2, 2)


def test_a_batch_that_switches_model_counts_each_decision_in_its_own_attempt(ctx: Context) -> None:
    """In one batch, closes before the model switch are evidence of the old attempt, not of the new one."""
    slice_id = canary(ctx)
    answers(ctx, [0], model_version="m1")
    decide(ctx, [decision(7, model_version="m1"), decision(8, model_version="m2")])
    ev = evidence(ctx, slice_id)
    assert show(ctx, slice_id)["attempt"] == 2
    assert [c["decision_id"] for c in queries.recall(ctx, slice_id)["closures"]] == ["d-8"]
    assert (ev["decisions"], ev["executed"]) == (1, 1), "attempt 2 counts d-7, a close of attempt 1"
    assert evaluate.evaluate(ctx, recompute=True).differences == []


# 5. dry run -------------------------------------------------------------------------------------------------


def test_dry_run_audits_would_roll_back_once_and_changes_nothing(ctx: Context) -> None:
    """Under dry_run a missed TP audits canary.would_roll_back once; state, gate and kill switches stay."""
    policy.set_policy(ctx, {"dry_run": True})
    slice_id = canary(ctx)
    answers(ctx, range(6))
    first = record_outcomes(ctx, [outcome(0, "true_positive", "escalation")])
    second = record_outcomes(ctx, [outcome(1, "true_positive", "incident")])
    assert first.actions == [] and second.actions == []
    ev = evidence(ctx, slice_id)
    assert ev["missed_tp"] == 2
    assert show(ctx, slice_id)["state"] == "canary"
    assert kill_switches(ctx) == []
    assert events(ctx, "canary.rolled_back") == [] and events(ctx, "kill_switch.activated") == []
    (would,) = events(ctx, "canary.would_roll_back", slice_id)
    assert would.payload["trigger"] == "missed_tp"
    assert would.payload["evidence"]["missed_tp"] == 1
    (result,) = evaluate.evaluate(ctx).results
    assert (result["action"], result.get("dry_run")) == ("rollback", True)
    assert len(events(ctx, "canary.would_roll_back", slice_id)) == 1
    (answer,) = answers(ctx, [6])
    assert (answer["mode"], answer["execute"]) == ("canary", True)


def test_dry_run_audits_would_promote_once_per_attempt(ctx: Context) -> None:
    """Under dry_run the evaluator audits canary.would_promote once per attempt and never promotes."""
    slice_id = canary(ctx, dry_run=True, evidence="point", min_reviews_to_promote=30)
    answers(ctx, range(30), model_version="m1")
    reviews(ctx, range(30))
    ctx.clock.advance(timedelta(days=7))
    for _ in range(2):
        (result,) = evaluate.evaluate(ctx).results
        assert (result["action"], result.get("dry_run")) == ("promote", True)
    (would,) = events(ctx, "canary.would_promote", slice_id)
    assert would.payload["evidence"]["reviewed"] == 30
    shown = show(ctx, slice_id)
    assert (shown["state"], shown["promoted_at"]) == ("canary", None)
    assert events(ctx, "canary.promoted") == []
    answers(ctx, range(100, 130), model_version="m2")  # a new model: attempt 2
    reviews(ctx, range(100, 130))
    ctx.clock.advance(timedelta(days=7))
    evaluate.evaluate(ctx)
    evaluate.evaluate(ctx)
    audited = events(ctx, "canary.would_promote", slice_id)
    assert [e.payload["evidence"]["reviewed"] for e in audited] == [30, 30]
    assert show(ctx, slice_id)["attempt"] == 2 and show(ctx, slice_id)["state"] == "canary"


def test_dry_run_precision_rollback_at_evaluation_is_only_audited(ctx: Context) -> None:
    """A precision failure under dry_run is audited as would_roll_back by the evaluator and nothing moves."""
    slice_id = canary(ctx, dry_run=True)
    answers(ctx, range(10))
    result = reviews(ctx, range(5), "benign_positive")
    assert result.actions == []
    evaluate.evaluate(ctx)
    (would,) = events(ctx, "canary.would_roll_back", slice_id)
    assert would.payload["trigger"] == "precision"
    assert show(ctx, slice_id)["state"] == "canary" and kill_switches(ctx) == []


# 6. cool-down -----------------------------------------------------------------------------------------------


def _rolled_back_and_reset(ctx: Context, **overrides: Any) -> str:
    slice_id = canary(ctx, **overrides)
    lifecycle.roll_back(ctx, slice_id, "bad closures")
    lifecycle.reset(ctx, slice_id, "fixed the prompt")
    return slice_id


def test_a_new_canary_waits_for_the_cooldown_after_a_rollback(ctx: Context) -> None:
    """After a rollback a canary starts only cooldown_hours (24) later; the refusal names the cool-down."""
    slice_id = _rolled_back_and_reset(ctx)
    ctx.clock.advance(timedelta(hours=23, minutes=59))
    with pytest.raises(CriteriaNotMet, match="cool-down"):
        lifecycle.start_canary(ctx, slice_id, signed_off_by="ana", reason="retry")
    assert show(ctx, slice_id)["state"] == "shadow"
    ctx.clock.advance(timedelta(minutes=1))
    lifecycle.start_canary(ctx, slice_id, signed_off_by="ana", reason="retry")
    assert show(ctx, slice_id)["state"] == "canary"
    started = events(ctx, "canary.started", slice_id)
    assert started[-1].payload["cooldown_overridden"] is False


def test_cooldown_hours_is_a_policy_field(ctx: Context) -> None:
    """A slice with cooldown_hours=0 may start again at once; with 1 it waits one hour."""
    quick = _rolled_back_and_reset(ctx, cooldown_hours=0)
    lifecycle.start_canary(ctx, quick, signed_off_by="ana", reason="retry")
    hour = _rolled_back_and_reset(ctx, scope="tenant=beta", cooldown_hours=1)
    with pytest.raises(CriteriaNotMet):
        lifecycle.start_canary(ctx, hour, signed_off_by="ana", reason="retry")
    ctx.clock.advance(timedelta(hours=1))
    lifecycle.start_canary(ctx, hour, signed_off_by="ana", reason="retry")


def test_overriding_the_cooldown_needs_a_reason_and_the_event_says_so(ctx: Context) -> None:
    """--override-cooldown without a reason is bad input; with one the canary starts and is audited so."""
    slice_id = _rolled_back_and_reset(ctx)
    with pytest.raises(BadInput):
        lifecycle.start_canary(ctx, slice_id, if_ready=True, override_cooldown=True)
    lifecycle.start_canary(
        ctx, slice_id, signed_off_by="ana", reason="hotfix verified", override_cooldown=True
    )
    assert show(ctx, slice_id)["state"] == "canary"
    started = events(ctx, "canary.started", slice_id)[-1]
    assert started.payload["cooldown_overridden"] is True
    assert started.payload["reason"] == "hotfix verified"


def test_cli_cooldown_refuses_then_an_override_with_reason_starts(ctx: Context, shell: Cli) -> None:
    """CLI: in the cool-down exit 1 naming it; --override-cooldown without reason exit 2; with one, canary."""
    slice_id = _rolled_back_and_reset(ctx)
    refused = shell.run("canary", "start", slice_id, "--signed-off-by", "ana", "--reason", "retry", expect=1)
    assert "cool-down" in refused.stderr
    shell.run("canary", "start", slice_id, "--if-ready", "--override-cooldown", expect=2)
    started = shell.json(
        "canary", "start", slice_id, "--signed-off-by", "ana", "--reason", "hotfix", "--override-cooldown"
    )
    assert (started["state"], started["attempt"]) == ("canary", 2)
    (event,) = [e for e in events(ctx, "canary.started", slice_id) if e.payload["attempt"] == 2]
    assert event.payload["cooldown_overridden"] is True and event.actor["id"] == "tester"


# 7. review_from=sampled ------------------------------------------------------------------------------------


def test_review_from_sampled_counts_only_reviews_of_sampled_decisions(ctx: Context) -> None:
    """Under review_from=sampled, precision counts reviews of sampled decisions only."""
    slice_id = canary(ctx, review_from="sampled")
    found = answers(ctx, range(200))
    sampled = sampled_ids(found)
    assert 0 < len(sampled) < 200
    reviews(ctx, range(200))
    ev = evidence(ctx, slice_id)
    assert (ev["reviewed"], ev["correct"]) == (len(sampled), len(sampled))
    assert ev["review_coverage"] == pytest.approx(len(sampled) / 200)


def test_unsampled_reviews_never_move_precision_but_their_missed_tps_count(ctx: Context) -> None:
    """Errors found on unsampled closes roll back under `all` only; a missed TP counts under both."""
    sampled_slice = canary(ctx, review_from="sampled")
    all_slice = canary(ctx, "tenant=beta")
    acme = [number(a["decision_id"]) for a in answers(ctx, range(100)) if not a["review"]]
    beta = [
        number(a["decision_id"]) for a in answers(ctx, range(1000, 1100), tenant="beta") if not a["review"]
    ]
    kept = reviews(ctx, acme[:5], "benign_positive")
    assert kept.actions == []
    ev = evidence(ctx, sampled_slice)
    assert (ev["reviewed"], ev["incorrect"], ev["precision"]) == (0, 0, None)
    assert show(ctx, sampled_slice)["state"] == "canary"
    rolled = reviews(ctx, beta[:5], "benign_positive")
    assert [(a["slice_id"], a["trigger"]) for a in rolled.actions] == [(all_slice, "precision")]
    missed = reviews(ctx, acme[5:6], "true_positive")
    assert [(a["slice_id"], a["trigger"]) for a in missed.actions] == [(sampled_slice, "missed_tp")]
    assert evidence(ctx, sampled_slice)["missed_tp"] == 1


def test_switching_review_from_recounts_the_attempts_evidence(ctx: Context) -> None:
    """Changing review_from on a running slice recounts its reviews from the stored outcomes."""
    slice_id = canary(ctx)
    sampled = sampled_ids(answers(ctx, range(120)))
    reviews(ctx, range(120))
    assert evidence(ctx, slice_id)["reviewed"] == 120
    lifecycle.set_slice_policy(ctx, slice_id, {"review_from": "sampled"})
    assert evidence(ctx, slice_id)["reviewed"] == len(sampled)
    lifecycle.set_slice_policy(ctx, slice_id, {"review_from": "all"})
    assert evidence(ctx, slice_id)["reviewed"] == 120
    assert evaluate.evaluate(ctx, recompute=True).differences == []


def test_reviews_of_unsampled_decisions_are_shown_apart(ctx: Context) -> None:
    """Under review_from=sampled the slice shows the reviews it did not count (evidence other_reviews)."""
    slice_id = canary(ctx, review_from="sampled")
    sampled = sampled_ids(answers(ctx, range(100)))
    reviews(ctx, range(100))
    ev = evidence(ctx, slice_id)
    assert ev["reviewed"] == len(sampled)
    assert "other_reviews" in ev, f"the slice JSON does not show reviews kept apart: {sorted(ev)}"
    assert ev["other_reviews"] == 100 - len(sampled)
