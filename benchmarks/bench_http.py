"""HTTP with 2 workers on SQLite, loaded by benchmarks/load.py in a process of its own, beside the library."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchlib import admin_token, decisions, fresh, result, serve, timed
from tether.services import decide

LOAD = Path(__file__).with_name("load.py")
WRK_SCRIPT = Path(__file__).with_name("wrk_decisions.lua")


def _wrk(url: str, token: str, seconds: int, batch: int, connections: int) -> dict[str, Any]:
    """wrk (Debian's package) as the load generator: C, so the client costs the server little CPU."""
    env = {**os.environ, "TETHER_TOKEN": token, "BATCH": str(batch), "PREFIX": f"w{batch}-"}
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(WRK_SCRIPT), url]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True, env=env)
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if report["errors"]:
        raise RuntimeError(f"wrk saw {report['errors']} failed requests")
    return {**report, "decisions": report["requests"] * batch, "client": "wrk", "connections": connections}


def _load(url: str, token: str, requests: int, batch: int, threads: int) -> dict[str, Any]:
    if shutil.which("wrk"):
        seconds = 2 if requests * batch < 3000 else 6  # the quick run only keeps it working
        return _wrk(url, token, seconds, batch, connections=4 * threads)
    cmd = [sys.executable, str(LOAD), url, token, "--requests", str(requests), "--batch", str(batch)]
    cmd += ["--threads", str(threads), "--seconds", "60", "--prefix", f"b{batch}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    report: dict[str, Any] = json.loads(done.stdout)
    if report["errors"]:
        raise RuntimeError(f"load generator saw {report['errors']} failed requests")
    return {**report, "client": "benchmarks/load.py", "connections": threads}


def bench_http(tmp: Path, single: int, batched: int) -> list[dict[str, Any]]:
    path = tmp / "http.db"
    ctx = fresh(f"sqlite:///{path}")
    token = admin_token(ctx)
    lib_many = decisions(batched, "lib")
    lib_rate = batched / timed(
        lambda: [decide.decide(ctx, lib_many[i : i + 1000]) for i in range(0, batched, 1000)]
    )
    lib_one = decisions(single, "lib1")
    lib_single = single / timed(lambda: [decide.decide(ctx, [d]) for d in lib_one])
    ctx.db.dispose()
    server = serve(f"sqlite:///{path}", tmp, workers=2)
    try:
        ones = _load(server.url, token, single, 1, threads=8)
        many = _load(server.url, token, max(1, batched // 1000), 1000, threads=1)
    finally:
        server.stop()
    one_rate = ones["decisions"] / ones["seconds"]
    many_rate = many["decisions"] / many["seconds"]
    return [
        result(
            f"HTTP, one decision per request, 2 workers, {ones['client']}, {ones['connections']} connections "
            f"({ones['requests']:,} requests)",
            "decisions/s",
            one_rate,
            ("the library, one decision per call", lib_single),
            "≥ 1,500/s (issue 8)",
            one_rate >= 1500,
        ),
        result(
            f"HTTP, batches of 1,000, 2 workers, {many['client']}, {many['connections']} connections "
            f"({many['requests']:,} requests)",
            "decisions/s",
            many_rate,
            ("the library, batches of 1,000", lib_rate),
            "≥ 30,000/s (issue 8)",
            many_rate >= 30_000,
        ),
    ]
