"""The gate of DESIGN §3 and the scopes of §1: kill switches, tenant guard, refinement, fail closed."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from itertools import product
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.domain.errors import BadInput
from tether.domain.gate import GateSlice, GateView, safe_answer
from tether.domain.model import SYSTEM, Answer, KillSwitch, Mode, Slice, SliceState, Verdict
from tether.domain.scope import Dimensions, Scope, SeverityBands, parse_scope, scope_of

DIMS = Dimensions()
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
ALERT = {"tenant": "acme", "severity": "low", "rule_family": "phishing", "data_source": "o365"}
SHADOW, CANARY, ACTIVE, ROLLED_BACK = (
    SliceState.SHADOW,
    SliceState.CANARY,
    SliceState.ACTIVE,
    SliceState.ROLLED_BACK,
)


# helpers ---------------------------------------------------------------------------------------------


def sl(slice_id: str, scope: str, state: SliceState, attempt: int = 1) -> GateSlice:
    return GateSlice(slice_id, parse_scope(scope, DIMS), state, attempt)


def kill(kill_id: str, scope: str, *, active: bool = True, seconds: int = 0) -> KillSwitch:
    return KillSwitch(
        id=kill_id,
        scope=parse_scope(scope, DIMS),
        reason="drill",
        active=active,
        activated_by=SYSTEM,
        activated_at=NOW - timedelta(hours=1) + timedelta(seconds=seconds),
    )


def view(
    slices: Iterable[GateSlice | Slice] = (), kills: Iterable[KillSwitch] = (), *, guard: bool = True
) -> GateView:
    return GateView.build(DIMS, slices, kills, tenants_start_in_shadow=guard)


def alert(**over: str) -> dict[str, str]:
    return {**ALERT, **over}


# scopes (§1) -----------------------------------------------------------------------------------------


def test_scope_text_is_in_canonical_dimension_order() -> None:
    """A scope prints its pairs in the configured dimension order, whatever order they were given in."""
    assert parse_scope("rule_family=phishing,tenant=acme", DIMS).text == "tenant=acme,rule_family=phishing"
    scope = parse_scope("data_source=okta,severity=high,rule_family=phishing,tenant=acme", DIMS)
    assert scope.text == "tenant=acme,severity=high,rule_family=phishing,data_source=okta"
    assert parse_scope(scope.text, DIMS) == scope


def test_empty_scope_is_global() -> None:
    """The empty scope parses to the global scope, which matches every alert."""
    scope = parse_scope("", DIMS)
    assert scope == Scope()
    assert scope.text == ""
    assert scope.matches(ALERT)


def test_configured_dimensions_set_the_order_and_the_vocabulary() -> None:
    """A deployment's own dimensions (here `technique`) are accepted and ordered as configured."""
    dims = Dimensions(names=("technique", "tenant", "severity", "rule_family", "data_source"))
    assert parse_scope("tenant=acme,technique=T1566", dims).text == "technique=T1566,tenant=acme"
    with pytest.raises(BadInput, match="unknown dimension 'technique'"):
        parse_scope("technique=T1566", DIMS)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("region=eu", "unknown dimension 'region'"),
        ("tenant=acme,colour=red", "unknown dimension 'colour'"),
        ("tenant=", "empty value for tenant"),
        ("tenant=acme,rule_family= ", "empty value for rule_family"),
        ("tenant=acme,tenant=beta", "tenant given twice"),
        ("tenant=acme,tenant=acme", "tenant given twice"),
        ("severity=extreme", "severity takes a band name"),
        ("severity=50", "severity takes a band name"),
        ("severity=info", "severity takes a band name"),
        ("severity=Low", "severity takes a band name"),
        ("tenant", "not dimension=value"),
    ],
)
def test_bad_scopes_are_bad_input_naming_the_problem(text: str, problem: str) -> None:
    """Unknown dimension, empty value, a repeated dimension and a non-band severity are BadInput."""
    with pytest.raises(BadInput, match=problem) as caught:
        parse_scope(text, DIMS)
    assert caught.value.problems[0].loc == ("scope",)


def test_scope_values_compare_exactly() -> None:
    """Scope values are case-sensitive: tenant=Acme does not match an alert of tenant acme."""
    scope = parse_scope("tenant=Acme", DIMS)
    assert not scope.matches(ALERT)
    assert scope.matches(alert(tenant="Acme"))


def test_refines_is_a_strict_superset_of_pairs() -> None:
    """Scope A refines B when A's pairs are a strict superset of B's; a scope does not refine itself."""
    broad = parse_scope("tenant=acme", DIMS)
    narrow = parse_scope("tenant=acme,rule_family=phishing", DIMS)
    other = parse_scope("rule_family=phishing", DIMS)
    assert narrow.refines(broad)
    assert narrow.refines(other)
    assert narrow.refines(Scope())
    assert not broad.refines(narrow)
    assert not broad.refines(broad)
    assert not broad.refines(other)


@pytest.mark.parametrize(
    ("raw", "band"),
    [
        ("info", "low"),
        ("low", "low"),
        ("medium", "medium"),
        ("high", "high"),
        ("critical", "critical"),
        (0, "low"),
        (39, "low"),
        (39.5, "low"),
        (40, "medium"),
        (69, "medium"),
        (69.99, "medium"),
        (70, "high"),
        (89, "high"),
        (89.9, "high"),
        (90, "critical"),
        (100, "critical"),
        (100.0, "critical"),
    ],
)
def test_severity_bands_of_words_and_numbers(raw: object, band: str) -> None:
    """Raw severity maps to low [0, 40), medium [40, 70), high [70, 90), critical [90, 100]."""
    assert DIMS.bands.band_of(raw) == band


@pytest.mark.parametrize("raw", [101, 100.01, -1, -0.5, "extreme", "", True, False, None, math.nan, math.inf])
def test_bad_severities_are_bad_input(raw: object) -> None:
    """Out-of-range numbers, unknown words, booleans and non-numbers are BadInput on the severity field."""
    with pytest.raises(BadInput) as caught:
        DIMS.bands.band_of(raw)
    assert caught.value.problems[0].loc == ("severity",)


@given(st.floats(0, 100))
def test_every_number_in_range_falls_in_its_half_open_band(raw: float) -> None:
    """Any number in [0, 100] falls in the one default band whose half-open range holds it."""
    expected = "low" if raw < 40 else "medium" if raw < 70 else "high" if raw < 90 else "critical"
    assert DIMS.bands.band_of(raw) == expected


def test_bands_are_configurable() -> None:
    """Configured bands replace the defaults, the last one including 100."""
    bands = SeverityBands.from_bounds([("minor", 0), ("major", 50)])
    assert [bands.band_of(x) for x in (0, 49.9, 50, 100)] == ["minor", "minor", "major", "major"]
    dims = Dimensions(bands=bands)
    assert parse_scope("severity=major", dims).text == "severity=major"
    with pytest.raises(BadInput, match="severity takes a band name"):
        parse_scope("severity=high", dims)


# kill switches (§3 step 1) -------------------------------------------------------------------------------


def test_a_kill_switch_wins_over_every_slice() -> None:
    """A matching kill switch answers killed, naming it, with empty slice_ids, over an active carve-out."""
    gate = view(
        [sl("sl_t", "tenant=acme", ACTIVE), sl("sl_p", "tenant=acme,rule_family=phishing", ACTIVE)],
        [kill("ks_1", "tenant=acme")],
    )
    answer = gate.answer(ALERT)
    assert answer.mode is Mode.KILLED
    assert answer.execute is False
    assert answer.kill_switch_id == "ks_1"
    assert answer.slice_ids == ()
    assert "ks_1" in answer.reason
    assert gate.answer(alert(tenant="beta")).mode is not Mode.KILLED


def test_a_kill_switch_on_a_narrower_scope_kills_only_that_scope() -> None:
    """A kill switch on tenant=acme,rule_family=phishing kills phishing alerts of acme and nothing else."""
    gate = view([sl("sl_t", "tenant=acme", ACTIVE)], [kill("ks_p", "tenant=acme,rule_family=phishing")])
    assert gate.answer(ALERT).mode is Mode.KILLED
    assert gate.answer(alert(rule_family="malware")).mode is Mode.ACTIVE


def test_the_global_kill_switch_kills_everything() -> None:
    """A kill switch with the empty scope answers killed for every alert, known tenant or not."""
    gate = view(
        [sl("sl_a", "tenant=acme", ACTIVE), sl("sl_g", "", ACTIVE)], [kill("ks_all", "")], guard=False
    )
    for a in (ALERT, alert(tenant="newcorp", severity="critical", data_source="okta")):
        answer = gate.answer(a)
        assert (answer.mode, answer.execute, answer.slice_ids, answer.kill_switch_id) == (
            Mode.KILLED,
            False,
            (),
            "ks_all",
        )


def test_an_inactive_kill_switch_has_no_effect() -> None:
    """A deactivated kill switch does not take part in the answer."""
    gate = view([sl("sl_a", "tenant=acme", ACTIVE)], [kill("ks_old", "", active=False)])
    answer = gate.answer(ALERT)
    assert answer.mode is Mode.ACTIVE
    assert answer.kill_switch_id is None


def test_a_rolled_back_slice_silences_its_carve_outs_through_its_kill_switch() -> None:
    """A rolled-back slice's kill switch on its scope kills its more specific carve-outs too."""
    gate = view(
        [sl("sl_t", "tenant=acme", ROLLED_BACK), sl("sl_p", "tenant=acme,rule_family=phishing", ACTIVE)],
        [kill("ks_rb", "tenant=acme")],
    )
    assert gate.answer(ALERT).mode is Mode.KILLED


# tenant guard (§3 step 2) ---------------------------------------------------------------------------------


def test_a_tenant_without_its_own_slice_starts_in_shadow() -> None:
    """A canary on rule_family=phishing does not reach a tenant that no slice names exactly: shadow."""
    gate = view([sl("sl_p", "rule_family=phishing", CANARY)])
    answer = gate.answer(ALERT)
    assert answer.mode is Mode.SHADOW
    assert answer.execute is False
    assert answer.slice_ids == ()
    assert "tenant=acme is in shadow" in answer.reason


def test_a_slice_naming_tenant_and_family_refines_the_guard() -> None:
    """A canary on tenant=acme,rule_family=phishing refines the virtual tenant=acme shadow slice: canary."""
    gate = view([sl("sl_ap", "tenant=acme,rule_family=phishing", CANARY)])
    answer = gate.answer(ALERT)
    assert answer.mode is Mode.CANARY
    assert answer.execute is True
    assert answer.slice_ids == ("sl_ap",)
    # The same tenant's other families are still behind the guard.
    assert gate.answer(alert(rule_family="malware")).mode is Mode.SHADOW


def test_a_slice_of_exactly_the_tenant_scope_replaces_the_guard() -> None:
    """With a slice of scope tenant=acme there is no guard: a canary on rule_family=phishing applies."""
    gate = view([sl("sl_a", "tenant=acme", ACTIVE), sl("sl_p", "rule_family=phishing", CANARY)])
    assert gate.answer(ALERT).mode is Mode.CANARY
    assert gate.answer(alert(tenant="beta")).mode is Mode.SHADOW


def test_a_slice_naming_the_tenant_with_more_pairs_does_not_lift_the_guard_elsewhere() -> None:
    """A slice on tenant=acme,rule_family=phishing is not tenant=acme: other acme alerts stay guarded."""
    gate = view(
        [sl("sl_ap", "tenant=acme,rule_family=phishing", CANARY), sl("sl_d", "data_source=o365", ACTIVE)]
    )
    assert gate.answer(alert(rule_family="malware")).mode is Mode.SHADOW


def test_without_tenants_start_in_shadow_there_is_no_guard() -> None:
    """With tenants_start_in_shadow false, a canary on rule_family=phishing applies to any tenant."""
    gate = view([sl("sl_p", "rule_family=phishing", CANARY)], guard=False)
    answer = gate.answer(alert(tenant="newcorp"))
    assert answer.mode is Mode.CANARY
    assert answer.execute is True
    assert answer.slice_ids == ("sl_p",)


# refinement and least autonomy (§3 steps 3-4) -------------------------------------------------------------


def test_a_more_specific_canary_carves_out_of_a_shadow_slice() -> None:
    """A canary on tenant=acme,rule_family=phishing overrides the shadow tenant=acme for phishing only."""
    gate = view([sl("sl_a", "tenant=acme", SHADOW), sl("sl_ap", "tenant=acme,rule_family=phishing", CANARY)])
    assert gate.answer(ALERT).mode is Mode.CANARY
    other = gate.answer(alert(rule_family="malware"))
    assert other.mode is Mode.SHADOW
    assert other.slice_ids == ("sl_a",)
    assert "tenant=acme is in shadow" in other.reason


def test_a_more_specific_shadow_slice_carves_out_of_an_active_one() -> None:
    """A shadow slice on tenant=acme,rule_family=phishing takes phishing out of an active tenant=acme."""
    gate = view([sl("sl_a", "tenant=acme", ACTIVE), sl("sl_ap", "tenant=acme,rule_family=phishing", SHADOW)])
    assert gate.answer(ALERT).mode is Mode.SHADOW
    assert gate.answer(ALERT).slice_ids == ("sl_ap",)
    assert gate.answer(alert(rule_family="malware")).mode is Mode.ACTIVE


def test_refinement_is_transitive_through_three_levels() -> None:
    """The most specific matching slice decides along a chain global > tenant > tenant,family."""
    gate = view(
        [
            sl("sl_g", "", SHADOW),
            sl("sl_a", "tenant=acme", ACTIVE),
            sl("sl_ap", "tenant=acme,rule_family=phishing", CANARY),
        ]
    )
    assert gate.answer(ALERT).mode is Mode.CANARY
    assert gate.answer(alert(rule_family="malware")).mode is Mode.ACTIVE
    assert gate.answer(alert(tenant="beta")).mode is Mode.SHADOW


@pytest.mark.parametrize(
    ("left", "right", "mode"),
    [
        (ACTIVE, ACTIVE, Mode.ACTIVE),
        (ACTIVE, CANARY, Mode.CANARY),
        (CANARY, CANARY, Mode.CANARY),
        (ACTIVE, SHADOW, Mode.SHADOW),
        (CANARY, SHADOW, Mode.SHADOW),
        (ACTIVE, ROLLED_BACK, Mode.SHADOW),
        (CANARY, ROLLED_BACK, Mode.SHADOW),
    ],
)
def test_unrelated_slices_must_both_allow_autonomy(left: SliceState, right: SliceState, mode: Mode) -> None:
    """Of two unrelated matching slices the least autonomous wins: shadow/rolled_back < canary < active."""
    for a, b in ((left, right), (right, left)):
        gate = view([sl("sl_r", "rule_family=phishing", a), sl("sl_d", "data_source=o365", b)], guard=False)
        answer = gate.answer(ALERT)
        assert answer.mode is mode
        assert answer.execute is (mode in (Mode.CANARY, Mode.ACTIVE))


def test_no_matching_slice_answers_shadow() -> None:
    """No slice matching the alert answers shadow without execution, guard or no guard."""
    for guard in (True, False):
        answer = view([sl("sl_b", "tenant=beta", ACTIVE)], guard=guard).answer(ALERT)
        assert answer.mode is Mode.SHADOW
        assert answer.execute is False
        assert answer.slice_ids == ()
    assert view(guard=False).answer(ALERT).mode is Mode.SHADOW


def test_a_shadow_answer_names_the_deciding_shadow_slice() -> None:
    """A shadow answer lists the slice that held it back and says so in the reason."""
    gate = view([sl("sl_a", "tenant=acme", SHADOW)])
    answer = gate.answer(ALERT)
    assert answer == Answer(Mode.SHADOW, False, ("sl_a",), answer.reason)
    assert "tenant=acme is in shadow" in answer.reason


def test_a_rolled_back_slice_without_kill_switch_reads_as_shadow() -> None:
    """In the gate a rolled_back slice ranks with shadow: no execution."""
    answer = view([sl("sl_a", "tenant=acme", ROLLED_BACK)]).answer(ALERT)
    assert answer.mode is Mode.SHADOW
    assert answer.execute is False


# execute, verdicts and slice_ids (§3 step 5, §4) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "mode", "execute"),
    [
        (SHADOW, Mode.SHADOW, False),
        (ROLLED_BACK, Mode.SHADOW, False),
        (CANARY, Mode.CANARY, True),
        (ACTIVE, Mode.ACTIVE, True),
    ],
)
def test_execute_only_in_canary_or_active(state: SliceState, mode: Mode, execute: bool) -> None:
    """A close is executed only when the mode is canary or active."""
    answer = view([sl("sl_a", "tenant=acme", state)]).answer(ALERT)
    assert (answer.mode, answer.execute) == (mode, execute)


def test_an_escalate_verdict_is_never_executed() -> None:
    """for_verdict(escalate) keeps the mode but never executes; for_verdict(close) keeps the gate's answer."""
    answer = view([sl("sl_a", "tenant=acme", ACTIVE)]).answer(ALERT)
    escalate = answer.for_verdict(Verdict.ESCALATE)
    assert escalate.mode is Mode.ACTIVE
    assert escalate.execute is False
    assert answer.for_verdict(Verdict.CLOSE) == answer
    shadow = view().answer(ALERT)
    assert shadow.for_verdict(Verdict.CLOSE).execute is False


def test_slice_ids_list_both_granting_canaries() -> None:
    """Two unrelated canaries both grant autonomy, so the answer lists both."""
    gate = view(
        [sl("sl_r", "rule_family=phishing", CANARY), sl("sl_d", "data_source=o365", CANARY)], guard=False
    )
    assert sorted(gate.answer(ALERT).slice_ids) == ["sl_d", "sl_r"]


def test_slice_ids_list_every_remaining_live_slice_that_granted_autonomy() -> None:
    """A canary and an unrelated active slice both granted the execution, so both are listed (DESIGN §3)."""
    gate = view(
        [sl("sl_r", "rule_family=phishing", CANARY), sl("sl_d", "data_source=o365", ACTIVE)], guard=False
    )
    answer = gate.answer(ALERT)
    assert answer.mode is Mode.CANARY
    assert answer.execute is True
    assert sorted(answer.slice_ids) == ["sl_d", "sl_r"]


def test_slice_ids_leave_out_overridden_slices() -> None:
    """A slice refined by a more specific matching slice granted nothing and is not listed."""
    gate = view([sl("sl_a", "tenant=acme", ACTIVE), sl("sl_ap", "tenant=acme,rule_family=phishing", CANARY)])
    assert gate.answer(ALERT).slice_ids == ("sl_ap",)


def test_the_gate_builds_from_domain_slices() -> None:
    """GateView.build takes domain Slice values as well as GateSlice ones."""
    domain_slice = Slice("sl_a", parse_scope("tenant=acme", DIMS), CANARY, 3, NOW - timedelta(days=9))
    answer = view([domain_slice]).answer(ALERT)
    assert (answer.mode, answer.slice_ids) == (Mode.CANARY, ("sl_a",))


# fail closed (§3) -----------------------------------------------------------------------------------------


def test_a_stale_view_answers_shadow_stale() -> None:
    """A view older than max_staleness answers shadow with reason stale, however autonomous the slice."""
    gate = view([sl("sl_a", "tenant=acme", ACTIVE)])
    limit = timedelta(seconds=5)
    fresh = safe_answer(gate, ALERT, fresh_at=NOW - limit, now=NOW, max_staleness=limit)
    assert fresh.mode is Mode.ACTIVE
    for fresh_at in (NOW - limit - timedelta(milliseconds=1), NOW - timedelta(hours=1), None):
        stale = safe_answer(gate, ALERT, fresh_at=fresh_at, now=NOW, max_staleness=limit)
        assert (stale.mode, stale.execute, stale.slice_ids, stale.reason) == (Mode.SHADOW, False, (), "stale")
    missing = safe_answer(None, ALERT, fresh_at=NOW, now=NOW, max_staleness=limit)
    assert (missing.mode, missing.execute) == (Mode.SHADOW, False)


def test_a_view_whose_answer_raises_answers_shadow_error() -> None:
    """When resolving raises (here a corrupt slice state), safe_answer answers shadow with reason error."""
    corrupt: Any = "bogus"
    broken = GateView.build(DIMS, [GateSlice("sl_x", parse_scope("tenant=acme", DIMS), corrupt, 1)], [])
    with pytest.raises(KeyError):
        broken.answer(ALERT)
    answer = safe_answer(broken, ALERT, fresh_at=NOW, now=NOW, max_staleness=timedelta(seconds=5))
    assert (answer.mode, answer.execute, answer.slice_ids, answer.reason) == (Mode.SHADOW, False, (), "error")


def test_a_malformed_alert_answers_shadow_error() -> None:
    """An alert that is not a mapping cannot be resolved: shadow with reason error, never an exception."""
    gate = view([sl("sl_a", "tenant=acme", ACTIVE)])
    bad: Any = ["tenant", "acme"]
    answer = safe_answer(gate, bad, fresh_at=NOW, now=NOW, max_staleness=timedelta(seconds=5))
    assert (answer.mode, answer.execute, answer.reason) == (Mode.SHADOW, False, "error")


# properties over random slice and kill switch sets --------------------------------------------------------

VALUES: dict[str, list[str]] = {
    "tenant": ["acme", "beta"],
    "severity": ["low", "high"],
    "rule_family": ["phishing", "malware"],
    "data_source": ["o365", "okta"],
}
ALL_ALERTS = [dict(zip(VALUES, combo, strict=True)) for combo in product(*VALUES.values())]
RANK = {SHADOW: 0, ROLLED_BACK: 0, CANARY: 1, ACTIVE: 2}
MODE_OF_RANK = {0: Mode.SHADOW, 1: Mode.CANARY, 2: Mode.ACTIVE}

scopes = st.fixed_dictionaries({}, optional={d: st.sampled_from(v) for d, v in VALUES.items()})
alerts = st.sampled_from(ALL_ALERTS)
slice_sets = st.lists(st.tuples(scopes, st.sampled_from(list(SliceState))), max_size=8).map(
    lambda items: list({frozenset(s.items()): (s, state) for s, state in reversed(items)}.values())
)
kill_sets = st.lists(st.tuples(scopes, st.booleans()), max_size=3)


def build(
    slices: list[tuple[dict[str, str], SliceState]], kills: list[tuple[dict[str, str], bool]], guard: bool
) -> GateView:
    gate_slices = [GateSlice(f"sl_{i}", scope_of(s, DIMS), state, 1) for i, (s, state) in enumerate(slices)]
    switches = [
        KillSwitch(f"ks_{i}", scope_of(s, DIMS), "drill", active, SYSTEM, NOW + timedelta(seconds=i))
        for i, (s, active) in enumerate(kills)
    ]
    return GateView.build(DIMS, gate_slices, switches, tenants_start_in_shadow=guard)


def matches(scope: Mapping[str, str], a: Mapping[str, str]) -> bool:
    return all(a[d] == v for d, v in scope.items())


def reference_remaining(
    slices: list[tuple[dict[str, str], SliceState]], a: Mapping[str, str], guard: bool
) -> list[tuple[str, dict[str, str], SliceState]]:
    """DESIGN §3 steps 2-3 written out: matching slices and the guard, minus those refined by another."""
    matching = [(f"sl_{i}", s, state) for i, (s, state) in enumerate(slices) if matches(s, a)]
    if guard and not any(s == {"tenant": a["tenant"]} for s, _ in slices):
        matching.append(("", {"tenant": a["tenant"]}, SHADOW))
    return [m for m in matching if not any(set(o[1].items()) > set(m[1].items()) for o in matching)]


def reference_mode(
    slices: list[tuple[dict[str, str], SliceState]],
    kills: list[tuple[dict[str, str], bool]],
    a: Mapping[str, str],
    guard: bool,
) -> Mode:
    """DESIGN §3 written out: killed, else the least autonomous remaining state, else shadow."""
    if any(active and matches(s, a) for s, active in kills):
        return Mode.KILLED
    remaining = reference_remaining(slices, a, guard)
    if not remaining:
        return Mode.SHADOW
    return MODE_OF_RANK[min(RANK[state] for _, _, state in remaining)]


@settings(max_examples=100, deadline=None)
@given(slice_sets, kill_sets, alerts, st.booleans())
def test_property_a_matching_kill_switch_always_kills(
    slices: list[tuple[dict[str, str], SliceState]],
    kills: list[tuple[dict[str, str], bool]],
    a: dict[str, str],
    guard: bool,
) -> None:
    """Whatever the slices, a matching active kill switch answers killed and names a matching switch."""
    kills = [*kills, ({k: a[k] for k in list(a)[: len(kills) % 3]}, True)]
    answer = build(slices, kills, guard).answer(a)
    assert answer.mode is Mode.KILLED
    assert answer.execute is False
    assert answer.slice_ids == ()
    matching = {f"ks_{i}" for i, (s, active) in enumerate(kills) if active and matches(s, a)}
    assert answer.kill_switch_id in matching


@settings(max_examples=150, deadline=None)
@given(slice_sets, kill_sets, st.booleans())
def test_property_mode_is_the_least_autonomous_remaining_state(
    slices: list[tuple[dict[str, str], SliceState]], kills: list[tuple[dict[str, str], bool]], guard: bool
) -> None:
    """For every alert the mode equals an independent reading of §3: kill, guard, refinement, autonomy."""
    gate = build(slices, kills, guard)
    for a in ALL_ALERTS:
        answer = gate.answer(a)
        assert answer.mode is reference_mode(slices, kills, a, guard), a
        if answer.mode is not Mode.KILLED:
            remaining = {sid: state for sid, _, state in reference_remaining(slices, a, guard) if sid}
            assert set(answer.slice_ids) <= set(remaining)
            assert all((remaining[sid] in (CANARY, ACTIVE)) is answer.execute for sid in answer.slice_ids)


@settings(max_examples=100, deadline=None)
@given(slice_sets, kill_sets, st.booleans(), st.data())
def test_property_a_new_more_specific_slice_changes_only_alerts_it_matches(
    slices: list[tuple[dict[str, str], SliceState]],
    kills: list[tuple[dict[str, str], bool]],
    guard: bool,
    data: st.DataObject,
) -> None:
    """Adding a slice refining an existing one never changes the answer for an alert it does not match."""
    base = data.draw(st.sampled_from(slices)) if slices else ({}, SHADOW)
    free = [d for d in VALUES if d not in base[0]]
    if not free:
        return
    dim = data.draw(st.sampled_from(free))
    new_scope = {**base[0], dim: data.draw(st.sampled_from(VALUES[dim]))}
    if any(s == new_scope for s, _ in slices):
        return
    new_state = data.draw(st.sampled_from(list(SliceState)))
    before = build(slices, kills, guard)
    after = build([*slices, (new_scope, new_state)], kills, guard)
    for a in ALL_ALERTS:
        if not matches(new_scope, a):
            assert after.answer(a) == before.answer(a), a


@settings(max_examples=100, deadline=None)
@given(slice_sets, kill_sets, st.booleans())
def test_property_execute_iff_canary_or_active(
    slices: list[tuple[dict[str, str], SliceState]], kills: list[tuple[dict[str, str], bool]], guard: bool
) -> None:
    """For every alert execute is true exactly in canary or active, and an escalate never executes."""
    gate = build(slices, kills, guard)
    for a in ALL_ALERTS:
        answer = gate.answer(a)
        assert answer.execute is (answer.mode in (Mode.CANARY, Mode.ACTIVE))
        assert answer.for_verdict(Verdict.ESCALATE).execute is False
        assert answer.for_verdict(Verdict.CLOSE).execute is answer.execute
        assert (answer.kill_switch_id is not None) is (answer.mode is Mode.KILLED)
