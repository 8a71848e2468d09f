"""`make demo`: thirty virtual days of a SOC through Tether, a report, and the story of what happened."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tether.bootstrap import build
from tether.config import Settings
from tether.services import audit
from tether.sim.report import write_report
from tether.sim.run import run_scenario
from tether.sim.scenario import load_scenario
from tether.sim.story import story


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tether.demo", description=__doc__)
    parser.add_argument("--db", default="tether-demo.db", help="SQLite file to fill (replaced)")
    parser.add_argument("--report", default="demo-report", help="directory for the report")
    parser.add_argument("--days", type=int, default=None, help="override the scenario's 30 days")
    args = parser.parse_args(argv)
    db = Path(args.db)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    scenario = load_scenario("default")
    if args.days:
        scenario = scenario.model_copy(update={"days": args.days})
    url = f"sqlite:///{db}"
    print(
        f"Simulating {scenario.days} days of the `default` scenario through Tether (a few seconds a day)..."
    )
    summary = run_scenario(scenario, seed=0, db_url=url)
    index = write_report(summary, Path(args.report))
    print("\n".join(story(summary)))
    ctx = build(Settings(database_url=url))
    report = audit.verify(ctx)
    ctx.db.dispose()
    state = "verified" if report.ok else f"BROKEN at seq {report.bad_seq}"
    print(f"\naudit trail: {report.count} events, {state}; head {report.head_seq}:{report.head_hash[:16]}…")
    print(f"report: {index} (open it in a browser)")
    print(f"look around: .venv/bin/tether --db {url} slice list   |   ... audit list   |   ... kill list")
    print(f"serve it over HTTP: .venv/bin/tether token create --role admin --db {url}, then")
    print(f"                    .venv/bin/tether serve --db {url}   (the dashboard: http://127.0.0.1:8000/)")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
