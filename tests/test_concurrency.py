"""Concurrent writers on one SQLite file: each command is one transaction, the audit chain stays linear."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import T0, iso


def _spawn(db_url: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "TETHER_DATABASE_URL": db_url, "TETHER_NOW": iso(T0), "TETHER_ACTOR": "racer"}
    exe = Path(sys.executable).with_name("tether")
    return subprocess.Popen(
        [str(exe), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_racing_canary_starts_and_kill_switches_keep_one_linear_chain(cli: Any) -> None:
    """Six processes race: one canary start wins, the rest are refused; each kill switch is audited once."""
    sid = cli.json("slice", "create", "--scope", "tenant=acme")["id"]
    starts = [
        _spawn(cli.db_url, "canary", "start", sid, "--signed-off-by", f"lead-{i}", "--reason", "race")
        for i in range(3)
    ]
    kills = [
        _spawn(cli.db_url, "kill", "activate", "--scope", f"rule_family=r{i}", "--reason", "race")
        for i in range(3)
    ]
    codes = [p.wait(timeout=120) for p in starts]
    assert sorted(codes) == [0, 1, 1], [p.stderr.read() if p.stderr else "" for p in starts]
    assert all(p.wait(timeout=120) == 0 for p in kills)
    events = cli.json("audit", "list")["events"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), "no gap, no fork"
    assert sum(e["type"] == "canary.started" for e in events) == 1
    assert sum(e["type"] == "kill_switch.activated" for e in events) == 3
    assert cli.json("slice", "show", sid)["attempt"] == 1
    cli.run("audit", "verify")
