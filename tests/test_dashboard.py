"""The web dashboard in a real browser (Debian's Chromium via Playwright) against a real `tether serve`."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect, sync_playwright

from conftest import decision, outcome
from serving import Server, start_server, stop_server
from tether.bootstrap import build
from tether.config import Settings
from tether.services import decide, lifecycle, outcomes, queries, setup, tokens

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LIVE_WITHIN_MS = 5_000  # a rollback or a kill switch shows on open pages within 5 s
CLEAN_EXIT = {0, -15}


@dataclass
class Site:
    """A served database with three slices and a token per role."""

    server: Server
    db_url: str
    admin: str
    operator: str
    viewer: str
    ingest: str
    acme: str  # a canary with decisions and reviews
    globex: str  # a canary that a test rolls back
    initech: str  # a shadow slice
    umbrella: str  # a canary rolled back through the API while a page is open

    @property
    def url(self) -> str:
        return self.server.url


def _fill(db_url: str) -> dict[str, str]:
    """Slices, evidence and tokens through the services, on the system clock like the server."""
    ctx = build(Settings(database_url=db_url, actor="soc-lead"))
    setup.init(ctx)
    ids = {}
    for tenant in ("acme", "globex", "initech", "umbrella"):
        ids[tenant] = lifecycle.create_slice(ctx, f"tenant={tenant}").id
    for tenant in ("acme", "globex", "umbrella"):
        lifecycle.start_canary(ctx, ids[tenant], signed_off_by="soc-lead", reason="shadow reviewed by hand")
    decide.decide(
        ctx, [decision(i) for i in range(40)] + [decision(f"g{i}", tenant="globex") for i in range(5)]
    )
    outcomes.record_outcomes(ctx, [outcome(i) for i in range(30)])
    for role in ("admin", "operator", "viewer", "ingest"):
        ids[role] = tokens.create_token(ctx, role, name=f"{role} in test")[1]
    ctx.db.dispose()
    return ids


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("dashboard")
    db_url = f"sqlite:///{tmp}/tether.db"
    ids = _fill(db_url)
    names = ("admin", "operator", "viewer", "ingest", "acme", "globex", "initech", "umbrella")
    server = start_server(db_url, tmp)
    try:
        yield Site(server, db_url, **{name: ids[name] for name in names})
    finally:
        assert stop_server(server) in CLEAN_EXIT


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium for the module; a missing Chromium fails the tests (it is never downloaded)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


def log_in(context: BrowserContext, site: Site, secret: str) -> Page:
    page = context.new_page()
    page.goto(site.url + "/login")
    page.get_by_label("API token").fill(secret)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Slices")).to_be_visible()
    return page


def nav(page: Page, name: str) -> Locator:
    return page.get_by_role("navigation", name="Main").get_by_role("link", name=name)


def api(site: Site, method: str, path: str, secret: str, **kwargs: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {secret}"}
    return httpx.request(method, site.url + path, headers=headers, timeout=10.0, **kwargs)  # type: ignore[arg-type]


def slice_state(site: Site, slice_id: str) -> str:
    ctx = build(Settings(database_url=site.db_url))
    try:
        return str(queries.get_slice(ctx, slice_id)["state"])
    finally:
        ctx.db.dispose()


def test_keyboard_login_sets_a_strict_httponly_session(context: BrowserContext, site: Site) -> None:
    """Tab to the token field, type, press Enter: the overview lists slices; the cookie is HttpOnly+Strict."""
    page = context.new_page()
    page.goto(site.url + "/")
    assert page.url.startswith(site.url + "/login")
    page.locator("body").focus()
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "token":
            break
    assert page.evaluate("document.activeElement.id") == "token"
    page.keyboard.type(site.operator)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Slices")).to_be_visible()
    table = page.get_by_role("table", name="Slices")
    for tenant in ("acme", "globex", "initech"):
        expect(table.get_by_role("link", name=f"tenant={tenant}")).to_be_visible()
    cookie = next(c for c in context.cookies() if c["name"] == "tether_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert site.operator not in cookie["value"]


def test_a_wrong_token_is_refused_naming_the_field(context: BrowserContext, site: Site) -> None:
    """An unknown token, or one whose role cannot read, stays on the login page with the field named."""
    page = context.new_page()
    page.goto(site.url + "/login")
    for secret, problem in (
        ("tth_not-a-real-token", "token: unknown or revoked token"),
        (site.ingest, "token: role ingest may not read the dashboard"),
    ):
        page.get_by_label("API token").fill(secret)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("alert")).to_have_text(problem)
    assert not [c for c in context.cookies() if c["name"] == "tether_session"]


def test_overview_shows_precision_reviews_and_what_promotion_needs(
    context: BrowserContext, site: Site
) -> None:
    """The acme canary row shows its state, precision with interval, reviews and days and reviews to go."""
    page = log_in(context, site, site.viewer)
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="tenant=acme", exact=True))
    expect(row).to_contain_text("canary")
    expect(row).to_contain_text(re.compile(r"1\.000 \(0\.\d{3}–1\.000\)"))
    expect(row).to_contain_text(re.compile(r"\d\.\d days and \d+ clean reviews to go"))
    page.get_by_label("State").select_option("shadow")
    page.get_by_role("button", name="Filter").click()
    table = page.get_by_role("table", name="Slices")
    expect(table.get_by_role("link", name="tenant=initech")).to_be_visible()
    expect(table.get_by_role("link", name="tenant=acme")).to_have_count(0)


def test_slice_page_shows_evidence_charts_and_timeline(context: BrowserContext, site: Site) -> None:
    """A slice page reads: state, evidence counts, the two charts, and the attempt's audit timeline."""
    page = log_in(context, site, site.viewer)
    page.get_by_role("link", name="tenant=acme", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile("Slice tenant=acme"))).to_be_visible()
    expect(page.get_by_test_id("slice-state")).to_have_text("canary")
    evidence = page.get_by_role("table", name="Evidence")
    expect(evidence).to_contain_text("40")  # decisions
    expect(evidence).to_contain_text("30")  # reviews
    expect(page.get_by_role("img", name="Precision over time with its 95% interval")).to_be_visible()
    expect(page.get_by_role("img", name="Decisions, executions and reviews per day")).to_be_visible()
    expect(page.locator(".timeline")).to_contain_text("canary.started")


def test_activate_and_deactivate_a_kill_switch(context: BrowserContext, site: Site) -> None:
    """An operator kills acme phishing from known values; it shows in red on top; then releases it."""
    page = log_in(context, site, site.operator)
    nav(page, "Kill switches").click()
    page.get_by_label("Tenant").select_option("acme")
    page.get_by_label("Rule family").select_option("phishing")
    page.get_by_label("Reason (required)").fill("phishing kit change")
    page.get_by_role("button", name="Activate kill switch").click()
    banner = page.get_by_role("alert", name="Active kill switches")
    expect(banner).to_contain_text("tenant=acme,rule_family=phishing")
    expect(banner).to_contain_text("phishing kit change")
    gate = api(site, "POST", "/v1/gate", site.admin, json=_alert("acme")).json()
    assert gate["mode"] == "killed"
    row = (
        page.get_by_role("table", name="Active kill switches")
        .get_by_role("row")
        .filter(has_text="phishing kit")
    )
    row.get_by_role("link", name="Deactivate…").click()
    page.get_by_label(re.compile("Reason")).fill("kit handled")
    page.get_by_role("button", name="Confirm: deactivate").click()
    expect(page.get_by_role("status")).to_contain_text("deactivated")
    expect(page.get_by_role("alert", name="Active kill switches")).to_have_count(0)
    assert api(site, "POST", "/v1/gate", site.admin, json=_alert("acme")).json()["mode"] == "canary"


def _alert(tenant: str) -> dict[str, str]:
    return {"tenant": tenant, "severity": "low", "rule_family": "phishing", "data_source": "o365"}


def test_roll_back_with_a_reason_and_find_it_in_the_audit(context: BrowserContext, site: Site) -> None:
    """Roll back asks a reason and a confirmation; the slice turns rolled_back; the audit page lists it."""
    page = log_in(context, site, site.operator)
    page.get_by_role("link", name="tenant=globex").click()
    page.get_by_role("link", name="Roll back…").click()
    page.get_by_label(re.compile("Reason")).fill("   ")
    page.get_by_role("button", name="Confirm: Roll back now").click()
    expect(page.locator("#reason-error")).to_contain_text("Reason:")
    assert slice_state(site, site.globex) == "canary"
    page.get_by_label(re.compile("Reason")).fill("agent closing real phish")
    page.get_by_role("button", name="Confirm: Roll back now").click()
    expect(page.get_by_test_id("slice-state")).to_have_text("rolled_back")
    assert slice_state(site, site.globex) == "rolled_back"
    nav(page, "Audit").click()
    expect(page.get_by_test_id("chain-status")).to_have_text(re.compile(r"Chain verified through event \d+"))
    row = (
        page.get_by_role("table", name="Audit events")
        .get_by_role("row")
        .filter(has_text="canary.rolled_back")
    )
    expect(row).to_contain_text("manual: agent closing real phish")
    page.get_by_label("Event type").select_option("canary.rolled_back")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("table", name="Audit events").get_by_role("row")).to_have_count(2)  # header + 1
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("Export")).click()
    assert '"type":"canary.rolled_back"' in Path(download.value.path()).read_text()


def test_viewer_sees_no_operator_buttons_and_forged_posts_are_refused(
    context: BrowserContext, browser: Browser, site: Site
) -> None:
    """A viewer gets no action buttons; a viewer's POST, or one without the CSRF token, is refused (403)."""
    page = log_in(context, site, site.viewer)
    page.get_by_role("link", name="tenant=acme", exact=True).click()
    expect(page.get_by_test_id("slice-state")).to_have_text("canary")
    for button in ("Roll back…", "Force promotion…", "Start canary…"):
        expect(page.get_by_role("link", name=button)).to_have_count(0)
    nav(page, "Kill switches").click()
    expect(page.get_by_role("button", name="Activate kill switch")).to_have_count(0)
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    refused = page.request.post(
        f"{site.url}/slices/{site.acme}/rollback", form={"csrf": csrf or "", "reason": "forged"}
    )
    assert refused.status == 403
    refused = page.request.post(
        f"{site.url}/kill-switches", form={"csrf": csrf or "", "pair": "tenant=acme", "reason": "forged"}
    )
    assert refused.status == 403
    operator = browser.new_context()
    try:
        op_page = log_in(operator, site, site.operator)
        for sent in ({"reason": "no token"}, {"csrf": "0" * 40, "reason": "wrong token"}):
            forged = op_page.request.post(f"{site.url}/slices/{site.acme}/rollback", form=sent)
            assert forged.status == 403
            assert "security token" in forged.text()
    finally:
        operator.close()
    anonymous = httpx.post(f"{site.url}/slices/{site.acme}/rollback", data={"reason": "x"}, timeout=10)
    assert anonymous.status_code == 403
    assert slice_state(site, site.acme) == "canary"
    switches = api(site, "GET", "/v1/kill-switches", site.admin).json()["kill_switches"]
    assert all(k["reason"] != "forged" for k in switches)


def test_an_open_overview_shows_a_kill_switch_and_a_rollback_within_5_s(
    context: BrowserContext, site: Site
) -> None:
    """A kill switch and a rollback made through the API appear on an open overview without a reload."""
    page = log_in(context, site, site.viewer)
    page.evaluate("window.loadedOnce = true")
    made = api(
        site, "POST", "/v1/kill-switches", site.operator, json={"scope": "tenant=initech", "reason": "drill"}
    )
    assert made.status_code == 201, made.text
    try:
        banner = page.get_by_role("alert", name="Active kill switches")
        expect(banner).to_contain_text("tenant=initech", timeout=LIVE_WITHIN_MS)
        rolled = api(
            site, "POST", f"/v1/slices/{site.umbrella}/rollback", site.operator, json={"reason": "drill"}
        )
        assert rolled.status_code == 200, rolled.text
        row = page.get_by_role("row").filter(has=page.get_by_role("link", name="tenant=umbrella"))
        expect(row).to_contain_text("rolled_back", timeout=LIVE_WITHIN_MS)
        expect(row).to_contain_text("manual: drill")
        assert page.evaluate("window.loadedOnce") is True  # the same page: no reload
    finally:
        api(
            site,
            "POST",
            f"/v1/kill-switches/{made.json()['id']}/deactivate",
            site.operator,
            json={"reason": "done"},
        )


def test_every_form_field_has_a_label_and_text_is_readable(context: BrowserContext, site: Site) -> None:
    """On every page each visible form field has a label, and text contrast is at least 4.5:1."""
    page = log_in(context, site, site.admin)
    for path in (
        "/",
        f"/slices/{site.acme}",
        f"/slices/{site.acme}/canary",
        "/kill-switches",
        "/audit",
        "/gate",
    ):
        page.goto(site.url + path)
        unlabelled = page.evaluate(_UNLABELLED)
        assert unlabelled == [], f"{path}: fields without a label: {unlabelled}"
        low = page.evaluate(_LOW_CONTRAST)
        assert low == [], f"{path}: low contrast: {low}"
    page.goto(site.url + "/gate?tenant=acme&severity=low&rule_family=phishing&data_source=o365")
    expect(page.get_by_test_id("gate-mode")).to_have_text("canary")
    expect(page.get_by_role("region", name="Gate answer")).to_contain_text("decides")


def test_gate_explorer_names_the_kill_switch_and_bad_fields(context: BrowserContext, site: Site) -> None:
    """The explorer answers killed naming the switch, and a bad severity is named as the field at fault."""
    page = log_in(context, site, site.viewer)
    nav(page, "Gate explorer").click()
    page.get_by_label("Tenant").fill("globex")
    page.get_by_label("Severity").fill("bogus")
    page.get_by_label("Rule family").fill("phishing")
    page.get_by_label("Data source").fill("o365")
    page.get_by_label("Data source").press("Enter")
    expect(page.locator("#g-severity-error")).to_contain_text("severity: unknown severity 'bogus'")
    page.get_by_label("Severity").fill("35")
    page.get_by_role("button", name="Ask the gate").click()
    mode = page.get_by_test_id("gate-mode")
    expect(mode).to_have_text(re.compile("killed|shadow"))
    if mode.inner_text() == "killed":  # the rollback test ran first: its switch decides
        expect(page.get_by_role("region", name="Gate answer")).to_contain_text("Kill switch")


def test_revoking_the_token_ends_its_session(context: BrowserContext, site: Site) -> None:
    """A session rests on its token: revoked, or a cookie not signed for it, and the page asks to log in."""
    made = api(site, "POST", "/v1/tokens", site.admin, json={"role": "viewer", "name": "short-lived"}).json()
    page = log_in(context, site, made["secret"])
    api(site, "POST", f"/v1/tokens/{made['token']['id']}/revoke", site.admin)
    page.goto(site.url + "/audit")
    expect(page.get_by_label("API token")).to_be_visible()
    listed = api(site, "GET", "/v1/tokens", site.admin).json()["tokens"]
    viewer_id = next(t["id"] for t in listed if t["name"] == "viewer in test")
    now = int(time.time())
    for forged in (f"{viewer_id}.{now}.00.{'0' * 64}", f"{viewer_id}.{now}.00.\u00e9", "garbage"):
        cookie = f"tether_session={forged}".encode("latin-1")
        answer = httpx.get(site.url + "/audit", headers={"Cookie": cookie}, timeout=10)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


def test_dashboard_routes_stay_out_of_the_api_schema(site: Site) -> None:
    """The OpenAPI document lists only the API; dashboard paths answer 405 with their own Allow header."""
    paths = httpx.get(site.url + "/openapi.json", timeout=10).json()["paths"]
    assert not [p for p in paths if not p.startswith("/v1") and p not in ("/healthz", "/readyz")]
    refused = httpx.put(site.url + "/kill-switches", timeout=10)
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD, POST"
    assert httpx.get(site.url + "/static/htmx.min.js", timeout=10).text.startswith("/*! htmx.org")
    login = httpx.get(site.url + "/login", timeout=10)
    assert "frame-ancestors 'none'" in login.headers["content-security-policy"]


_UNLABELLED = """
[...document.querySelectorAll('input, select, textarea')]
  .filter(el => el.type !== 'hidden')
  .filter(el => el.labels.length === 0 && !el.getAttribute('aria-label'))
  .map(el => el.name || el.id)
"""

_LOW_CONTRAST = """
(() => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const background = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const bad = [];
  for (const el of document.querySelectorAll('main *, header *, section.kills *')) {
    if (el.closest('svg') || !el.childNodes.length) continue;
    const text = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!text || el.getClientRects().length === 0) continue;
    const fg = lum(rgb(getComputedStyle(el).color).slice(0, 3)), bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    if (ratio < 4.5) bad.push(`${el.tagName}: ${el.textContent.trim().slice(0, 30)} ${ratio.toFixed(2)}`);
  }
  return bad;
})()
"""
