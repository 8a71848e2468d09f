"""Docs are tested: the README's walkthrough runs as written, and `make demo`'s story holds."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _walkthrough() -> str:
    text = (ROOT / "README.md").read_text()
    found = re.search(r"<!-- walkthrough:start -->\n```bash\n(.*?)```\n<!-- walkthrough:end -->", text, re.S)
    assert found, "README.md has a walkthrough block"
    return found.group(1)


def test_readme_walkthrough_runs(tmp_path: Path) -> None:
    """Every command of the README walkthrough succeeds and shows a promotion, a kill and a verified chain."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    script = tmp_path / "walkthrough.sh"
    script.write_text("set -euo pipefail\n" + _walkthrough())
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    proc = subprocess.run(
        ["bash", str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "not ready" in out, "the --if-ready start is refused without shadow evidence"
    assert "promote" in out, "evaluate eight days later promotes the canary"
    assert "killed" in out, "the gate answers killed under the kill switch"
    assert "audit chain verified" in out
    assert re.search(r'\{"seq": \d+, "hash": "[0-9a-f]{64}"\}', out)


def test_demo_story(tmp_path: Path) -> None:
    """The demo promotes acme, rolls globex back on a missed TP, writes its report, verifies the trail."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tether.demo",
            "--days",
            "13",
            "--db",
            str(tmp_path / "demo.db"),
            "--report",
            str(tmp_path / "report"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(r"tenant=acme\s+PROMOTED", out), out
    assert re.search(r"tenant=globex\s+ROLLED BACK: 1 missed true positive", out), out
    assert "verified" in out
    for name in ("index.html", "summary.json", "states.png", "coverage.png", "precision-1.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0, name


def test_makefile_and_ci_entry_points() -> None:
    """The quick start's two commands exist, and CI runs `make test`."""
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
