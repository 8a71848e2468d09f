"""At scale on SQLite: an evaluation cycle over many slices and stored decisions, recompute, server memory."""

from __future__ import annotations

import sqlite3
import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from benchlib import ALERT, CLOSE, T0, admin_token, context, result, serve, timed
from tether.services import evaluate
from tether.services.context import FixedClock
from tether.store import tables

STARTED = "2026-03-02T00:00:00.000000Z"
_DECISIONS = """
INSERT INTO decisions (pk, decision_id, alert_id, tenant, dims, verdict, decided_at, recorded_at, body,
                       mode, execute, slice_ids, reason, review)
WITH RECURSIVE n(i) AS (SELECT :lo UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :hi)
SELECT i + 1, printf('d%09d', i), printf('a%09d', i), printf('t%05d', i / :per),
       printf('{"data_source": "o365", "rule_family": "phishing", "severity": "low", "tenant": "t%05d"}',
              i / :per),
       'close', :at, :at, '{}', 'canary', 1, printf('["sl%05d"]', i / :per), 'r', 0
FROM n
"""
_GRANTS = """
INSERT INTO decision_slices (decision_pk, slice_id, attempt, executed)
SELECT pk, printf('sl%05d', (pk - 1) / :per), 1, 1 FROM decisions
"""


def _slice_row(i: int, per_slice: int) -> dict[str, Any]:
    counters = (
        "ev_missed_tp",
        "ev_correct",
        "ev_incorrect",
        "ev_log_e_rb",
        "ev_log_e_pr",
        "ev_other_reviews",
    )
    return {
        "id": f"sl{i:05d}",
        "scope": f"tenant=t{i:05d}",
        "state": "canary",
        "attempt": 1,
        "created_at": STARTED,
        "canary_started_at": STARTED,
        "policy_overrides": "{}",
        "ev_decisions": per_slice,
        "ev_executed": per_slice,
        **dict.fromkeys(counters, 0),
    }


def fill(path: Path, slices: int, per_slice: int) -> float:
    """A database with `slices` canary slices and `per_slice` executed decisions each; seconds it took.

    Set-up only: written with journaling and syncing off, then switched back to WAL for the measurements.
    Counters match the rows, so `evaluate --recompute` finds no difference.
    """
    start = time.perf_counter()
    context(f"sqlite:///{path}").db.dispose()  # the schema, by the migrations
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=DELETE", "journal_mode=OFF", "synchronous=OFF"):
        conn.execute(f"PRAGMA {pragma}")
    rows = [_slice_row(i, per_slice) for i in range(slices)]
    cols = list(rows[0])
    conn.execute("BEGIN")
    conn.executemany(
        f"INSERT INTO slices ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})", rows
    )
    total = slices * per_slice
    for lo in range(0, total, 1_000_000):
        conn.execute(
            _DECISIONS, {"lo": lo, "hi": min(total, lo + 1_000_000), "per": per_slice, "at": STARTED}
        )
    conn.execute(_GRANTS, {"per": per_slice})
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    return time.perf_counter() - start


def _raw_seconds(path: Path, sql: str) -> float:
    conn = sqlite3.connect(path)
    elapsed = timed(lambda: conn.execute(sql).fetchall())
    conn.close()
    return elapsed


def bench_evaluate(path: Path, slices: int, per_slice: int) -> list[dict[str, Any]]:
    """One evaluation cycle (median of 3) and one `evaluate --recompute` over the filled database."""
    ctx = context(f"sqlite:///{path}")
    ctx.clock = FixedClock(T0 + timedelta(days=1))
    cycles = []
    for _ in range(3):
        start = time.perf_counter()
        found = evaluate.evaluate(ctx)
        cycles.append(time.perf_counter() - start)
        assert len(found.results) == slices
    start = time.perf_counter()
    checked = evaluate.evaluate(ctx, recompute=True)
    recompute = time.perf_counter() - start
    assert not checked.differences, checked.differences[:3]
    ctx.db.dispose()
    cycle = statistics.median(cycles)
    read = _raw_seconds(path, f"SELECT * FROM {tables.slices.name}")
    scan = _raw_seconds(
        path,
        "SELECT slice_id, attempt, count(*), sum(executed) FROM decision_slices GROUP BY slice_id, attempt",
    )
    size = f"{slices:,} slices, {slices * per_slice:,} stored decisions"
    return [
        result(
            f"evaluation cycle, {size} (SQLite, median of 3)",
            "s",
            cycle,
            (f"raw sqlite3 read of the {slices:,} slice rows", read),
            "≤ 1 s, from counters (issue 8)",
            cycle <= 1.0,
        ),
        result(
            f"evaluate --recompute, {size} (SQLite)",
            "s",
            recompute,
            ("raw sqlite3 GROUP BY over decision_slices (one scan)", scan),
            "none set (a maintenance command); ratio shown",
            None,
        ),
    ]


def _warm_up(url: str, token: str, tenants: int) -> None:
    """Gate questions over many tenants, decision and outcome batches, slice reads, metrics."""
    with httpx.Client(base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=120) as client:
        for i in range(min(tenants, 2_000)):
            client.post("/v1/gate", json={"tenant": f"t{i * max(1, tenants // 2_000):05d}", **ALERT})
        for b in range(5):
            batch = [
                {
                    "decision_id": f"w{b}-{i}",
                    "alert_id": f"W-{i}",
                    "tenant": f"t{i % tenants:05d}",
                    **ALERT,
                    **CLOSE,
                }
                for i in range(1000)
            ]
            client.post("/v1/decisions", json=batch).raise_for_status()
        outcomes = [
            {"decision_id": f"w0-{i}", "disposition": "false_positive", "source": "review"}
            | {"observed_at": "2026-03-03T10:00:00Z"}
            for i in range(1000)
        ]
        client.post("/v1/outcomes", json=outcomes).raise_for_status()
        for i in range(0, tenants, max(1, tenants // 20)):
            client.get(f"/v1/slices/sl{i:05d}")  # 404 on the empty database: the same work, nearly
        client.get("/metrics").raise_for_status()
        client.get("/v1/kill-switches").raise_for_status()


def _served_rss(path: Path, tmp: Path, tenants: int) -> int:
    ctx = context(f"sqlite:///{path}")
    token = admin_token(ctx)
    ctx.db.dispose()
    server = serve(f"sqlite:///{path}", tmp)
    try:
        _warm_up(server.url, token, tenants)
        return server.rss_kib()
    finally:
        server.stop()


def bench_memory(path: Path, tmp: Path, slices: int, per_slice: int) -> dict[str, Any]:
    """Resident size of `tether serve` over the filled database after warm-up, beside an empty database."""
    loaded = _served_rss(path, tmp, slices) / 1024
    empty = _served_rss(tmp / "empty.db", tmp, slices) / 1024
    return result(
        f"memory of tether serve (VmRSS after warm-up), {slices:,} slices, {slices * per_slice:,} decisions",
        "MB",
        loaded,
        ("the same server and warm-up on an empty database", empty),
        "≤ 300 MB (issue 8)",
        loaded <= 300,
    )
