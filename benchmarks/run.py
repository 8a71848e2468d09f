"""`make bench`: Tether's speed as ratios against baselines measured in the same run, into docs/benchmarks.md.

Machines here are shared and noisy, so every figure stands beside a baseline taken in the same run moments
before or after; the ratio is the result. `--quick` runs every benchmark at a tiny size (CI keeps them
working that way); the full run takes a quarter of an hour.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))  # the sibling bench_* modules, also when imported

from bench_http import bench_http
from bench_outcomes import bench_outcomes_batched, bench_rollback_latency
from bench_postgres import bench_decide, bench_propagation, throwaway_database
from bench_scale import bench_evaluate, bench_memory, fill
from benchlib import ROOT, T0, decisions, fresh, pg_server_version, raw_copy, raw_executemany, result, timed
from tether.services import decide
from tether.sim.run import run_scenario
from tether.sim.scenario import load_scenario

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432"


def bench_gate(sizes: tuple[int, ...], alerts: int) -> list[dict[str, Any]]:
    """The gate in-process: warm (cached) and cold answers over many distinct alerts, against 4 dict.get."""
    import random

    from tether.domain.gate import GateSlice, GateView
    from tether.domain.model import Actor, ActorType, KillSwitch, SliceState
    from tether.domain.scope import Dimensions, Scope

    others = {
        "severity": ["low", "medium", "high", "critical"],
        "rule_family": [f"f{i}" for i in range(50)],
        "data_source": [f"s{i}" for i in range(20)],
    }
    odds = {"severity": 0.3, "rule_family": 0.6, "data_source": 0.4}

    def scope(rng: random.Random, tenants: int) -> Scope:
        pairs = [("tenant", f"t{rng.randrange(tenants)}")] if tenants else []
        pairs += [(d, rng.choice(v)) for d, v in others.items() if rng.random() < odds[d]]
        return Scope(tuple(pairs))

    # Each size keeps the same shape, so that only the count changes: five slices per tenant, a few
    # slices naming no tenant (at most 100: organisation-wide rules), and the alerts spread over all
    # the tenants. Kill switches are pulled on tenants' slices (a global one would make every answer a
    # cheap `killed`, which is not the point).
    nested = {"a": {"b": {"c": {"d": 1}}}}
    out = []
    for size in sizes:
        rng = random.Random(size)
        tenants, shared = size // 5, min(100, size // 10)
        index: dict[Any, GateSlice] = {}
        while len(index) < size:
            s = scope(rng, tenants if len(index) >= shared else 0)
            index[s.pairs] = GateSlice(f"sl{len(index)}", s, rng.choice(list(SliceState)), 1)
        distinct: set[tuple[str, ...]] = set()
        while len(distinct) < alerts:  # distinct combinations (at 100 slices, 80,000 are possible)
            distinct.add((f"t{rng.randrange(tenants)}", *(rng.choice(v) for v in others.values())))
        sample = [dict(zip(("tenant", *others), combination, strict=True)) for combination in distinct]
        owned = [s.scope for s in index.values() if s.scope.value("tenant") is not None]
        actor = Actor(ActorType.USER, "b")
        kills = [KillSwitch(f"k{i}", rng.choice(owned), "r", True, actor, T0) for i in range(100)]
        view = GateView.build(Dimensions(), list(index.values()), kills)
        cold = timed(lambda view=view, sample=sample: [view.answer(a) for a in sample])
        warm = timed(lambda view=view, sample=sample: [view.answer(a) for a in sample])
        base_s = timed(lambda: [nested.get("a").get("b").get("c").get("d") for _ in range(alerts)])
        base = ("a chain of 4 dict.get", alerts / base_s)
        warm_rate, cold_rate = alerts / warm, alerts / cold
        out.append(
            result(
                f"gate in-process, warm, {size:,} slices, 100 kill switches",
                "answers/s",
                warm_rate,
                base,
                "≥ 500,000/s (issue 8)",
                warm_rate >= 500_000,
            )
        )
        out.append(
            result(
                f"gate in-process, cold, {size:,} slices ({alerts:,} distinct alerts)",
                "answers/s",
                cold_rate,
                base,
                "≥ 100,000/s (issue 8)",
                cold_rate >= 100_000,
            )
        )
    return out + _flatness(out, sizes)


def _flatness(rows: list[dict[str, Any]], sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    """Largest size against the smallest, warm and cold: the gate should not slow down with more slices."""
    out = []
    for kind, offset in (("warm", 0), ("cold", 1)):
        small, large = rows[offset], rows[-2 + offset]
        out.append(
            result(
                f"gate {kind}, {sizes[-1]:,} slices against {sizes[0]:,} slices",
                "answers/s",
                large["value"],
                (f"the gate {kind} at {sizes[0]:,} slices", small["value"]),
                "flat: ≥ 0.5× (issue 8)",
                large["value"] >= 0.5 * small["value"],
            )
        )
    return out


def bench_decide_library(tmp: Path, n: int) -> dict[str, Any]:
    ctx = fresh(f"sqlite:///{tmp / 'lib.db'}")
    items = decisions(n, "lib")
    elapsed = timed(lambda: [decide.decide(ctx, items[i : i + 1000]) for i in range(0, n, 1000)])
    ctx.db.dispose()
    copied, seconds = raw_copy(tmp / "lib.db", "lib", 1000)
    assert copied == n
    base = n / seconds
    rate = n / elapsed
    return result(
        "decide through the library, batches of 1,000 (SQLite)",
        "decisions/s",
        rate,
        ("raw sqlite3 executemany of the same rows (as stored), same table", base),
        "≥ 0.5× baseline (issue 8)",
        rate >= 0.5 * base,
    )


def bench_simulator(tmp: Path, days: int, scale: int) -> list[dict[str, Any]]:
    base = load_scenario("default").model_copy(update={"days": days})
    big = base.model_copy(
        update={
            "tenants": [
                t.model_copy(update={"alerts_per_day": t.alerts_per_day * scale}) for t in base.tenants
            ]
        }
    )
    out = []
    for label, scenario in (("1×", base), (f"{scale}×", big)):
        start = time.perf_counter()
        summary = run_scenario(scenario, seed=0, db_url=f"sqlite:///{tmp / f'sim-{label}.db'}")
        elapsed = time.perf_counter() - start
        alerts = summary["totals"]["alerts"]
        rate = alerts / elapsed
        out.append(
            result(
                f"simulator, default scenario at {label} volume, {days} days ({alerts:,} alerts)",
                "alerts/s",
                rate,
                (
                    "raw sqlite3 executemany of as many decision rows",
                    alerts / raw_executemany(tmp / f"sim-{label}.db", alerts, 1000),
                ),
                "30 days at 1× in < 60 s (issue 3): ≥ 2,000 alerts/s at 1×" if label == "1×" else "none set",
                rate >= 2_000 if label == "1×" else None,
                seconds=elapsed,
            )
        )
    return out


def _figure(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
    return f"{text} {unit}"


def _cells(r: dict[str, Any]) -> tuple[str, str, str]:
    """Measured, baseline and ratio cells; latencies show p50 and p99 and compare the p99s."""
    unit = r["unit"]
    if "p50" in r:
        measured = f"p50 {_figure(r['p50'], unit)}, p99 {_figure(r['value'], unit)}"
        baseline = f"p50 {_figure(r['baseline_p50'], unit)}, p99 {_figure(r['baseline'], unit)}"
    else:
        measured = _figure(r["value"], unit) + (f" ({r['seconds']:.1f} s)" if "seconds" in r else "")
        baseline = _figure(r["baseline"], unit)
    ratio = f"{r['value'] / r['baseline']:.3g}×" if r["baseline"] else "–"
    return measured, f"{r['baseline_name']}: {baseline}", ratio


MET = {True: "**met**", False: "**not met**", None: "–"}


def render(results: list[dict[str, Any]], command: str, facts: dict[str, str]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in facts.items())
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `{command}` on {datetime.now(UTC):%Y-%m-%d}: {os.cpu_count()} cores, {versions}. "
        "Each figure stands beside a baseline measured in the same run; on a shared, noisy machine the "
        "ratio is the result. Rates: higher is better; latencies and times (ms, s, MB): lower is better, "
        "and their ratio is figure ÷ baseline.",
        "",
        "| benchmark | measured | baseline (same run) | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        measured, baseline, ratio = _cells(r)
        lines.append(f"| {r['name']} | {measured} | {baseline} | {ratio} | {r['target']} | {MET[r['met']]} |")
    notes = ROOT / "benchmarks" / "NOTES.md"
    if notes.exists() and "--quick" not in command:
        lines += ["", notes.read_text().strip()]
    lines += [
        "",
        "The `--quick` run in CI only keeps these benchmarks working; its figures mean nothing.",
    ]
    return "\n".join(lines) + "\n"


SIZES = {
    "quick": {
        "gate": ((100, 10_000), 2_000),
        "lib": 2_000,
        "pg": (20, 2_000, 4),
        "outcomes": 2_000,
        "rollback": 5,
        "scale": (100, 10),
        "http": (200, 2_000),
        "sim": (1, 2),
    },
    "full": {
        "gate": ((100, 10_000, 100_000), 50_000),
        "lib": 50_000,
        "pg": (500, 20_000, 100),
        "outcomes": 20_000,
        "rollback": 200,
        "scale": (10_000, 1_000),
        "http": (3_000, 60_000),
        "sim": (7, 10),
    },
}


def run_postgres(server: str, tmp: Path, size: dict[str, Any], facts: dict[str, str]) -> list[dict[str, Any]]:
    single, batched, rounds = size["pg"]
    facts["PostgreSQL"] = pg_server_version(
        server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    )
    with throwaway_database(server) as url:
        out = bench_decide(url, single, batched)
    with throwaway_database(server) as url:
        out.append(bench_propagation(url, tmp, rounds))
    return out


def run_scale(tmp: Path, size: dict[str, Any]) -> list[dict[str, Any]]:
    slices, per_slice = size["scale"]
    path = tmp / "scale.db"
    seconds = fill(path, slices, per_slice)
    print(f"filled {slices * per_slice:,} decisions in {seconds:.0f} s", file=sys.stderr)
    out = bench_evaluate(path, slices, per_slice)
    out.append(bench_memory(path, tmp, slices, per_slice))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to keep the benchmarks working")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--postgres", default=POSTGRES, help="PostgreSQL server URL (no database name)")
    parser.add_argument("--no-postgres", action="store_true", help="leave out the PostgreSQL benchmarks")
    parser.add_argument("--only", help="comma-separated: gate,lib,pg,outcomes,rollback,scale,http,sim")
    args = parser.parse_args()
    size = SIZES["quick" if args.quick else "full"]
    only = set(args.only.split(",")) if args.only else set(size)
    facts = {"Python": platform.python_version(), "SQLite": sqlite3.sqlite_version}
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tether-bench-") as name:
        tmp = Path(name)
        steps = {
            "gate": lambda: bench_gate(*size["gate"]),
            "lib": lambda: [bench_decide_library(tmp, size["lib"])],
            "pg": lambda: [] if args.no_postgres else run_postgres(args.postgres, tmp, size, facts),
            "outcomes": lambda: [bench_outcomes_batched(tmp, size["outcomes"])],
            "rollback": lambda: bench_rollback_latency(tmp, size["rollback"]),
            "scale": lambda: run_scale(tmp, size),
            "http": lambda: bench_http(tmp, *size["http"]),
            "sim": lambda: bench_simulator(tmp, *size["sim"]),
        }
        for key, step in steps.items():
            if key in only:
                results += step()
                print(f"{key} done at {time.perf_counter() - started:.0f} s", file=sys.stderr)
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "")
    if args.only:
        command += f" --only {args.only}"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(results, command, facts))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
