"""The `tether` CLI of DESIGN §7 via the real executable: help, init, JSON shapes, exit codes, lifecycle."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from conftest import T0, Cli, decision, iso, outcome

Proc = subprocess.CompletedProcess[str]

SLICE_KEYS = {
    "id", "scope", "state", "attempt", "canary_started_at", "promoted_at", "evidence", "shadow", "verdict",
}  # fmt: skip
EVIDENCE_KEYS = {
    "decisions", "executed", "reviewed", "correct", "incorrect", "missed_tp",
    "precision", "precision_low", "precision_high", "age_days",
}  # fmt: skip
SHADOW_KEYS = {"decisions", "with_outcome", "agreement", "missed_tp"}
KILL_KEYS = {
    "id", "scope", "reason", "active", "activated_by", "activated_at", "deactivated_by", "deactivated_at",
}  # fmt: skip
ANSWER_KEYS = {"decision_id", "mode", "execute", "slice_ids", "reason"}
ACTIONS = {"promote", "rollback", "continue", "hold"}
POLICY_DEFAULTS: dict[str, Any] = {
    "promote_after_days": 7,
    "promote_min_precision": 0.98,
    "rollback_below_precision": 0.95,
    "max_missed_tp": 0,
    "evidence": "sequential",
    "min_reviews_to_promote": 30,
    "min_reviews_to_judge_rollback": 20,
    "alpha_promote": 0.05,
    "alpha_rollback": 0.05,
    "prior_a": 19,
    "prior_b": 1,
    "hold_after_days": 28,
    "monitor_active": True,
    "on_hold": "keep",
    "tenants_start_in_shadow": True,
    "shadow_window_days": 14,
    "shadow_min_agreement": 0.95,
    "shadow_min_decisions": 50,
}
# Each command with words of which at least one must appear in its help (its purpose, not just its name).
HELP: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (("init",), ("schema", "token")),
    (("gate",), ("mode", "read-only")),
    (("evaluate",), ("promote", "roll back")),
    (("slice", "create"), ("scope",)),
    (("slice", "list"), ("evidence", "slices")),
    (("slice", "show"), ("evidence", "verdict")),
    (("slice", "policy"), ("override",)),
    (("slice", "reset"), ("shadow", "kill switch")),
    (("canary", "start"), ("go-live", "sign-off", "signed")),
    (("canary", "promote"), ("force",)),
    (("canary", "rollback"), ("killed", "roll back", "back")),
    (("kill", "activate"), ("autonomy", "scope")),
    (("kill", "deactivate"), ("switch",)),
    (("kill", "list"), ("switch",)),
    (("policy", "show"), ("global",)),
    (("policy", "set"), ("global", "field")),
    (("ingest", "decisions"), ("json-lines", "jsonl")),
    (("ingest", "outcomes"), ("json-lines", "jsonl")),
    (("audit", "list"), ("event",)),
    (("audit", "verify"), ("chain", "hash")),
    (("audit", "head"), ("publish", "head")),
    (("audit", "export"), ("trail", "json lines", "json-lines")),
]
ACME_LOW_PHISHING = (
    "--tenant", "acme", "--severity", "low", "--rule-family", "phishing", "--data-source", "o365",
)  # fmt: skip


def one_line(proc: Proc) -> str:
    """The single line a failing command writes on stderr."""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one stderr line, got {proc.stderr!r}"
    return lines[0]


def side_by_side(cli: Any, calls: list[tuple[str, ...]], expect: int) -> list[Proc]:
    """Run independent read-only or refused commands concurrently (each costs a process start), in order."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda args: cli.run(*args, expect=expect), calls))


def events(cli: Any) -> list[dict[str, Any]]:
    return list(cli.json("audit", "list")["events"])


def assert_slice_shape(s: dict[str, Any]) -> None:
    assert set(s) >= SLICE_KEYS, SLICE_KEYS - set(s)
    assert set(s["evidence"]) >= EVIDENCE_KEYS, EVIDENCE_KEYS - set(s["evidence"])
    assert set(s["shadow"]) >= SHADOW_KEYS, SHADOW_KEYS - set(s["shadow"])
    assert {"action", "reasons"} <= set(s["verdict"])
    assert isinstance(s["verdict"]["reasons"], list)


def test_every_command_has_help(tmp_path: Path) -> None:
    """Every command and sub-command answers --help with exit 0, its usage line and a word of its purpose,
    without touching any database."""
    cli = Cli(tmp_path, f"sqlite:///{tmp_path}/never-created.db")
    procs = side_by_side(cli, [(*cmd, "--help") for cmd, _ in HELP], expect=0)
    assert not (tmp_path / "never-created.db").exists()
    for (cmd, words), proc in zip(HELP, procs, strict=True):
        text = " ".join(proc.stdout.split()).lower()
        assert f"tether {' '.join(cmd)}" in text, cmd
        assert any(w in text for w in words), f"tether {' '.join(cmd)} --help mentions none of {words}"


def test_init_is_idempotent_and_required(cli: Any, fresh_db_url: str) -> None:
    """On an uninitialised database commands exit 2 saying to run `tether init`; init prints a token once."""
    fresh = {"TETHER_DATABASE_URL": fresh_db_url}
    refused = cli.run("slice", "list", expect=2, env=fresh)
    assert "tether init" in one_line(refused)
    first = json.loads(cli.run("init", "--json", env=fresh).stdout)
    assert isinstance(first["token"], str) and first["token"]
    second = json.loads(cli.run("init", "--json", env=fresh).stdout)
    assert second["token"] is None
    assert json.loads(cli.run("slice", "list", "--json", env=fresh).stdout) == {"slices": []}


def test_whole_lifecycle_in_virtual_time(cli: Any) -> None:
    """Shadow → canary on sign-off → promoted at day 8 → a missed TP rolls back, killing the scope → reset."""
    created = cli.json("slice", "create", "--scope", "rule_family=phishing,tenant=acme")
    assert_slice_shape(created)
    sid = created["id"]
    assert created["scope"] == "tenant=acme,rule_family=phishing"
    assert (created["state"], created["attempt"], created["canary_started_at"]) == ("shadow", 0, None)
    sign_off = ("--signed-off-by", "soc-lead", "--reason", "pilot", "--as", "alice")
    started = cli.json("canary", "start", sid, *sign_off)
    assert (started["state"], started["attempt"], started["canary_started_at"]) == ("canary", 1, iso(T0))

    cli.now = T0 + timedelta(hours=1)
    answers = cli.json("ingest", "decisions", cli.jsonl([decision(i) for i in range(1, 95)]))["results"]
    assert len(answers) == 94 and all(set(a) >= ANSWER_KEYS for a in answers)
    assert [a["decision_id"] for a in answers] == [f"d-{i}" for i in range(1, 95)]
    assert all(a["mode"] == "canary" and a["execute"] is True and a["slice_ids"] == [sid] for a in answers)
    reviewed = cli.json("ingest", "outcomes", cli.jsonl([outcome(i) for i in range(1, 94)]))
    assert (reviewed["accepted"], reviewed["actions"]) == (93, [])

    cli.now = T0 + timedelta(days=3)
    early = cli.json("evaluate")["results"]
    assert [(r["slice_id"], r["action"]) for r in early] == [(sid, "continue")]
    assert any("age" in reason and "7" in reason for reason in early[0]["reasons"]), early[0]["reasons"]
    late = cli.json("evaluate", "--now", iso(T0 + timedelta(days=8)))["results"]
    assert [(r["slice_id"], r["action"]) for r in late] == [(sid, "promote")]
    assert all({"slice_id", "action", "reasons"} <= set(r) and r["action"] in ACTIONS for r in early + late)

    cli.now = T0 + timedelta(days=8, hours=1)
    active = cli.json("slice", "show", sid)
    assert_slice_shape(active)
    assert (active["state"], active["promoted_at"]) == ("active", iso(T0 + timedelta(days=8)))
    ev = active["evidence"]
    expected = {
        "decisions": 94,
        "executed": 94,
        "reviewed": 93,
        "correct": 93,
        "incorrect": 0,
        "missed_tp": 0,
    }
    assert {k: ev[k] for k in expected} == expected
    assert ev["precision"] == 1.0

    missed = cli.json("ingest", "outcomes", cli.jsonl([outcome(94, "true_positive", source="incident")]))
    assert missed["accepted"] == 1
    [action] = missed["actions"]
    assert action["slice_id"] == sid and action["action"] == "rollback"
    gate = cli.json("gate", *ACME_LOW_PHISHING)
    assert (gate["mode"], gate["execute"], gate["slice_ids"]) == ("killed", False, [])
    kid = gate["kill_switch_id"]
    assert kid and action.get("kill_switch_id", kid) == kid

    refused = cli.run("kill", "deactivate", kid, "--reason", "too early", expect=1)
    assert "slice reset" in one_line(refused)
    reset = cli.json("slice", "reset", sid, "--reason", "model fixed")
    assert (reset["state"], reset["attempt"]) == ("shadow", 1)
    [switch] = cli.json("kill", "list")["kill_switches"]
    assert set(switch) >= KILL_KEYS
    assert (switch["id"], switch["active"], switch["scope"]) == (kid, False, created["scope"])
    assert switch["activated_at"] == switch["deactivated_at"] == iso(cli.now)

    trail = [(e["type"], e["actor"]) for e in events(cli) if e["slice_id"] == sid]
    assert [t for t, _ in trail] == [
        "slice.created",
        "canary.started",
        "canary.promoted",
        "canary.rolled_back",
        "kill_switch.activated",
        "slice.reset",
        "kill_switch.deactivated",
    ]
    assert trail[1][1] == {"type": "user", "id": "alice"}, "--as names the actor"
    assert trail[5][1] == {"type": "user", "id": "tester"}, "TETHER_ACTOR names the actor"


def test_exit_codes_of_refusals_and_bad_input(cli: Any) -> None:
    """Unknown ids, fields or values, bad scopes, no sign-off exit 2; rule refusals exit 1; one error line."""
    sid = cli.json("slice", "create", "--scope", "tenant=acme")["id"]
    bad_input = {  # command -> what its error line must name
        ("slice", "show", "sl_does_not_exist"): "sl_does_not_exist",
        ("policy", "set", "no_such_field=1"): "no_such_field",
        ("policy", "set", "promote_min_precision=1.5"): "promote_min_precision",
        ("policy", "set", "evidence=bogus"): "evidence",
        ("slice", "create", "--scope", "colour=red"): "colour",
        ("slice", "create", "--scope", "tenant="): "tenant",
        ("slice", "create", "--scope", "severity=95"): "severity",
        ("canary", "start", sid): "signed",
    }
    for proc, needle in zip(side_by_side(cli, list(bad_input), expect=2), bad_input.values(), strict=True):
        assert needle in one_line(proc), (proc.args, proc.stderr)
    duplicate, promote = side_by_side(
        cli,
        [("slice", "create", "--scope", "tenant=acme"), ("canary", "promote", sid, "--reason", "eager")],
        expect=1,
    )
    assert "tenant=acme" in one_line(duplicate)
    assert "shadow" in one_line(promote)

    # Thin shadow evidence: 10 decisions, 90% agreement and close precision, one missed true positive.
    cli.now = T0 + timedelta(hours=1)
    cli.run("ingest", "decisions", cli.jsonl([decision(i) for i in range(1, 11)]))
    dispositions = ["false_positive"] * 9 + ["true_positive"]
    cli.run("ingest", "outcomes", cli.jsonl([outcome(i, d) for i, d in enumerate(dispositions, start=1)]))
    unmet = one_line(cli.run("canary", "start", sid, "--if-ready", expect=1))
    criteria = ("shadow_min_decisions", "shadow_min_agreement", "rollback_below_precision", "max_missed_tp")
    for criterion in criteria:
        assert criterion in unmet, f"{criterion} not named in {unmet!r}"


def test_jsonl_errors_name_the_line_and_write_nothing(cli: Any) -> None:
    """A bad JSON-lines file exits 2 with one `line N: FIELD:` error line (blanks count), writing nothing."""
    sid = cli.json("slice", "create", "--scope", "tenant=acme")["id"]
    cli.run("canary", "start", sid, "--signed-off-by", "soc-lead", "--reason", "pilot")
    cli.now = T0 + timedelta(hours=1)
    [first] = cli.json("ingest", "decisions", cli.jsonl([decision(1)]))["results"]
    before_slice, before_events = cli.json("slice", "show", sid), events(cli)

    good = json.dumps(decision(2)) + "\n"
    missing = {k: v for k, v in decision(3).items() if k != "decided_at"}
    bad_decisions = [
        (good + "\n\n" + '{"decision_id": "d-3", \n', 4, None),
        (good + "\n" + json.dumps(decision(3, colour="red")) + "\n", 3, "colour"),
        ("\n\n\n" + good + "\n" + json.dumps(decision(3, severity="banana")) + "\n", 6, "severity"),
        ("\n" + good + json.dumps(missing) + "\n", 3, "decided_at"),
    ]
    tp_then_unknown = json.dumps(outcome(1, "true_positive")) + "\n\n\n" + json.dumps(outcome("nope")) + "\n"
    calls = [("ingest", "decisions", str(cli.jsonl([], raw=raw))) for raw, _, _ in bad_decisions]
    calls.append(("ingest", "outcomes", str(cli.jsonl([], raw=tp_then_unknown))))
    expected = [(line, field) for _, line, field in bad_decisions] + [(4, "decision_id")]
    for proc, (line, field) in zip(side_by_side(cli, calls, expect=2), expected, strict=True):
        message = one_line(proc)
        assert message.startswith(f"line {line}:"), message
        if field:
            assert message.startswith(f"line {line}: {field}:"), message

    after_slice = cli.json("slice", "show", sid)
    assert after_slice["state"] == "canary", "the true positive before the bad line must not roll back"
    assert after_slice["evidence"] == before_slice["evidence"]
    assert events(cli) == before_events

    # d-2 was on a good line of every bad file: it was never recorded, so it counts now; d-1 replays.
    again = cli.json("ingest", "decisions", cli.jsonl([decision(2), decision(1)]))["results"]
    assert again[1] == first
    assert again[0]["decision_id"] == "d-2" and again[0]["execute"] is True
    counted = cli.json("slice", "show", sid)["evidence"]
    assert (counted["decisions"], counted["executed"]) == (before_slice["evidence"]["decisions"] + 1,) * 2

    changed_body = "\n" + json.dumps(decision(1, verdict="escalate")) + "\n"
    conflict = one_line(cli.run("ingest", "decisions", cli.jsonl([], raw=changed_body), expect=2))
    assert conflict.startswith("line 2:") and "d-1" in conflict, conflict
    assert cli.json("slice", "show", sid)["evidence"] == counted


def test_policy_changes_are_audited_with_the_actor(cli: Any) -> None:
    """policy show is flat with §5 defaults; policy set and slice policy change, audit and name the actor."""
    shown = cli.json("policy", "show")
    assert all(not isinstance(v, dict | list) for v in shown.values()), "policy show is one flat object"
    assert {k: shown.get(k) for k in POLICY_DEFAULTS} == POLICY_DEFAULTS

    changed = json.loads(cli.run("--as", "carol", "policy", "set", "promote_after_days=5", "--json").stdout)
    assert changed["promote_after_days"] == 5
    sid = cli.json("slice", "create", "--scope", "tenant=acme")["id"]
    dave = {"TETHER_ACTOR": "dave"}
    tuned = json.loads(cli.run("slice", "policy", sid, "--set", "max_missed_tp=2", "--json", env=dave).stdout)
    assert tuned["id"] == sid
    assert tuned["policy"]["max_missed_tp"] == 2 and tuned["policy"]["promote_after_days"] == 5

    by_type = {e["type"]: e for e in events(cli)}
    policy_changed, slice_changed = by_type["policy.changed"], by_type["slice.policy_changed"]
    assert policy_changed["actor"] == {"type": "user", "id": "carol"}
    assert "promote_after_days" in json.dumps(policy_changed["payload"])
    assert slice_changed["actor"] == {"type": "user", "id": "dave"} and slice_changed["slice_id"] == sid
    assert "max_missed_tp" in json.dumps(slice_changed["payload"])


def test_gate_reads_severity_words_and_numbers(cli: Any) -> None:
    """`gate --severity 95` and `--severity critical` answer alike, 89 does not; `slice list` wraps slices."""
    sid = cli.json("slice", "create", "--scope", "tenant=acme,severity=critical")["id"]
    cli.run("canary", "start", sid, "--signed-off-by", "soc-lead", "--reason", "pilot")
    alert = ("--tenant", "acme", "--rule-family", "phishing", "--data-source", "o365")
    calls = [("gate", *alert, "--severity", sev, "--json") for sev in ("95", "critical", "89")]
    procs = side_by_side(cli, [*calls, ("slice", "list", "--json")], expect=0)
    by_number, by_word, below, listed = (json.loads(p.stdout) for p in procs)
    assert [s["id"] for s in listed["slices"]] == [sid]
    assert_slice_shape(listed["slices"][0])
    assert by_number == by_word
    assert (by_word["mode"], by_word["execute"], by_word["slice_ids"]) == ("canary", True, [sid])
    assert (below["mode"], below["execute"]) == ("shadow", False)
