"""PostgreSQL: decisions through the library beside a raw COPY; rollback propagation across two replicas."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from benchlib import (
    ALERT,
    CLOSE,
    DECISION_COLUMNS,
    admin_token,
    decisions,
    fresh,
    percentile,
    raw_rows,
    result,
    serve,
    timed,
)
from tether.services import decide, lifecycle


@contextmanager
def throwaway_database(server: str) -> Iterator[str]:
    """A database of its own for this run (tether_bench_<pid>), dropped at the end; yields its URL."""
    import psycopg

    name = f"tether_bench_{os.getpid()}"
    admin = server.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def raw_copy(url: str, prefix: str, rows: int, batch: int) -> float:
    """Baseline: the same number of rows into the same decisions table by psycopg COPY, a commit per batch."""
    import psycopg

    sql = f"COPY decisions ({', '.join(DECISION_COLUMNS)}) FROM STDIN"
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        start = time.perf_counter()
        for b in range(0, rows, batch):
            with conn.transaction(), conn.cursor() as cur, cur.copy(sql) as copy:
                for row in raw_rows(prefix, b, min(rows, b + batch), booleans=True):
                    copy.write_row(row)
        return time.perf_counter() - start


def bench_decide(url: str, single: int, batched: int) -> list[dict[str, Any]]:
    """decide() one decision per call and in batches of 1,000, each beside COPY of as many rows."""
    ctx = fresh(url)
    ones = decisions(single, "pg1")
    one_rate = single / timed(lambda: [decide.decide(ctx, [d]) for d in ones])
    many = decisions(batched, "pgn")
    many_rate = batched / timed(
        lambda: [decide.decide(ctx, many[i : i + 1000]) for i in range(0, batched, 1000)]
    )
    ctx.db.dispose()
    copy_one = single / raw_copy(url, "copy1", single, 1)
    copy_many = batched / raw_copy(url, "copyn", batched, 1000)
    return [
        result(
            "PostgreSQL: decide through the library, one decision per call",
            "decisions/s",
            one_rate,
            ("raw psycopg COPY of one row per transaction, same table", copy_one),
            "none set; ratio shown",
            None,
        ),
        result(
            "PostgreSQL: decide through the library, batches of 1,000",
            "decisions/s",
            many_rate,
            ("raw psycopg COPY of 1,000 rows per transaction, same table", copy_many),
            "none set; ratio shown",
            None,
        ),
    ]


def _replica_fixture(url: str, rounds: int) -> tuple[str, list[str]]:
    """`rounds` canary slices (tenant=r<i>), each with one executed close; an admin token."""
    ctx = fresh(url, ())
    for i in range(rounds):
        s = lifecycle.create_slice(ctx, f"tenant=r{i}")
        lifecycle.start_canary(ctx, s.id, signed_off_by="bench", reason="benchmark")
    items = [
        {"decision_id": f"rep-{i}", "alert_id": f"A-rep-{i}", "tenant": f"r{i}", **ALERT, **CLOSE}
        for i in range(rounds)
    ]
    answers = decide.decide(ctx, items)
    assert all(a.answer.execute for a in answers)
    token = admin_token(ctx)
    ctx.db.dispose()
    return token, [str(d["decision_id"]) for d in items]


def _until_killed(client: httpx.Client, tenant: str, deadline: float) -> bool:
    while time.perf_counter() < deadline:
        answer = client.post("/v1/gate", json={"tenant": tenant, **ALERT})
        answer.raise_for_status()
        if answer.json()["mode"] == "killed":
            return True
    return False


def bench_propagation(url: str, tmp: Path, rounds: int) -> dict[str, Any]:
    """A missed TP posted to replica A: how long until B's gate answers killed (A's own gate as baseline)."""
    token, ids = _replica_fixture(url, rounds)
    a, b = serve(url, tmp), serve(url, tmp)
    headers = {"authorization": f"Bearer {token}"}
    other: list[float] = []
    same: list[float] = []
    try:
        with (
            httpx.Client(base_url=a.url, headers=headers, timeout=30) as ca,
            httpx.Client(base_url=b.url, headers=headers, timeout=30) as cb,
        ):
            for i, decision_id in enumerate(ids):
                outcome = {"decision_id": decision_id, "disposition": "true_positive", "source": "review"}
                start = time.perf_counter()
                posted = ca.post("/v1/outcomes", json=[{**outcome, "observed_at": "2026-03-03T10:00:00Z"}])
                posted.raise_for_status()
                assert posted.json()["actions"], posted.text
                watcher, samples = (cb, other) if i % 4 else (ca, same)
                if not _until_killed(watcher, f"r{i}", start + 10):
                    raise RuntimeError(f"round {i}: the gate never answered killed")
                samples.append((time.perf_counter() - start) * 1000)
    finally:
        a.stop()
        b.stop()
    p99 = percentile(other, 99)
    return result(
        f"PostgreSQL, 2 replicas: missed TP posted to A → B's gate answers killed ({len(other)} rounds)",
        "ms",
        p99,
        (f"the same on A itself ({len(same)} rounds)", percentile(same, 99)),
        "within 1 s on other replicas (DESIGN §6): p99 ≤ 1,000 ms",
        p99 <= 1000,
        p50=percentile(other, 50),
        baseline_p50=percentile(same, 50),
    )
