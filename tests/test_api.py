"""The HTTP API of DESIGN §7 against a real `tether serve` process: roles, tenants, envelope, limits, loop."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import Cli, decision, iso, outcome
from serving import STOP_WITHIN, Server, start_server, stop_server
from tether.bootstrap import build
from tether.config import Settings
from tether.services import kills

MiB = 1024 * 1024
# uvicorn finishes its graceful shutdown, then re-raises the signal it caught, so a clean stop reads -15.
CLEAN_EXIT = {0, -signal.SIGTERM}

SLICE_KEYS = {
    "id", "scope", "state", "attempt", "canary_started_at", "promoted_at", "evidence", "shadow", "verdict",
}  # fmt: skip
KILL_KEYS = {
    "id", "scope", "reason", "active", "activated_by", "activated_at", "deactivated_by", "deactivated_at",
}  # fmt: skip
ANSWER_KEYS = {"mode", "execute", "slice_ids", "reason"}
EVENT_KEYS = {"seq", "at", "type", "actor", "slice_id", "scope", "payload", "prev_hash", "hash"}
V1_PATHS = {
    "/v1/decisions", "/v1/gate", "/v1/outcomes", "/v1/slices", "/v1/slices/{slice_id}",
    "/v1/slices/{slice_id}/canary", "/v1/slices/{slice_id}/promote", "/v1/slices/{slice_id}/rollback",
    "/v1/slices/{slice_id}/reset", "/v1/policy", "/v1/kill-switches",
    "/v1/kill-switches/{kill_id}/deactivate", "/v1/audit", "/v1/audit/verify", "/v1/audit/head",
    "/healthz", "/readyz",
}  # fmt: skip


# --- raw HTTP with Tether's contract checked on every call -----------------------------------------------


def check_envelope(response: httpx.Response) -> dict[str, Any]:
    """A 4xx body is {"error": "...", "errors": [{"loc": [...], "msg": "...", "index"?: n}]}."""
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error", "errors"}, body
    assert isinstance(body["error"], str) and body["error"], body
    assert isinstance(body["errors"], list), body
    for item in body["errors"]:
        assert {"loc", "msg"} <= set(item) <= {"loc", "msg", "index"}, item
        assert isinstance(item["loc"], list) and isinstance(item["msg"], str) and item["msg"], item
        if "index" in item:
            assert isinstance(item["index"], int) and item["index"] >= 0, item
    return body


@dataclass
class Api:
    """A running server with named tokens; `call` asserts never a 5xx and the envelope on every 4xx."""

    server: Server
    tmp: Path
    db_url: str
    secrets: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    cli_created: dict[str, Any] = field(default_factory=dict)
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60.0))

    def call(
        self, method: str, path: str, who: str | None = "admin", expect: int | None = None, **kw: Any
    ) -> httpx.Response:
        headers = dict(kw.pop("headers", {}))
        if who is not None:
            headers.setdefault("Authorization", f"Bearer {self.secrets.get(who, who)}")
        response = self.http.request(method, self.server.url + path, headers=headers, **kw)
        assert response.status_code < 500, f"{method} {path}: {response.status_code} {response.text}"
        if 400 <= response.status_code < 500:
            check_envelope(response)
        if expect is not None:
            assert response.status_code == expect, f"{method} {path}: {response.status_code} {response.text}"
        return response

    def ok(self, method: str, path: str, who: str = "admin", **kw: Any) -> Any:
        response = self.call(method, path, who, **kw)
        assert response.status_code in (200, 201), f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def actor(self, who: str) -> dict[str, Any]:
        return {"type": "token", "id": self.ids[who], "name": who}

    def head(self) -> int:
        return int(self.ok("GET", "/v1/audit/head")["seq"])

    def events_after(self, seq: int) -> list[dict[str, Any]]:
        return list(self.ok("GET", "/v1/audit", params={"cursor": seq})["events"])

    def slice(self, slice_id: str) -> dict[str, Any]:
        return dict(self.ok("GET", f"/v1/slices/{slice_id}"))

    def state(self, slice_id: str) -> dict[str, Any]:
        """What a write would change in a slice: its state, attempt, overrides and evidence counters."""
        s = self.slice(slice_id)
        keep = ("state", "attempt", "canary_started_at", "promoted_at", "kill_switch_id", "policy_overrides")
        counters = ("decisions", "executed", "reviewed", "correct", "incorrect", "missed_tp")
        return {k: s[k] for k in keep} | {k: s["evidence"][k] for k in counters}

    def kill(self, kill_id: str) -> dict[str, Any]:
        found = [k for k in self.ok("GET", "/v1/kill-switches")["kill_switches"] if k["id"] == kill_id]
        assert len(found) == 1, kill_id
        return dict(found[0])

    def canary(self, scope: str) -> str:
        """A new slice on this scope, in canary on a sign-off; its id."""
        sid = str(self.ok("POST", "/v1/slices", json={"scope": scope})["id"])
        self.ok("POST", f"/v1/slices/{sid}/canary", json={"signed_off_by": "lead", "reason": "pilot"})
        return sid


def alert(tenant: str, **over: Any) -> dict[str, Any]:
    body = {"tenant": tenant, "severity": "low", "rule_family": "phishing", "data_source": "o365"}
    body.update(over)
    return body


# Tokens the module server gets: (name, role, tenants); the first two via `tether token create`.
CLI_TOKENS = [("viewer", "viewer", []), ("acme-ingest", "ingest", ["acme"])]
API_TOKENS = [
    ("ingest", "ingest", []),
    ("operator", "operator", []),
    ("acme-admin", "admin", ["acme"]),
    ("globex-admin", "admin", ["globex"]),
    ("acme-operator", "operator", ["acme"]),
]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, module_db_url: str) -> Iterator[Api]:
    """One server for the module, evaluator loop off, with a token per role and tenant-limited ones."""
    tmp = tmp_path_factory.mktemp("api")
    db_url = module_db_url
    cli = Cli(tmp, db_url)
    first = cli.json("init")
    with ThreadPoolExecutor(3) as pool:
        booting = pool.submit(start_server, db_url, tmp)
        created = {
            name: pool.submit(
                cli.json, "token", "create", "--role", role, "--name", name, *_tenant_flags(tenants)
            )
            for name, role, tenants in CLI_TOKENS
        }
        server = booting.result()
        out = Api(server, tmp, db_url)
    try:
        out.cli_created = {n: f.result() for n, f in created.items()}
        out.secrets["admin"], out.ids["admin"] = first["token"], first["token_id"]
        for name, data in out.cli_created.items():
            out.secrets[name], out.ids[name] = data["secret"], data["token"]["id"]
        for name, role, tenants in API_TOKENS:
            data = out.ok("POST", "/v1/tokens", json={"role": role, "tenants": tenants, "name": name})
            out.secrets[name], out.ids[name] = data["secret"], data["token"]["id"]
        # the first admin token is named "first admin": record it under that name for actor checks
        out.secrets["first admin"], out.ids["first admin"] = out.secrets["admin"], out.ids["admin"]
        yield out
    finally:
        out.http.close()
        stop_server(server)


def _tenant_flags(tenants: list[str]) -> list[str]:
    return [flag for t in tenants for flag in ("--tenant", t)]


@dataclass(frozen=True)
class World:
    """Things of two tenants and one cross-tenant slice and switch, made by the unrestricted admin."""

    acme_slice: str
    globex_slice: str
    globex_shadow: str
    cross_slice: str
    acme_kill: str
    globex_kill: str
    cross_kill: str


@pytest.fixture(scope="module")
def world(api: Api) -> World:
    def kill(scope: str) -> str:
        return str(api.ok("POST", "/v1/kill-switches", json={"scope": scope, "reason": "fixture"})["id"])

    return World(
        acme_slice=api.canary("tenant=acme"),
        globex_slice=api.canary("tenant=globex"),
        globex_shadow=str(
            api.ok("POST", "/v1/slices", json={"scope": "tenant=globex,data_source=okta"})["id"]
        ),
        cross_slice=str(api.ok("POST", "/v1/slices", json={"scope": "rule_family=nonesuch"})["id"]),
        acme_kill=kill("tenant=acme,rule_family=malware"),
        globex_kill=kill("tenant=globex,rule_family=malware"),
        cross_kill=kill("rule_family=nonesuch"),
    )


# --- health, readiness, OpenAPI --------------------------------------------------------------------------


def test_healthz_readyz_and_openapi_answer_without_a_token(api: Api) -> None:
    """/healthz, /readyz and /metrics answer 200 on a reachable database; /openapi.json lists the §7 paths."""
    assert api.call("GET", "/healthz", None, expect=200).json()["status"] == "ok"
    assert api.call("GET", "/readyz", None, expect=200).json()["status"] == "ready"
    api.call("GET", "/metrics", None, expect=200)
    doc = api.call("GET", "/openapi.json", None, expect=200).json()
    assert set(doc["paths"]) >= V1_PATHS, sorted(V1_PATHS - set(doc["paths"]))
    assert {"post"} <= set(doc["paths"]["/v1/decisions"]) and {"get", "put"} <= set(
        doc["paths"]["/v1/policy"]
    )


# --- roles -----------------------------------------------------------------------------------------------

_DECISION = decision("roles-1", tenant="rolesco")
_REASON = {"reason": "role check"}
# (method, path, body, roles that lack the permission); {slice} and {kill} are acme's, {token} the viewer's.
ROLE_TABLE: list[tuple[str, str, Any, tuple[str, ...]]] = [
    ("GET", "/v1/slices", None, ("ingest",)),
    ("GET", "/v1/slices/{slice}", None, ("ingest",)),
    ("GET", "/v1/policy", None, ("ingest",)),
    ("GET", "/v1/kill-switches", None, ("ingest",)),
    ("GET", "/v1/audit", None, ("ingest",)),
    ("GET", "/v1/audit/verify", None, ("ingest",)),
    ("GET", "/v1/audit/head", None, ("ingest",)),
    ("POST", "/v1/decisions", [_DECISION], ("viewer", "operator")),
    ("POST", "/v1/gate", alert("rolesco"), ("viewer", "operator")),
    ("POST", "/v1/outcomes", [outcome("roles-1")], ("viewer", "operator")),
    ("POST", "/v1/slices", {"scope": "tenant=rolesco"}, ("viewer", "ingest")),
    ("POST", "/v1/slices/{slice}/canary", {"signed_off_by": "a", "reason": "b"}, ("viewer", "ingest")),
    ("POST", "/v1/slices/{slice}/rollback", _REASON, ("viewer", "ingest")),
    ("POST", "/v1/slices/{slice}/reset", _REASON, ("viewer", "ingest")),
    ("POST", "/v1/kill-switches", {"scope": "tenant=rolesco", "reason": "x"}, ("viewer", "ingest")),
    ("POST", "/v1/kill-switches/{kill}/deactivate", _REASON, ("viewer", "ingest")),
    ("POST", "/v1/slices/{slice}/promote", _REASON, ("viewer", "ingest", "operator")),
    (
        "POST",
        "/v1/slices/{slice}/canary",
        {"signed_off_by": "a", "reason": "b", "override_cooldown": True},
        ("operator",),
    ),
    ("PUT", "/v1/slices/{slice}/policy", {"max_missed_tp": 3}, ("viewer", "ingest", "operator")),
    ("PUT", "/v1/policy", {"promote_after_days": 1}, ("viewer", "ingest", "operator")),
    ("POST", "/v1/evaluate", None, ("viewer", "ingest", "operator")),
    ("GET", "/v1/tokens", None, ("viewer", "ingest", "operator")),
    ("POST", "/v1/tokens", {"role": "admin"}, ("viewer", "ingest", "operator")),
    ("POST", "/v1/tokens/{token}/revoke", None, ("viewer", "ingest", "operator")),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "roles"), ROLE_TABLE, ids=[f"{m} {p} {r}" for m, p, _, r in ROLE_TABLE]
)
def test_a_role_without_the_permission_gets_403_and_changes_nothing(
    api: Api, world: World, method: str, path: str, body: Any, roles: tuple[str, ...]
) -> None:
    """Each §7 route answers 403 with the envelope to a role that lacks its permission, and audits nothing."""
    url = path.format(slice=world.acme_slice, kill=world.acme_kill, token=api.ids["viewer"])
    head, acme = api.head(), api.slice(world.acme_slice)
    for role in roles:
        kw = {} if body is None else {"json": body}
        body_of = api.call(method, url, role, expect=403, **kw).json()
        assert role in body_of["error"], body_of
    assert api.head() == head
    assert api.slice(world.acme_slice)["state"] == acme["state"] == "canary"
    assert api.kill(world.acme_kill)["active"] is True


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer tth_not-a-real-secret"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "Bearer"},
    ],
    ids=["none", "unknown", "basic", "empty"],
)
def test_no_or_bad_token_gets_401(api: Api, headers: dict[str, str]) -> None:
    """A missing, unknown, empty or non-bearer token gets 401 with the envelope and a Bearer challenge."""
    for method, path, body in [
        ("GET", "/v1/slices", None),
        ("POST", "/v1/decisions", [decision("auth-1", tenant="authco")]),
        ("PUT", "/v1/policy", {"promote_after_days": 1}),
    ]:
        kw = {} if body is None else {"json": body}
        response = api.call(method, path, None, expect=401, headers=headers, **kw)
        assert response.headers.get("www-authenticate", "").lower().startswith("bearer")


# --- every route with the right role, and its actor ------------------------------------------------------


def test_slice_lifecycle_routes_work_for_their_roles_and_audit_the_token(api: Api) -> None:
    """Slice routes work for the least role allowed and each audit event names the calling token as actor."""
    seq = api.head()

    def new_events(who: str, *types: str) -> list[dict[str, Any]]:
        nonlocal seq
        events = api.events_after(seq)
        assert sorted(e["type"] for e in events) == sorted(types), events
        for e in events:
            assert set(e) == EVENT_KEYS and e["actor"] == api.actor(who), e
        seq = events[-1]["seq"] if events else seq
        return events

    created = api.ok("POST", "/v1/slices", "operator", json={"scope": "tenant=flowco"})
    assert set(created) >= SLICE_KEYS and created["state"] == "shadow" and created["attempt"] == 0
    sid = created["id"]
    new_events("operator", "slice.created")
    body = {"signed_off_by": "j.doe", "reason": "pilot"}
    started = api.ok("POST", f"/v1/slices/{sid}/canary", "operator", json=body)
    assert (started["state"], started["attempt"]) == ("canary", 1)
    new_events("operator", "canary.started")

    results = api.ok(
        "POST",
        "/v1/decisions",
        "ingest",
        json=[decision("flow-1", tenant="flowco"), decision("flow-2", tenant="flowco", verdict="escalate")],
    )["results"]
    assert [(r["decision_id"], r["mode"], r["execute"], r["slice_ids"]) for r in results] == [
        ("d-flow-1", "canary", True, [sid]),
        ("d-flow-2", "canary", False, [sid]),
    ]
    gate = api.ok("POST", "/v1/gate", "ingest", json=alert("flowco"))
    assert set(gate) >= ANSWER_KEYS and (gate["mode"], gate["execute"], gate["slice_ids"]) == (
        "canary",
        True,
        [sid],
    )
    receipt = api.ok("POST", "/v1/outcomes", "ingest", json=[outcome("flow-1")])
    assert receipt == {"accepted": 1, "actions": []}
    new_events("ingest")  # decisions, the gate and a clean outcome write no audit event

    shown = api.ok("GET", f"/v1/slices/{sid}", "viewer")
    ev = shown["evidence"]
    assert (ev["decisions"], ev["executed"], ev["reviewed"], ev["correct"]) == (2, 1, 1, 1), ev
    assert sid in [s["id"] for s in api.ok("GET", "/v1/slices", "viewer")["slices"]]

    promoted = api.ok("POST", f"/v1/slices/{sid}/promote", "admin", json={"reason": "drill"})
    assert promoted["state"] == "active" and promoted["promoted_at"]
    assert new_events("first admin", "canary.promoted")[0]["payload"]["forced"] is True

    rolled = api.ok("POST", f"/v1/slices/{sid}/rollback", "operator", json={"reason": "drill"})
    assert rolled["state"] == "rolled_back"
    new_events("operator", "canary.rolled_back", "kill_switch.activated")
    switches = api.ok("GET", "/v1/kill-switches", "viewer", params={"active": True})["kill_switches"]
    [own] = [k for k in switches if k["scope"] == "tenant=flowco"]
    assert set(own) >= KILL_KEYS and own["activated_by"] == api.actor("operator")
    refused = api.call(
        "POST", f"/v1/kill-switches/{own['id']}/deactivate", "operator", expect=409, json={"reason": "x"}
    )
    assert "reset" in refused.json()["error"]

    reset = api.ok("POST", f"/v1/slices/{sid}/reset", "operator", json={"reason": "fixed"})
    assert reset["state"] == "shadow"
    new_events("operator", "slice.reset", "kill_switch.deactivated")
    assert api.kill(own["id"])["active"] is False

    changed = api.ok("PUT", f"/v1/slices/{sid}/policy", "admin", json={"max_missed_tp": 2})
    assert changed["policy_overrides"] == {"max_missed_tp": 2}
    new_events("first admin", "slice.policy_changed")
    assert "results" in api.ok("POST", "/v1/evaluate", "admin")


def test_kill_switch_routes_work_for_an_operator_and_take_effect_at_once(api: Api) -> None:
    """An operator activates and deactivates a kill switch, audited; the gate answers killed in between."""
    seq = api.head()
    made = api.call(
        "POST",
        "/v1/kill-switches",
        "operator",
        expect=201,
        json={"scope": "tenant=killco", "reason": "incident"},
    ).json()
    assert set(made) >= KILL_KEYS and made["active"] is True and made["scope"] == "tenant=killco"
    assert made["activated_by"] == api.actor("operator")
    gate = api.ok("POST", "/v1/gate", "ingest", json=alert("killco"))
    assert (gate["mode"], gate["execute"], gate["kill_switch_id"], gate["slice_ids"]) == (
        "killed",
        False,
        made["id"],
        [],
    )
    off = api.ok("POST", f"/v1/kill-switches/{made['id']}/deactivate", "operator", json={"reason": "over"})
    assert off["active"] is False and off["deactivated_by"] == api.actor("operator") and off["deactivated_at"]
    assert api.ok("POST", "/v1/gate", "ingest", json=alert("killco"))["mode"] == "shadow"
    events = api.events_after(seq)
    assert [e["type"] for e in events] == ["kill_switch.activated", "kill_switch.deactivated"]
    assert all(e["actor"] == api.actor("operator") for e in events)


def test_a_rollback_triggered_by_an_outcome_audits_the_reporting_token(api: Api) -> None:
    """A missed true positive rolls its canary back in the request, audited with the ingest token as actor."""
    sid = api.canary("tenant=missco")
    api.ok("POST", "/v1/decisions", "ingest", json=[decision("miss-1", tenant="missco")])
    seq = api.head()
    receipt = api.ok("POST", "/v1/outcomes", "ingest", json=[outcome("miss-1", "true_positive", "incident")])
    [action] = receipt["actions"]
    assert (receipt["accepted"], action["action"], action["slice_id"]) == (1, "rollback", sid)
    events = api.events_after(seq)
    assert sorted(e["type"] for e in events) == ["canary.rolled_back", "kill_switch.activated"]
    assert all(e["actor"] == api.actor("ingest") for e in events), events
    assert api.slice(sid)["state"] == "rolled_back"


def test_policy_routes_read_for_a_viewer_and_write_for_an_admin(api: Api) -> None:
    """GET /v1/policy is one flat object; PUT validates its fields and audits policy.changed by the token."""
    before = api.ok("GET", "/v1/policy", "viewer")
    assert before["promote_after_days"] == 7 and before["evidence"] == "sequential"
    seq = api.head()
    after = api.ok("PUT", "/v1/policy", "admin", json={"promote_after_days": before["promote_after_days"]})
    assert after == before
    [event] = api.events_after(seq)
    assert event["type"] == "policy.changed" and event["actor"] == api.actor("first admin")
    unknown = api.call("PUT", "/v1/policy", "admin", expect=422, json={"colour": 1}).json()
    assert "colour" in unknown["errors"][0]["loc"]
    out_of_range = api.call("PUT", "/v1/policy", "admin", expect=422, json={"promote_min_precision": 1.5})
    assert "promote_min_precision" in out_of_range.json()["errors"][0]["loc"]
    assert api.head() == event["seq"]


def test_token_routes_create_list_and_revoke_for_an_admin(api: Api) -> None:
    """An admin creates, lists (no secrets) and revokes a token, audited; a revoked token gets 401 at once."""
    seq = api.head()
    made = api.call(
        "POST",
        "/v1/tokens",
        "admin",
        expect=201,
        json={"role": "viewer", "name": "temp", "tenants": ["acme"]},
    ).json()
    secret, tid = made["secret"], made["token"]["id"]
    assert made["token"]["role"] == "viewer" and made["token"]["tenants"] == ["acme"]
    api.call("GET", "/v1/slices", secret, expect=200)
    listing = api.call("GET", "/v1/tokens", "admin", expect=200)
    assert tid in [t["id"] for t in listing.json()["tokens"]]
    assert all(s not in listing.text for s in [secret, *api.secrets.values()])
    revoked = api.ok("POST", f"/v1/tokens/{tid}/revoke", "admin")
    assert revoked["active"] is False
    api.call("GET", "/v1/slices", secret, expect=401)
    events = api.events_after(seq)
    assert [e["type"] for e in events] == ["token.created", "token.revoked"]
    assert all(e["actor"] == api.actor("first admin") for e in events)
    api.call("POST", f"/v1/tokens/{tid}/revoke", "admin", expect=409)
    api.call("POST", "/v1/tokens/tok_nope/revoke", "admin", expect=404)


def test_cli_tokens_are_shown_once_stored_hashed_and_revocable_while_serving(api: Api) -> None:
    """`tether token create --json` prints token and secret, stored hashed; `token revoke` acts at once."""
    made = api.cli_created["acme-ingest"]
    assert set(made) == {"token", "secret"}
    assert made["token"]["role"] == "ingest" and made["token"]["tenants"] == ["acme"]
    assert made["token"]["active"] is True and made["token"]["name"] == "acme-ingest"
    stored = b"".join(p.read_bytes() for p in api.tmp.glob("tether.db*"))
    for name in ("admin", "viewer", "acme-ingest", "ingest"):
        assert api.secrets[name].encode() not in stored, name
    cli = Cli(api.tmp, api.db_url)
    listed = cli.run("token", "list", "--json").stdout
    assert made["token"]["id"] in listed and made["secret"] not in listed
    temp = api.ok("POST", "/v1/tokens", "admin", json={"role": "viewer", "name": "short-lived"})
    api.call("GET", "/v1/policy", temp["secret"], expect=200)
    seq = api.head()
    cli.json("token", "revoke", temp["token"]["id"])
    api.call("GET", "/v1/policy", temp["secret"], expect=401)
    [event] = api.events_after(seq)
    assert event["type"] == "token.revoked" and event["payload"]["token_id"] == temp["token"]["id"]
    assert event["actor"]["type"] == "user"


def test_audit_routes_filter_verify_and_publish_the_head(api: Api, world: World) -> None:
    """GET /v1/audit filters by slice and type; verify recomputes the chain; head matches the last event."""
    events = api.ok("GET", "/v1/audit", "viewer", params={"slice_id": world.globex_slice})["events"]
    assert [e["type"] for e in events][:2] == ["slice.created", "canary.started"]
    assert all(e["slice_id"] == world.globex_slice for e in events)
    typed = api.ok("GET", "/v1/audit", "viewer", params={"type": "kill_switch.activated"})["events"]
    assert typed and all(e["type"] == "kill_switch.activated" for e in typed)
    head = api.ok("GET", "/v1/audit/head", "viewer")
    report = api.ok("GET", "/v1/audit/verify", "viewer", params={"head": f"{head['seq']}:{head['hash']}"})
    assert report["ok"] is True and report["bad_seq"] is None and report["events"] >= head["seq"]
    bad = api.call("GET", "/v1/audit", "viewer", expect=422, params={"since": "yesterday"}).json()
    assert "since" in bad["errors"][0]["loc"]


# --- tenant isolation ------------------------------------------------------------------------------------

# Routes taking another tenant's id: (method, path, body); {slice} is globex's shadow or canary slice.
OTHER_ID_ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/v1/slices/{canary}", None),
    ("POST", "/v1/slices/{shadow}/canary", {"signed_off_by": "mallory", "reason": "x"}),
    ("POST", "/v1/slices/{canary}/promote", {"reason": "x"}),
    ("POST", "/v1/slices/{canary}/rollback", {"reason": "x"}),
    ("POST", "/v1/slices/{canary}/reset", {"reason": "x"}),
    ("PUT", "/v1/slices/{canary}/policy", {"max_missed_tp": 5}),
    ("POST", "/v1/kill-switches/{kill}/deactivate", {"reason": "x"}),
]


@pytest.mark.parametrize(
    ("method", "path", "body"), OTHER_ID_ROUTES, ids=[f"{m} {p}" for m, p, _ in OTHER_ID_ROUTES]
)
def test_another_tenants_ids_answer_404_and_stay_unchanged(
    api: Api, world: World, method: str, path: str, body: Any
) -> None:
    """A token limited to acme gets 404 on globex's slice and kill switch ids, and they stay as they were."""
    url = path.format(canary=world.globex_slice, shadow=world.globex_shadow, kill=world.globex_kill)
    head = api.head()
    before = [api.state(world.globex_slice), api.state(world.globex_shadow), api.kill(world.globex_kill)]
    kw = {} if body is None else {"json": body}
    api.call(method, url, "acme-admin", expect=404, **kw)
    assert [
        api.state(world.globex_slice),
        api.state(world.globex_shadow),
        api.kill(world.globex_kill),
    ] == before
    assert api.head() == head
    api.call("GET", f"/v1/slices/{world.globex_slice}", "globex-admin", expect=200)


def test_lists_omit_other_tenants_and_cross_tenant_things(api: Api, world: World) -> None:
    """Slice, kill switch and audit lists of an acme token show acme's things only; globex sees globex's."""
    for who, own_slice, own_kill, tenant in [
        ("acme-admin", world.acme_slice, world.acme_kill, "acme"),
        ("globex-admin", world.globex_slice, world.globex_kill, "globex"),
    ]:
        slices = api.ok("GET", "/v1/slices", who)["slices"]
        assert own_slice in [s["id"] for s in slices]
        assert all(f"tenant={tenant}" in s["scope"].split(",") for s in slices), slices
        switches = api.ok("GET", "/v1/kill-switches", who)["kill_switches"]
        assert own_kill in [k["id"] for k in switches]
        assert all(f"tenant={tenant}" in k["scope"].split(",") for k in switches), switches
        events = api.ok("GET", "/v1/audit", who)["events"]
        assert own_slice in {e["slice_id"] for e in events}
        assert all(e["scope"] and f"tenant={tenant}" in e["scope"].split(",") for e in events), events
    other = api.ok("GET", "/v1/slices", "acme-admin", params={"tenant": "globex"})["slices"]
    assert other == []
    everything = {s["id"] for s in api.ok("GET", "/v1/slices", "viewer")["slices"]}
    assert {world.acme_slice, world.globex_slice, world.cross_slice} <= everything


def test_an_ingest_token_may_not_write_decisions_or_ask_the_gate_for_another_tenant(
    api: Api, world: World
) -> None:
    """An acme ingest token sending globex decisions (even mixed) or gate questions gets 403; none written."""
    ours, theirs = decision("iso-1", tenant="acme"), decision("iso-2", tenant="globex")
    before = [api.state(world.acme_slice), api.state(world.globex_slice)]
    for batch in ([theirs], [ours, theirs]):
        body = api.call("POST", "/v1/decisions", "acme-ingest", expect=403, json=batch).json()
        assert "globex" in body["error"]
    api.call("POST", "/v1/gate", "acme-ingest", expect=403, json=alert("globex"))
    assert [api.state(world.acme_slice), api.state(world.globex_slice)] == before
    # Had either been recorded, the same id with another body would now be a 409.
    changed = [dict(ours, verdict="escalate"), dict(theirs, verdict="escalate")]
    results = api.ok("POST", "/v1/decisions", "ingest", json=changed)["results"]
    assert [r["decision_id"] for r in results] == ["d-iso-1", "d-iso-2"]


def test_an_ingest_token_may_not_report_outcomes_for_another_tenant(api: Api, world: World) -> None:
    """An acme ingest token reporting a globex outcome (by id or by alert) gets 403, and nothing changes."""
    [answer] = api.ok("POST", "/v1/decisions", "globex-admin", json=[decision("iso-3", tenant="globex")])[
        "results"
    ]
    assert answer["execute"] is True and answer["slice_ids"] == [world.globex_slice]
    before, head = api.state(world.globex_slice), api.head()
    missed = outcome("iso-3", "true_positive")  # would roll globex back if it were recorded
    by_alert = {k: v for k, v in missed.items() if k != "decision_id"} | {
        "tenant": "globex",
        "alert_id": "A-iso-3",
    }
    for batch in ([missed], [by_alert]):
        api.call("POST", "/v1/outcomes", "acme-ingest", expect=403, json=batch)
    assert api.state(world.globex_slice) == before and before["state"] == "canary"
    assert api.head() == head


def test_a_tenant_limited_operator_may_kill_only_its_own_tenant(api: Api) -> None:
    """An acme operator may not kill everything or globex (403, nothing audited), only an acme scope."""
    head = api.head()
    for scope in ["", "rule_family=phishing", "tenant=globex"]:
        api.call(
            "POST", "/v1/kill-switches", "acme-operator", expect=403, json={"scope": scope, "reason": "x"}
        )
        api.call("POST", "/v1/slices", "acme-operator", expect=403, json={"scope": scope or "tenant=globex"})
    assert api.head() == head
    own = api.call(
        "POST",
        "/v1/kill-switches",
        "acme-operator",
        expect=201,
        json={"scope": "tenant=acme,rule_family=ransomware", "reason": "drill"},
    ).json()
    api.ok("POST", f"/v1/kill-switches/{own['id']}/deactivate", "acme-operator", json={"reason": "done"})


def test_a_tenant_limited_token_pages_through_all_of_its_audit_events(api: Api) -> None:
    """Following next_cursor, an acme token reaches its newest event even behind a full page of globex's."""
    start = api.head()
    noise = build(Settings(database_url=api.db_url, actor="noise", sqlite_synchronous="NORMAL"))
    try:
        for i in range(260):  # 520 globex events: more than one page of GET /v1/audit
            k = kills.activate(noise, f"tenant=globex,rule_family=noise{i}", "noise")
            kills.deactivate(noise, k.id, "noise")
    finally:
        noise.db.dispose()
    mine = api.call(
        "POST",
        "/v1/kill-switches",
        "acme-admin",
        expect=201,
        json={"scope": "tenant=acme,rule_family=p", "reason": "x"},
    ).json()
    seen: list[int] = []
    cursor: int | None = start
    for _ in range(20):
        page = api.ok("GET", "/v1/audit", "acme-admin", params={"cursor": cursor})
        seen += [
            e["seq"] for e in page["events"] if e["payload"].get("kill_switch", {}).get("id") == mine["id"]
        ]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    api.ok("POST", f"/v1/kill-switches/{mine['id']}/deactivate", "acme-admin", json={"reason": "done"})
    assert seen, "the acme token never saw its own kill_switch.activated event"


# --- bad input -------------------------------------------------------------------------------------------


def _bad_decisions() -> list[tuple[str, list[str], Any, int | None, str | None]]:
    """(case, decision ids in the body, body, index, field in loc): POST /v1/decisions answers 422."""
    cases: list[tuple[str, list[str], Any, int | None, str | None]] = []

    def case(name: str, n: int, index: int | None, field: str | None, bad: dict[str, Any] | None) -> None:
        items: list[Any] = [decision(f"{name}-{i}", tenant="envco") for i in range(n)]
        ids = [d["decision_id"] for d in items]
        if index is not None and bad is not None:
            items[index] = {k: v for k, v in {**items[index], **bad}.items() if v is not None}
        cases.append((name, ids, items, index, field))

    case("unknown-field", 2, 1, "colour", {"colour": "red"})
    case("bad-severity", 2, 0, "severity", {"severity": "extreme"})
    case("severity-over-100", 2, 1, "severity", {"severity": 101})
    case("bad-verdict", 1, 0, "verdict", {"verdict": "maybe"})
    case("missing-field", 3, 2, "alert_id", {"alert_id": None})
    case("no-zone", 1, 0, "decided_at", {"decided_at": "2026-11-27T10:15:00"})
    case("item-not-an-object", 2, 1, None, None)
    cases[-1][2][1] = "d-1"
    lone = decision("not-a-list-0", tenant="envco")
    cases.append(("not-a-list", [lone["decision_id"]], lone, None, None))
    return cases


BAD = _bad_decisions()


@pytest.mark.parametrize(("case", "ids", "body", "index", "name"), BAD, ids=[b[0] for b in BAD])
def test_bad_decisions_get_the_envelope_naming_field_and_index_and_write_nothing(
    api: Api, case: str, ids: list[str], body: Any, index: int | None, name: str | None
) -> None:
    """A bad decision batch gets a 422 envelope naming field and item index; no item of it is recorded."""
    problem = api.call("POST", "/v1/decisions", "ingest", expect=422, json=body).json()["errors"][0]
    assert problem.get("index") == index, problem
    if index is not None:
        assert problem["loc"][:2] == ["body", index], problem
    if name is not None:
        assert name in problem["loc"], problem
    # None was recorded: the same ids with another body are accepted, where a recorded one would be a 409.
    changed = [decision(i.removeprefix("d-"), tenant="envco", verdict="escalate") for i in ids]
    api.ok("POST", "/v1/decisions", "ingest", json=changed)


MALFORMED = [b'[{"decision_id": ', b"\xff\xfe not json", b"[1, 2,]", b""]


@pytest.mark.parametrize("raw", MALFORMED, ids=["truncated", "not-utf8", "trailing-comma", "empty"])
def test_a_malformed_body_gets_a_4xx_envelope(api: Api, raw: bytes) -> None:
    """A body that is not JSON gets a 400 or 422 with the error envelope, never a 500."""
    headers = {"content-type": "application/json"}
    response = api.call("POST", "/v1/decisions", "ingest", content=raw, headers=headers)
    assert response.status_code in (400, 422), response.text


@pytest.mark.parametrize("raw", MALFORMED[:3], ids=["truncated", "not-utf8", "trailing-comma"])
def test_a_malformed_body_names_no_batch_index(api: Api, raw: bytes) -> None:
    """The envelope of a body that is not JSON has no "index": no item of a batch is to blame."""
    headers = {"content-type": "application/json"}
    response = api.call("POST", "/v1/decisions", "ingest", content=raw, headers=headers)
    assert all("index" not in e for e in response.json()["errors"]), response.text


@pytest.mark.parametrize(
    ("path", "body", "name"),
    [
        ("/v1/gate", dict(alert("envco"), colour="red"), "colour"),
        ("/v1/slices", {"scope": "tenant=envco", "colour": "red"}, "colour"),
        ("/v1/kill-switches", {"scope": "tenant=envco", "reason": "x", "colour": "red"}, "colour"),
        ("/v1/slices", {"scope": "tenant=envco,planet=mars"}, None),
        ("/v1/tokens", {"role": "superuser"}, "role"),
    ],
    ids=["gate", "slice", "kill-switch", "unknown-dimension", "token-role"],
)
def test_unknown_fields_and_bad_values_in_other_bodies_get_422(
    api: Api, path: str, body: dict[str, Any], name: str | None
) -> None:
    """Unknown fields and bad values in the other request bodies get a 422 envelope naming the field."""
    head = api.head()
    problem = api.call("POST", path, "admin", expect=422, json=body).json()["errors"]
    if name is not None:
        assert name in problem[0]["loc"], problem
    assert api.head() == head


def test_outcome_for_an_unknown_decision_refuses_the_whole_batch(api: Api) -> None:
    """An outcome naming no recorded decision gets 422 with its index; none of its batch is applied."""
    sid = api.canary("tenant=outco")
    api.ok("POST", "/v1/decisions", "ingest", json=[decision("out-1", tenant="outco")])
    batch = [outcome("out-1", "true_positive"), outcome("out-unknown")]
    problem = api.call("POST", "/v1/outcomes", "ingest", expect=422, json=batch).json()["errors"][0]
    assert problem["index"] == 1 and "decision_id" in problem["loc"], problem
    by_alert = [{"tenant": "outco", "alert_id": "A-none", "disposition": "false_positive", "source": "review",
                 "observed_at": "2026-11-28T09:00:00Z"}]  # fmt: skip
    problem = api.call("POST", "/v1/outcomes", "ingest", expect=422, json=by_alert).json()["errors"][0]
    assert problem["index"] == 0 and "alert_id" in problem["loc"], problem
    bad_disposition = [outcome("out-1", "guilty")]
    problem = api.call("POST", "/v1/outcomes", "ingest", expect=422, json=bad_disposition).json()["errors"][0]
    assert problem["index"] == 0 and "disposition" in problem["loc"], problem
    s = api.slice(sid)
    assert s["state"] == "canary" and s["evidence"]["missed_tp"] == 0 and s["evidence"]["reviewed"] == 0


def test_a_replayed_decision_returns_its_first_answer_and_a_changed_one_is_409(api: Api) -> None:
    """A replayed decision returns its first answer and records nothing; another body under its id is 409."""
    sid = api.canary("tenant=replayco")
    d = decision("rep-1", tenant="replayco")
    [first] = api.ok("POST", "/v1/decisions", "ingest", json=[d])["results"]
    assert (first["mode"], first["execute"]) == ("canary", True)
    kill = api.call(
        "POST", "/v1/kill-switches", "operator", expect=201, json={"scope": "tenant=replayco", "reason": "x"}
    ).json()
    again = api.ok("POST", "/v1/decisions", "ingest", json=[d, d])["results"]
    assert again == [first, first]  # the first answer, not today's killed one
    assert api.slice(sid)["evidence"]["decisions"] == 1
    other = decision("rep-2", tenant="replayco")
    for batch, index in [([dict(d, verdict="escalate")], 0), ([other, dict(d, alert_id="A-other")], 1)]:
        problem = api.call("POST", "/v1/decisions", "ingest", expect=409, json=batch).json()["errors"][0]
        assert problem["index"] == index and "decision_id" in problem["loc"], problem
    twice = [decision("rep-3", tenant="replayco"), decision("rep-3", tenant="replayco", verdict="escalate")]
    problem = api.call("POST", "/v1/decisions", "ingest", expect=409, json=twice).json()["errors"][0]
    assert problem["index"] == 1, problem
    api.ok("POST", f"/v1/kill-switches/{kill['id']}/deactivate", "operator", json={"reason": "done"})
    # rep-2 and rep-3 were in refused batches: they were not recorded
    api.ok("POST", "/v1/decisions", "ingest", json=[decision("rep-2", tenant="replayco", verdict="escalate")])
    api.ok("POST", "/v1/decisions", "ingest", json=[decision("rep-3", tenant="replayco", verdict="escalate")])


def _big_batch(tag: str, n: int) -> list[dict[str, Any]]:
    return [decision(f"{tag}-{i}", tenant="bigco") for i in range(n)]


def test_a_body_declared_over_4_mib_gets_413(api: Api) -> None:
    """A request body whose Content-Length is over 4 MiB gets 413 with the envelope."""
    declared = b"[" + b" " * (4 * MiB) + b"]"
    headers = {"content-type": "application/json"}
    for path in ("/v1/decisions", "/v1/outcomes", "/v1/gate"):
        api.call("POST", path, "ingest", expect=413, content=declared, headers=headers)


def test_a_streamed_body_over_4_mib_gets_413(api: Api) -> None:
    """A chunked request body (no Content-Length) that grows over 4 MiB gets 413 with the envelope too."""

    def chunks() -> Iterator[bytes]:
        yield b"["
        for _ in range(5 * 64):
            yield b" " * (16 * 1024)
        yield b"]"

    headers = {"content-type": "application/json"}
    api.call("POST", "/v1/decisions", "ingest", expect=413, content=chunks(), headers=headers)


def test_a_batch_over_10000_items_gets_413_and_writes_nothing(api: Api) -> None:
    """A batch of 10,001 decisions or outcomes gets 413 with the envelope and records none of them."""
    batch = _big_batch("big", 10_001)
    assert len(json.dumps(batch)) < 4 * MiB  # the batch length, not the body size, is what is over
    api.call("POST", "/v1/decisions", "ingest", expect=413, json=batch)
    outcomes = [outcome(f"big-{i}") for i in range(10_001)]
    api.call("POST", "/v1/outcomes", "ingest", expect=413, json=outcomes)
    changed = [dict(d, verdict="escalate") for d in batch[:3]]
    api.ok("POST", "/v1/decisions", "ingest", json=changed)
    assert (
        len(api.ok("POST", "/v1/decisions", "ingest", json=_big_batch("edge", 10_000))["results"]) == 10_000
    )


def test_unknown_routes_and_ids_get_json_404(api: Api) -> None:
    """An unknown route, slice id or kill switch id gets a JSON 404 envelope."""
    api.call("GET", "/v1/nothing-here", "admin", expect=404)
    api.call("GET", "/nothing", None, expect=404)
    api.call("GET", "/v1/slices/sl_nope", "admin", expect=404)
    api.call("POST", "/v1/slices/sl_nope/rollback", "admin", expect=404, json={"reason": "x"})
    api.call("POST", "/v1/kill-switches/ks_nope/deactivate", "admin", expect=404, json={"reason": "x"})


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/v1/slices", {"GET", "POST"}),
        ("GET", "/v1/decisions", {"POST"}),
        ("PATCH", "/v1/policy", {"GET", "PUT"}),
        ("DELETE", "/v1/kill-switches", {"GET", "POST"}),
    ],
)
def test_a_wrong_method_gets_json_405_listing_the_allowed_methods(
    api: Api, method: str, path: str, allowed: set[str]
) -> None:
    """A wrong method gets a JSON 405 envelope whose Allow header lists every method the path supports."""
    response = api.call(method, path, "admin", expect=405)
    listed = {m.strip() for m in response.headers.get("allow", "").split(",") if m.strip()}
    assert allowed <= listed, response.headers.get("allow")


# --- the evaluator loop and a clean stop -----------------------------------------------------------------

CLEAN_REVIEWS = 93  # DESIGN §5: with the default sequential policy, promotion needs at least 93


@dataclass
class Evaluated:
    server: Server
    admin: str
    slice_id: str


@pytest.fixture(scope="module")
def evaluated(
    tmp_path_factory: pytest.TempPathFactory, module_databases: Callable[[], str]
) -> Iterator[Evaluated]:
    """A server with --evaluate-every 1 over a canary started 8 days ago (virtual time), 93 clean reviews."""
    tmp = tmp_path_factory.mktemp("evaluator")
    db_url = module_databases()
    cli = Cli(tmp, db_url)
    cli.now = datetime.now(UTC) - timedelta(days=8)
    admin = cli.json("init")["token"]
    sid = cli.json("slice", "create", "--scope", "tenant=evalco")["id"]
    cli.run("canary", "start", sid, "--signed-off-by", "lead", "--reason", "drill")
    at = iso(cli.now)
    rows = [decision(f"ev-{i}", tenant="evalco", decided_at=at) for i in range(CLEAN_REVIEWS)]
    assert all(r["execute"] for r in cli.json("ingest", "decisions", cli.jsonl(rows))["results"])
    reviews = [outcome(f"ev-{i}", observed_at=at) for i in range(CLEAN_REVIEWS)]
    assert cli.json("ingest", "outcomes", cli.jsonl(reviews))["actions"] == []
    server = start_server(db_url, tmp, evaluate_every=1)
    try:
        yield Evaluated(server, admin, sid)
    finally:
        stop_server(server)


def test_the_serve_loop_promotes_a_ready_canary_without_anyone_calling_evaluate(evaluated: Evaluated) -> None:
    """`tether serve --evaluate-every 1` promotes a ready canary on its own, as the system."""
    headers = {"Authorization": f"Bearer {evaluated.admin}"}
    url = f"{evaluated.server.url}/v1/slices/{evaluated.slice_id}"
    deadline, shown = time.monotonic() + 15, {}
    while time.monotonic() < deadline:
        shown = httpx.get(url, headers=headers, timeout=10).json()
        if shown["state"] == "active":
            break
        time.sleep(0.25)
    assert shown["state"] == "active", shown
    params = {"slice_id": evaluated.slice_id, "type": "canary.promoted"}
    audit = httpx.get(f"{evaluated.server.url}/v1/audit", headers=headers, params=params, timeout=10)
    [event] = audit.json()["events"]
    assert event["actor"]["type"] == "system" and event["payload"]["forced"] is False


def test_sigterm_stops_the_server_cleanly(evaluated: Evaluated) -> None:
    """SIGTERM makes `tether serve` (evaluator loop running) finish its shutdown and exit within 10 s."""
    started = time.monotonic()
    code = stop_server(evaluated.server)
    log = evaluated.server.log_text()
    assert code in CLEAN_EXIT, (code, log)
    assert time.monotonic() - started < STOP_WITHIN
    assert "Application shutdown complete" in log and "Traceback" not in log, log
    with pytest.raises(httpx.TransportError):
        httpx.get(evaluated.server.url + "/healthz", timeout=1)


# --- schemathesis ----------------------------------------------------------------------------------------

SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# positive_data_acceptance is left out: it demands a 2xx for every body the schema allows, while DESIGN
# §4 and §7 require a 4xx for schema-shaped bodies the domain refuses (an outcome naming no recorded
# decision, an empty tenant, a canary start without sign-off, a policy change with no field, a timestamp
# without a zone).
EXCLUDED_CHECKS = "positive_data_acceptance"
# One worker: on CPython 3.11, ast.parse in several threads at once (hypothesis describing lambdas)
# can fail with "AST constructor recursion depth mismatch" inside schemathesis itself.


@pytest.fixture(scope="module")
def schemathesis_report(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[int, dict[str, Any], str]]:
    """One bounded schemathesis run (all default checks but one) against a server of its own."""
    tmp = tmp_path_factory.mktemp("schemathesis")
    db_url = f"sqlite:///{tmp}/tether.db"
    admin = Cli(tmp, db_url).json("init")["token"]
    server = start_server(db_url, tmp)
    report = tmp / "report.json"
    cmd = [
        str(SCHEMATHESIS), "run", f"{server.url}/openapi.json",
        "--header", f"Authorization: Bearer {admin}",
        "--max-examples", "5", "--seed", "1", "--workers", "1", "--request-timeout", "20",
        "--exclude-checks", EXCLUDED_CHECKS,
        "--report", "json", "--report-json-path", str(report),
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, cwd=tmp)
        yield proc.returncode, json.loads(report.read_text()), proc.stdout[-6000:]
    finally:
        assert stop_server(server) in CLEAN_EXIT, server.log_text()[-3000:]


def test_schemathesis_finds_no_server_error(schemathesis_report: tuple[int, dict[str, Any], str]) -> None:
    """Generated requests of every operation in /openapi.json never get a 5xx nor break the run."""
    _, report, output = schemathesis_report
    codes = {f["code"] for f in report["failures"]}
    assert not codes & {"ST101", "ST102"}, output
    assert report["errors"] == [], output
    assert report["operations"]["tested"] == report["operations"]["selected"] >= len(V1_PATHS)


def test_schemathesis_default_checks_pass(schemathesis_report: tuple[int, dict[str, Any], str]) -> None:
    """The API conforms to its own OpenAPI document: statuses, bodies, headers (schemathesis exits 0)."""
    code, report, output = schemathesis_report
    summary = [(f["code"], f["title"], f["operations"]) for f in report["failures"]]
    assert code == 0 and not summary, f"{summary}\n{output}"
