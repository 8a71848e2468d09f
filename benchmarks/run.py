"""`make bench`: Tether's speed as ratios against baselines measured in the same run, into docs/benchmarks.md.

Machines here are shared and noisy, so every figure stands beside a baseline taken in the same process
moments before; the ratio is the result. `--quick` runs every benchmark at a tiny size (CI keeps them
working that way); the full run takes several minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tether.bootstrap import build
from tether.client import TetherClient
from tether.config import Settings
from tether.services import decide, lifecycle, setup
from tether.services.context import Context, FixedClock
from tether.sim.run import run_scenario
from tether.sim.scenario import load_scenario
from tether.store import tables

T0 = datetime(2026, 3, 2, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]


def decisions(n: int, prefix: str) -> list[dict[str, Any]]:
    families = ("phishing", "impossible_travel", "dns_tunnel")
    return [
        {
            "decision_id": f"{prefix}-{i}",
            "alert_id": f"A-{prefix}-{i}",
            "tenant": ("acme", "globex")[i % 2],
            "severity": (10, 45, 75, 95)[i % 4],
            "rule_family": families[i % 3],
            "data_source": ("o365", "okta")[i % 2],
            "verdict": "close" if i % 10 else "escalate",
            "decided_at": "2026-03-02T10:00:00Z",
        }
        for i in range(n)
    ]


def fresh(tmp: Path, name: str) -> Context:
    ctx = build(Settings(database_url=f"sqlite:///{tmp / name}", actor="bench"), clock=FixedClock(T0))
    setup.init(ctx)
    for scope in ("tenant=acme", "tenant=globex", "tenant=globex,rule_family=dns_tunnel"):
        s = lifecycle.create_slice(ctx, scope)
        lifecycle.start_canary(ctx, s.id, signed_off_by="bench", reason="benchmark")
    return ctx


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def raw_executemany(path: Path, rows: int, batch: int) -> float:
    """Baseline: the same number of rows into the same decisions table with plain sqlite3 executemany."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    cols = [c.name for c in tables.decisions.columns if c.name != "pk"]
    sql = f"INSERT INTO decisions ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
    values = {
        "alert_id": "A",
        "tenant": "acme",
        "dims": "{}",
        "verdict": "close",
        "confidence": None,
        "model_version": None,
        "decided_at": "2026-03-02T10:00:00.000000Z",
        "recorded_at": "2026-03-02T10:00:00.000000Z",
        "body": "{}",
        "mode": "canary",
        "execute": 1,
        "slice_ids": "[]",
        "reason": "r",
        "kill_switch_id": None,
        "review": 0,
        "out_disposition": None,
        "out_source": None,
        "out_seq": None,
        "first_review_seq": None,
    }
    start = time.perf_counter()
    for b in range(0, rows, batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            sql,
            [
                tuple(f"raw-{i}" if c == "decision_id" else values[c] for c in cols)
                for i in range(b, min(rows, b + batch))
            ],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def bench_gate(sizes: tuple[int, ...], alerts: int) -> list[dict[str, Any]]:
    """The gate in-process: warm (cached) and cold answers over many distinct alerts, against 4 dict.get."""
    import random

    from tether.domain.gate import GateSlice, GateView
    from tether.domain.model import Actor, ActorType, KillSwitch, SliceState
    from tether.domain.scope import Dimensions, Scope

    rng = random.Random(7)
    values = {
        "tenant": [f"t{i}" for i in range(2000)],
        "severity": ["low", "medium", "high", "critical"],
        "rule_family": [f"f{i}" for i in range(25)],
        "data_source": [f"s{i}" for i in range(10)],
    }
    odds = {"tenant": 0.95, "severity": 0.3, "rule_family": 0.6, "data_source": 0.4}

    def scope() -> Scope:
        return Scope(tuple((d, rng.choice(v)) for d, v in values.items() if rng.random() < odds[d]))

    sample = [{d: rng.choice(v) for d, v in values.items()} for _ in range(alerts)]
    nested = {"a": {"b": {"c": {"d": 1}}}}
    out = []
    for size in sizes:
        index: dict[Any, GateSlice] = {}
        while len(index) < size:
            s = scope()
            index[s.pairs] = GateSlice(f"sl{len(index)}", s, rng.choice(list(SliceState)), 1)
        kills = [KillSwitch(f"k{i}", scope(), "r", True, Actor(ActorType.USER, "b"), T0) for i in range(100)]
        view = GateView.build(Dimensions(), list(index.values()), kills)
        cold = timed(lambda view=view: [view.answer(a) for a in sample])
        warm = timed(lambda view=view: [view.answer(a) for a in sample])
        base = timed(lambda: [nested.get("a").get("b").get("c").get("d") for _ in sample])
        common = {"unit": "answers/s", "baseline_name": "a chain of 4 dict.get", "baseline": alerts / base}
        out.append(
            {
                "name": f"gate in-process, warm, {size:,} slices, 100 kill switches",
                "value": alerts / warm,
                "target": "≥ 500,000/s; ≥ 1/10 of baseline (issue 8)",
                **common,
            }
        )
        out.append(
            {
                "name": f"gate in-process, cold, {size:,} slices ({alerts:,} distinct alerts)",
                "value": alerts / cold,
                "target": "≥ 100,000/s (issue 8)",
                **common,
            }
        )
    return out


def bench_decide_library(tmp: Path, n: int) -> dict[str, Any]:
    ctx = fresh(tmp, "lib.db")
    items = decisions(n, "lib")
    elapsed = timed(lambda: [decide.decide(ctx, items[i : i + 1000]) for i in range(0, n, 1000)])
    ctx.db.dispose()
    base = raw_executemany(tmp / "lib.db", n, 1000)
    return {
        "name": "decide through the library, batches of 1,000 (SQLite)",
        "unit": "decisions/s",
        "value": n / elapsed,
        "baseline_name": "raw sqlite3 executemany of as many rows, same table",
        "baseline": n / base,
        "target": "≥ 0.5× baseline (issue 8)",
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(url: str, port: int) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("tether")
    env = {**os.environ, "TETHER_DATABASE_URL": url}
    proc = subprocess.Popen(
        [str(exe), "serve", "--port", str(port), "--evaluate-every", "0"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


def bench_http(tmp: Path, single: int, batched: int) -> list[dict[str, Any]]:
    ctx = fresh(tmp, "http.db")
    token = _admin_token(ctx)
    lib_items = decisions(batched, "lib")
    lib_rate = batched / timed(
        lambda: [decide.decide(ctx, lib_items[i : i + 1000]) for i in range(0, batched, 1000)]
    )
    lib_one = decisions(single, "lib1")
    lib_single = single / timed(lambda: [decide.decide(ctx, [d]) for d in lib_one])
    ctx.db.dispose()
    port = _free_port()
    proc = _serve(f"sqlite:///{tmp / 'http.db'}", port)
    try:
        client = TetherClient(f"http://127.0.0.1:{port}", token, timeout=30)
        ones = decisions(single, "one")
        one_rate = single / timed(lambda: [client.decide(d) for d in ones])
        many = decisions(batched, "many")
        many_rate = batched / timed(
            lambda: [client.decide(many[i : i + 1000]) for i in range(0, batched, 1000)]
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    return [
        {
            "name": "HTTP, one decision per request (1 worker, keep-alive client)",
            "unit": "decisions/s",
            "value": one_rate,
            "baseline_name": "the library, one decision per call",
            "baseline": lib_single,
            "target": "issue 8: ≥ 1,500/s with 2 workers",
        },
        {
            "name": "HTTP, batches of 1,000 (1 worker)",
            "unit": "decisions/s",
            "value": many_rate,
            "baseline_name": "the library, batches of 1,000",
            "baseline": lib_rate,
            "target": "issue 8: ≥ 30,000/s with 2 workers",
        },
    ]


def _admin_token(ctx: Context) -> str:
    from tether.services import tokens

    _, secret = tokens.create_token(ctx, "admin", name="bench")
    return secret


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
        out.append(
            {
                "name": f"simulator, default scenario at {label} volume, {days} days ({alerts:,} alerts)",
                "unit": "alerts/s",
                "value": alerts / elapsed,
                "seconds": elapsed,
                "baseline_name": "raw sqlite3 executemany of as many decision rows",
                "baseline": alerts / raw_executemany(tmp / f"sim-{label}.db", alerts, 1000),
                "target": "30 days at 1× in < 60 s (issue 3)",
            }
        )
    return out


def render(results: list[dict[str, Any]], command: str) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `{command}` on {datetime.now(UTC):%Y-%m-%d}: {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}. Each figure stands beside a baseline "
        "measured in the same run; on a shared, noisy machine the ratio is the result.",
        "",
        "| benchmark | measured | baseline (same run) | ratio | target |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        extra = f" ({r['seconds']:.1f} s)" if "seconds" in r else ""
        lines.append(
            f"| {r['name']} | {r['value']:,.0f} {r['unit']}{extra} | {r['baseline_name']}: "
            f"{r['baseline']:,.0f} {r['unit']} | {r['value'] / r['baseline']:.3g}× | {r['target']} |"
        )
    lines += [
        "",
        "Reading the table: every request or library call that records decisions is one SQLite",
        "transaction with `synchronous=FULL`, so one decision per call is bound by the disk's flush",
        "latency, while batches share one flush. The simulator's figures include the whole SOC: alerts",
        "drawn, decisions through the gate, outcomes, an evaluation cycle every virtual hour and a daily",
        "snapshot. The `--quick` run in CI only keeps these benchmarks working; its figures mean nothing.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to keep the benchmarks working")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    sizes = (2_000, 200, 2_000, 1, 2) if args.quick else (50_000, 2_000, 20_000, 7, 10)
    n_lib, n_single, n_batched, sim_days, scale = sizes
    with tempfile.TemporaryDirectory(prefix="tether-bench-") as tmp:
        results = bench_gate(
            (100, 10_000) if args.quick else (100, 10_000, 100_000), 2_000 if args.quick else 50_000
        )
        results.append(bench_decide_library(Path(tmp), n_lib))
        results += bench_http(Path(tmp), n_single, n_batched)
        results += bench_simulator(Path(tmp), sim_days, scale)
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(results, command))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
