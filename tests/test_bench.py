"""The benchmark suite keeps working: CI runs it at a tiny size and checks the report it writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmarks_write_a_table_of_ratios(tmp_path: Path) -> None:
    """`benchmarks/run.py --quick` measures each figure beside its baseline and writes the Markdown table."""
    out = tmp_path / "bench.md"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = out.read_text()
    assert "| benchmark | measured | baseline (same run) | ratio | target |" in table
    for name in (
        "decide through the library",
        "HTTP, one decision per request",
        "HTTP, batches of 1,000",
        "simulator, default scenario at 1× volume",
    ):
        assert name in table, name
    assert "cores, Python" in table and "SQLite" in table
