"""`tether simulate`: run a SOC scenario through Tether in virtual time, report, or compare methods."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from tether.cli import render
from tether.cli.common import Db, Json, handled
from tether.domain.errors import BadInput


@handled
def simulate_cmd(
    scenario: Annotated[
        str, typer.Option("--scenario", help="default, degrading, new-tenant, thin-reviews, or a YAML file")
    ] = ("default"),
    days: Annotated[int | None, typer.Option("--days", min=1, help="Override the scenario's days")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same run")] = 0,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write summary.json, index.html, charts")
    ] = None,
    compare: Annotated[
        str | None, typer.Option("--compare", help="Evidence methods to compare, e.g. point,sequential,sprt")
    ] = None,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="With --compare: seeds per method")] = 20,
    workers: Annotated[int, typer.Option("--workers", min=1, help="With --compare: parallel runs")] = 1,
    db: Db = None,
    as_json: Json = False,
) -> None:
    """Simulate a SOC through Tether's real services in virtual time (deterministic per seed)."""
    from tether.sim.run import compare as run_compare
    from tether.sim.run import run_scenario
    from tether.sim.scenario import load_scenario
    from tether.sim.story import comparison_table, story

    chosen = load_scenario(scenario)
    if days is not None:
        chosen = chosen.model_copy(update={"days": days})
    if compare:
        methods = [m.strip() for m in compare.split(",") if m.strip()]
        unknown = [m for m in methods if m not in ("point", "sequential", "sprt")]
        if unknown or not methods:
            raise BadInput.at("compare", f"unknown evidence method {unknown[0] if unknown else ''!r}")
        with Progress(transient=True, disable=as_json) as bar:
            task = bar.add_task("runs", total=len(methods) * seeds)
            result = run_compare(chosen, methods, seeds, workers, on_run=lambda: bar.advance(task))
        if as_json:
            render.print_json(result)
        else:
            print("\n".join(comparison_table(result)))
        return
    with Progress(transient=True, disable=as_json) as bar:
        task = bar.add_task(f"{chosen.name}: days", total=chosen.days)
        summary = run_scenario(chosen, seed, db_url=db, on_day=lambda _d: bar.advance(task))
    if report is not None:
        from tether.sim.report import write_report

        write_report(summary, report)
    if as_json:
        render.print_json(summary)
        return
    print("\n".join(story(summary)))
    if report is not None:
        print(f"\nreport: {report / 'index.html'}")
