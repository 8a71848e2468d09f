"""The simulator: deterministic per seed, numbers that can be checked by hand, reports and clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.domain.errors import BadInput
from tether.sim.report import write_report
from tether.sim.run import compare, run_scenario
from tether.sim.scenario import BUILT_IN, load_scenario, parse_scenario

PERFECT: dict[str, Any] = {
    "name": "perfect",
    "days": 9,
    "start": "2026-03-02T00:00:00Z",
    "tenants": [{"name": "acme", "alerts_per_day": 240}],
    "rule_families": [{"name": "phishing", "share": 1}],
    "data_sources": [{"name": "o365", "share": 1}],
    "severity": {"low": 1},
    "agent": {"close_rate": 1.0, "close_precision": 1.0},
    "reviews": {"delay_hours": [1, 1], "review_rate": 1.0, "follow_sampling": False},
    "slices": ["tenant=acme"],
    "operator": {"start_canary": [{"day": 1, "scope": "tenant=acme"}], "reset_after_rollback_days": None},
}


def _scenario(**over: Any) -> Any:
    return parse_scenario({**PERFECT, **over})


def test_a_perfect_agent_gives_hand_computable_numbers() -> None:
    """240 alerts a day, all closed right, all reviewed: shadow day 0, canary from day 1, promoted day 8."""
    summary = run_scenario(_scenario(), seed=3)
    t = summary["totals"]
    assert t["alerts"] == t["decisions"] == 240 * 9
    assert t["executed"] == 240 * 8, "every alert from day 1 on is closed by the agent"
    assert t["coverage"] == pytest.approx(8 / 9, abs=1e-5)
    assert t["reviews_used"] == t["executed"], "review_rate 1: every executed close is reviewed"
    assert t["harm"] == 0 and t["false_promotions"] == 0 and t["false_rollbacks"] == 0
    (only,) = summary["slices"]
    assert [(tr["day"], tr["type"]) for tr in only["transitions"]] == [
        (1.0, "canary.started"),
        (8.0, "canary.promoted"),
    ]
    assert only["days_to_promotion"] == 7.0 and t["mean_days_to_promotion"] == 7.0
    assert only["truth"] == [1.0] * 9
    assert [d["executed"] for d in summary["per_day"]] == [0] + [240] * 8


def test_an_agent_that_closes_real_attacks_is_rolled_back_on_the_first_report() -> None:
    """Every close a true positive: the first review (an hour later) rolls the slice back, stopping harm."""
    summary = run_scenario(
        _scenario(days=3, agent={"close_rate": 1.0, "close_precision": 0.0, "benign_share_of_errors": 0.0}),
        seed=5,
    )
    (only,) = summary["slices"]
    types = [tr["type"] for tr in only["transitions"]]
    assert types == ["canary.started", "canary.rolled_back"]
    rollback = only["transitions"][1]
    assert 1.0 < rollback["day"] <= 1.0 + 2 / 24, "within the hour after the first review arrives"
    assert "missed true positive" in rollback["reasons"][0]
    t = summary["totals"]
    assert t["harm"] == t["executed"] > 0, "every executed close was a true positive"
    assert t["harm_before_first_missed_tp_report"] + t["harm_after_first_missed_tp_report"] == t["harm"]
    assert t["executed"] < 30, "the kill switch stops executions within about an hour (10 alerts an hour)"
    assert t["false_rollbacks"] == 0, "a rollback on a missed TP is never a false rollback"


def test_same_seed_same_run_other_seed_other_run() -> None:
    """A run is deterministic for a seed, down to slice ids and every number; another seed differs."""
    scenario = _scenario(days=3, agent={"close_rate": 0.7, "close_precision": 0.99})
    first = run_scenario(scenario, seed=11)
    again = run_scenario(scenario, seed=11)
    other = run_scenario(scenario, seed=12)
    assert json.dumps(first, sort_keys=True) == json.dumps(again, sort_keys=True)
    assert first["totals"] != other["totals"]


def test_report_writes_summary_html_and_charts(tmp_path: Path) -> None:
    """--report writes summary.json, index.html and the PNG charts it links to."""
    summary = run_scenario(_scenario(days=2), seed=1)
    index = write_report(summary, tmp_path / "report")
    page = index.read_text()
    for name in ("states.png", "coverage.png", "precision-1.png"):
        assert (tmp_path / "report" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f'src="{name}"' in page
    assert json.loads((tmp_path / "report" / "summary.json").read_text())["totals"] == summary["totals"]


def test_comparison_has_each_method_with_mean_and_range() -> None:
    """--compare runs the same seeds under each method and gives mean, min and max of each total."""
    result = compare(_scenario(days=2), ["point", "sequential", "sprt"], seeds=2)
    assert set(result["table"]) == {"point", "sequential", "sprt"}
    coverage = result["table"]["sequential"]["coverage"]
    assert coverage["min"] <= coverage["mean"] <= coverage["max"] and coverage["runs"] == 2
    assert result["table"]["point"]["executed"] == result["table"]["sprt"]["executed"], (
        "same traffic, same seeds"
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tenants": [{"name": "acme", "alerts_per_day": -5}]}, "tenants.0.alerts_per_day"),
        ({"rule_families": [{"name": "a", "share": 0.5}]}, "rule_families"),
        ({"agent": {"close_precision": 1.5}}, "agent.close_precision"),
        ({"policy": {"evidence": "guess"}}, "policy"),
        ({"unknown_field": 1}, "unknown_field"),
        ({"start": "2026-03-02T00:00:00"}, "start"),
    ],
)
def test_bad_scenarios_name_the_field(change: dict[str, Any], field: str) -> None:
    """A scenario with a bad field is refused with a message that names it."""
    with pytest.raises(BadInput) as caught:
        parse_scenario({**PERFECT, **change})
    assert field in caught.value.message


def test_built_in_scenarios_load() -> None:
    """The built-in scenarios are valid and named as the CLI lists them."""
    for name in BUILT_IN:
        assert load_scenario(name).name == name


def test_cli_simulate_json_and_bad_file(cli: Any, tmp_path: Path) -> None:
    """`tether simulate --json` prints the summary; a bad scenario file exits 2 naming the field."""
    good = tmp_path / "s.yaml"
    good.write_text(yaml.safe_dump({**PERFECT, "days": 2}))
    summary = cli.json("simulate", "--scenario", good, "--seed", "4")
    assert summary["totals"]["alerts"] == 480 and summary["seed"] == 4
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**PERFECT, "days": 0}))
    proc = cli.run("simulate", "--scenario", bad, expect=2)
    assert "days" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
