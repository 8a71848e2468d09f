"""The benchmark suite keeps working: CI runs it at a tiny size and checks the report it writes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WITH_POSTGRES = "postgres" in os.environ.get("TETHER_TEST_DATABASES", "sqlite,postgres")


def test_quick_benchmarks_write_a_table_of_ratios(tmp_path: Path) -> None:
    """`benchmarks/run.py --quick` measures each figure beside its baseline and writes the Markdown table."""
    out = tmp_path / "bench.md"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--output", str(out)]
    proc = subprocess.run(
        cmd + ([] if WITH_POSTGRES else ["--no-postgres"]), capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = out.read_text()
    assert "| benchmark | measured | baseline (same run) | ratio | target | met |" in table
    names = [
        "gate in-process, warm",
        "gate cold, 10,000 slices against 100 slices",
        "decide through the library",
        "outcomes through the library, batches of 1,000",
        "rollback latency, library",
        "rollback latency, HTTP",
        "evaluation cycle",
        "evaluate --recompute",
        "memory of tether serve",
        "HTTP, one decision per request, 2 workers",
        "HTTP, batches of 1,000, 2 workers",
        "simulator, default scenario at 1× volume",
    ]
    if WITH_POSTGRES:
        names += [
            "PostgreSQL: decide through the library, one decision per call",
            "PostgreSQL: decide through the library, batches of 1,000",
            "PostgreSQL, 2 replicas",
        ]
    for name in names:
        assert name in table, name
    assert "cores, Python" in table and "SQLite" in table
    assert bool(re.search(r"PostgreSQL \d", table)) is WITH_POSTGRES  # the server's version, when measured
