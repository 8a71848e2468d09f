"""`make screenshots`: serve the demo's data and save docs/screenshots/*.png of each dashboard page.

Fills a temporary SQLite database with 18 virtual days of the demo scenario (one tenant promoted, the
other in its second canary after a rollback), has an operator pull one kill switch, serves it with
`tether serve` at the scenario's last moment, and drives Debian's Chromium (never a downloaded
browser) through the pages.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

from tether.bootstrap import build
from tether.config import Settings
from tether.services import kills, queries, setup, tokens
from tether.services.context import FixedClock
from tether.sim.run import run_scenario
from tether.sim.scenario import load_scenario

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DAYS = 18


def demo_database(tmp: Path) -> tuple[str, str, str]:
    """The demo scenario's data; returns the database URL, the scenario's end as RFC 3339, an admin token."""
    url = f"sqlite:///{tmp / 'demo.db'}"
    scenario = load_scenario("default").model_copy(update={"days": DAYS})
    print(f"simulating {DAYS} days of the demo scenario...")
    run_scenario(scenario, seed=0, db_url=url)
    end = scenario.start + timedelta(days=DAYS)
    ctx = build(Settings(database_url=url, actor="screenshots"), clock=FixedClock(end))
    setup.init(ctx)
    secret = tokens.create_token(ctx, "admin", name="soc-lead")[1]
    kills.activate(
        ctx.as_user("soc-lead"), "tenant=acme,data_source=okta", "okta outage: sign-in alerts unreliable"
    )
    ctx.db.dispose()
    return url, end.strftime("%Y-%m-%dT%H:%M:%SZ"), secret


def serve(url: str, now: str, tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("TETHER_")} | {"TETHER_NOW": now}
    exe = Path(sys.executable).with_name("tether")
    cmd = [str(exe), "serve", "--port", str(port), "--db", url, "--evaluate-every", "0"]
    log = (tmp / "serve.log").open("wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"tether serve did not come up; see {tmp / 'serve.log'}")


def shoot(page: Page, base: str, out: Path, slices: dict[str, str], secret: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("API token").fill(secret)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("heading", name="Slices").wait_for()
    shots = {
        "overview": "/",
        "slice": f"/slices/{slices['tenant=acme']}",
        "kill-switches": "/kill-switches",
        "audit": "/audit",
        "gate": "/gate?tenant=acme&severity=high&rule_family=phishing&data_source=okta",
    }
    for name, path in shots.items():
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        target = out / f"{name}.png"
        page.screenshot(path=str(target), full_page=name not in ("audit",))
        print(f"wrote {target}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="docs/screenshots", help="directory for the PNG files")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with tempfile.TemporaryDirectory(prefix="tether-shots-") as tmp_name:
        tmp = Path(tmp_name)
        url, now, secret = demo_database(tmp)
        ctx = build(Settings(database_url=url))
        slices = {s["scope"]: s["id"] for s in queries.list_slices(ctx)}
        ctx.db.dispose()
        proc, base = serve(url, now, tmp)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                shoot(page, base, out, slices, secret)
                browser.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
