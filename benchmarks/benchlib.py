"""What every benchmark shares: sample decisions, fresh databases, timers, percentiles, server processes."""

from __future__ import annotations

import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tether.bootstrap import build
from tether.config import Settings
from tether.services import lifecycle, setup, tokens
from tether.services.context import Context, FixedClock
from tether.store import tables

T0 = datetime(2026, 3, 2, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]
TETHER = Path(sys.executable).with_name("tether")
SCOPES = ("tenant=acme", "tenant=globex", "tenant=globex,rule_family=dns_tunnel")
ALERT = {"severity": "low", "rule_family": "phishing", "data_source": "o365"}
CLOSE = {"verdict": "close", "decided_at": "2026-03-02T10:00:00Z"}


def result(
    name: str,
    unit: str,
    value: float,
    baseline: tuple[str, float],
    target: str,
    met: bool | None,
    **extra: Any,
) -> dict[str, Any]:
    """One row of the table: a figure, its same-run baseline, the target and whether it is met."""
    return {
        "name": name,
        "unit": unit,
        "value": value,
        "baseline_name": baseline[0],
        "baseline": baseline[1],
        "target": target,
        "met": met,
        **extra,
    }


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


def context(url: str) -> Context:
    ctx = build(Settings(database_url=url, actor="bench"), clock=FixedClock(T0))
    setup.init(ctx)
    return ctx


def fresh(url: str, scopes: tuple[str, ...] = SCOPES) -> Context:
    """An initialised database with each scope's slice in canary."""
    ctx = context(url)
    for scope in scopes:
        s = lifecycle.create_slice(ctx, scope)
        lifecycle.start_canary(ctx, s.id, signed_off_by="bench", reason="benchmark")
    return ctx


def admin_token(ctx: Context) -> str:
    _, secret = tokens.create_token(ctx, "admin", name="bench")
    return secret


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))]


RAW_VALUES: dict[str, Any] = {
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
DECISION_COLUMNS = [c.name for c in tables.decisions.columns if c.name != "pk"]


def raw_rows(prefix: str, start: int, stop: int, booleans: bool = False) -> list[tuple[Any, ...]]:
    """Decision rows as plain tuples in DECISION_COLUMNS order (ids `prefix-i`)."""
    values = dict(RAW_VALUES)
    if booleans:
        values.update(execute=True, review=False)
    return [
        tuple(f"{prefix}-{i}" if c == "decision_id" else values[c] for c in DECISION_COLUMNS)
        for i in range(start, stop)
    ]


def sqlite_raw(path: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection with Tether's durability: WAL, synchronous=FULL."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def raw_executemany(path: Path, rows: int, batch: int, prefix: str = "raw") -> float:
    """Baseline: as many rows into the same decisions table with plain sqlite3 executemany, per batch."""
    conn = sqlite_raw(path)
    cols = DECISION_COLUMNS
    sql = f"INSERT INTO decisions ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
    start = time.perf_counter()
    for b in range(0, rows, batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, raw_rows(prefix, b, min(rows, b + batch)))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def raw_copy(path: Path, prefix: str, batch: int) -> tuple[int, float]:
    """Baseline: the very rows the library stored under `prefix`, inserted again by plain sqlite3.

    Every column as stored (bodies, dimensions, reasons, times), under new decision ids and keys, into
    the same table, by executemany per batch, one durable transaction each. Returns (rows, seconds).
    """
    conn = sqlite_raw(path)
    cols = DECISION_COLUMNS
    stored = conn.execute(
        f"SELECT {', '.join(cols)} FROM decisions WHERE decision_id LIKE ? ORDER BY pk", (f"{prefix}-%",)
    ).fetchall()
    at = cols.index("decision_id")
    rows = [(*r[:at], f"raw-{r[at]}", *r[at + 1 :]) for r in stored]
    sql = f"INSERT INTO decisions ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
    start = time.perf_counter()
    for b in range(0, len(rows), batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, rows[b : b + batch])
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return len(rows), elapsed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """One `tether serve` process (its log in a file), stopped with SIGTERM."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def rss_kib(self) -> int:
        """Resident set size of the serving process, from /proc/<pid>/status (VmRSS)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")


def serve(db_url: str, tmp: Path, workers: int = 1) -> Server:
    """`tether serve` on a free port, evaluator loop off; waits (bounded) until /healthz answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    port = free_port()
    log = tmp / f"serve-{port}.log"
    cmd = [str(TETHER), "serve", "--port", str(port), "--db", db_url, "--evaluate-every", "0"]
    cmd += ["--workers", str(workers)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(server.url + "/healthz", timeout=1.0).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"tether serve did not come up:\n{log.read_text(errors='replace')[-2000:]}")


def pg_server_version(admin_url: str) -> str:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]).split()[0] if row else "?"
