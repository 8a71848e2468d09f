"""Outcomes on SQLite: batched ingestion with rollback checks, and missed-TP-to-killed latency."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from benchlib import (
    ALERT,
    CLOSE,
    admin_token,
    context,
    decisions,
    fresh,
    percentile,
    result,
    serve,
    sqlite_raw,
    timed,
)
from tether.services import decide, gate, lifecycle, outcomes
from tether.store import tables

OBSERVED = "2026-03-03T10:00:00Z"


def raw_outcomes(path: Path, rows: int, batch: int) -> float:
    """Baseline: as many rows into the same outcomes table with plain sqlite3 executemany, per batch."""
    conn = sqlite_raw(path)
    cols = [c.name for c in tables.outcomes.columns if c.name != "seq"]
    sql = f"INSERT INTO outcomes ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
    row = {
        "decision_pk": 1,
        "disposition": "false_positive",
        "source": "review",
        "reviewer": None,
        "observed_at": "2026-03-03T10:00:00.000000Z",
        "recorded_at": "2026-03-03T10:00:00.000000Z",
    }
    values = tuple(row[c] for c in cols)
    start = time.perf_counter()
    for b in range(0, rows, batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, [values] * (min(rows, b + batch) - b))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def bench_outcomes_batched(tmp: Path, n: int) -> dict[str, Any]:
    """Outcomes for n recorded decisions in batches of 1,000; each touched slice's rollback rules checked."""
    path = tmp / "outcomes.db"
    ctx = fresh(f"sqlite:///{path}")
    items = decisions(n, "out")
    for i in range(0, n, 1000):
        decide.decide(ctx, items[i : i + 1000])
    reports = [
        {
            "decision_id": d["decision_id"],
            "disposition": "benign_positive" if i % 100 == 7 else "false_positive",
            "source": "review",
            "observed_at": OBSERVED,
        }
        for i, d in enumerate(items)
    ]
    elapsed = timed(lambda: [outcomes.record_outcomes(ctx, reports[i : i + 1000]) for i in range(0, n, 1000)])
    ctx.db.dispose()
    rate = n / elapsed
    return result(
        "outcomes through the library, batches of 1,000, touched slices checked (SQLite)",
        "outcomes/s",
        rate,
        ("raw sqlite3 executemany of as many outcome rows, same table", n / raw_outcomes(path, n, 1000)),
        "≥ 20,000/s (issue 8)",
        rate >= 20_000,
    )


def _canaries(url: str, count: int) -> tuple[Any, list[str]]:
    """`count` canary slices tenant=r<i>, each with one executed close; the context and decision ids."""
    ctx = context(url)
    for i in range(count):
        s = lifecycle.create_slice(ctx, f"tenant=r{i}")
        lifecycle.start_canary(ctx, s.id, signed_off_by="bench", reason="benchmark")
    items = [
        {"decision_id": f"rb-{i}", "alert_id": f"A-rb-{i}", "tenant": f"r{i}", **ALERT, **CLOSE}
        for i in range(count)
    ]
    assert all(a.answer.execute for a in decide.decide(ctx, items))
    return ctx, [str(d["decision_id"]) for d in items]


def _missed_tp(decision_id: str) -> list[dict[str, Any]]:
    return [
        {
            "decision_id": decision_id,
            "disposition": "true_positive",
            "source": "review",
            "observed_at": OBSERVED,
        }
    ]


def _commit_latencies(path: Path, rounds: int) -> list[float]:
    """Baseline: one single-row INSERT + COMMIT with synchronous=FULL, the floor of any durable write."""
    conn = sqlite_raw(path)
    conn.execute("CREATE TABLE IF NOT EXISTS bench_probe (x INTEGER)")
    samples = []
    for i in range(rounds):
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO bench_probe VALUES (?)", (i,))
        conn.execute("COMMIT")
        samples.append((time.perf_counter() - start) * 1000)
    conn.close()
    return samples


def bench_rollback_latency(tmp: Path, rounds: int) -> list[dict[str, Any]]:
    """A missed TP ingested → the gate answers killed: in the library, then over HTTP on one server."""
    path = tmp / "rollback.db"
    ctx, ids = _canaries(f"sqlite:///{path}", 2 * rounds)
    lib: list[float] = []
    for i, decision_id in enumerate(ids[:rounds]):
        start = time.perf_counter()
        assert outcomes.record_outcomes(ctx, _missed_tp(decision_id)).actions
        assert gate.gate(ctx, {"tenant": f"r{i}", **ALERT}).mode.value == "killed"
        lib.append((time.perf_counter() - start) * 1000)
    token = admin_token(ctx)
    ctx.db.dispose()
    floor = _commit_latencies(tmp / "probe.db", rounds)
    server = serve(f"sqlite:///{path}", tmp)
    http: list[float] = []
    try:
        with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {token}"}) as client:
            for i, decision_id in enumerate(ids[rounds:], start=rounds):
                start = time.perf_counter()
                client.post("/v1/outcomes", json=_missed_tp(decision_id)).raise_for_status()
                while client.post("/v1/gate", json={"tenant": f"r{i}", **ALERT}).json()["mode"] != "killed":
                    if time.perf_counter() - start > 10:
                        raise RuntimeError(f"round {i}: the gate never answered killed")
                http.append((time.perf_counter() - start) * 1000)
    finally:
        server.stop()
    lib_p99, http_p99 = percentile(lib, 99), percentile(http, 99)
    return [
        result(
            f"rollback latency, library: missed TP ingested → gate answers killed ({rounds} rounds, SQLite)",
            "ms",
            lib_p99,
            ("one raw sqlite3 single-row commit, synchronous=FULL", percentile(floor, 99)),
            "p99 ≤ 50 ms (issue 8)",
            lib_p99 <= 50,
            p50=percentile(lib, 50),
            baseline_p50=percentile(floor, 50),
        ),
        result(
            f"rollback latency, HTTP, one server: outcome posted → its gate answers killed ({rounds} rounds)",
            "ms",
            http_p99,
            ("the same through the library", lib_p99),
            "p99 ≤ 100 ms (issue 8)",
            http_p99 <= 100,
            p50=percentile(http, 50),
            baseline_p50=percentile(lib, 50),
        ),
    ]
