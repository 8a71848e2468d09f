"""Running scenarios: one run to a summary, or many seeds under several methods to a comparison."""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tether.services import audit
from tether.sim.engine import Simulation
from tether.sim.scenario import Scenario
from tether.sim.summary import summarize

COMPARED = (
    "coverage",
    "executed",
    "reviews_used",
    "harm",
    "harm_after_first_missed_tp_report",
    "false_promotions",
    "false_rollbacks",
    "healthy_promoted",
    "mean_days_to_promotion",
)


def run_scenario(
    scenario: Scenario,
    seed: int = 0,
    db_url: str | None = None,
    evidence: str | None = None,
    on_day: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Run one scenario on a real SQLite file (a temporary one unless given) and summarise it."""
    with tempfile.TemporaryDirectory(prefix="tether-sim-") as tmp:
        url = db_url or f"sqlite:///{Path(tmp) / 'sim.db'}"
        sim = Simulation(scenario, url, seed, evidence)
        try:
            log = sim.run(on_day)
            events = audit.list_events(sim.ctx)
            method = evidence or str(scenario.policy.get("evidence", "sequential"))
            return summarize(scenario, seed, method, log, events, dict(sim.scopes))
        finally:
            sim.ctx.db.dispose()


def _run_totals(args: tuple[Scenario, int, str]) -> dict[str, Any]:
    scenario, seed, method = args
    totals: dict[str, Any] = run_scenario(scenario, seed, evidence=method)["totals"]
    return totals


def compare(
    scenario: Scenario,
    methods: list[str],
    seeds: int,
    workers: int = 1,
    on_run: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Run the same scenario and seeds under each method; mean and range of each total."""
    jobs = [(scenario, seed, method) for method in methods for seed in range(seeds)]
    results: list[dict[str, Any]] = []
    if workers > 1:
        from multiprocessing import get_context

        with get_context("spawn").Pool(workers) as pool:
            for totals in pool.imap(_run_totals, jobs):
                results.append(totals)
                if on_run:
                    on_run()
    else:
        for job in jobs:
            results.append(_run_totals(job))
            if on_run:
                on_run()
    table: dict[str, Any] = {}
    for i, method in enumerate(methods):
        runs = results[i * seeds : (i + 1) * seeds]
        table[method] = {key: _spread([r[key] for r in runs]) for key in COMPARED}
    return {"scenario": scenario.name, "seeds": seeds, "methods": methods, "table": table}


def _spread(values: list[Any]) -> dict[str, float | None]:
    known = [float(v) for v in values if v is not None]
    if not known:
        return {"mean": None, "min": None, "max": None, "runs": 0}
    return {"mean": statistics.fmean(known), "min": min(known), "max": max(known), "runs": len(known)}
