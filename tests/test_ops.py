"""Real `tether serve` processes: Prometheus metrics, signed webhooks, JSON logs, §9 over HTTP."""

from __future__ import annotations

import functools
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import Cli, decision, outcome
from serving import Server, free_port, start_server
from tether.bootstrap import build
from tether.config import Settings
from tether.services import audit, kills, lifecycle, queries, setup, tokens, webhooks
from tether.services.context import Context
from tether.store.sql import AuditFilter

ARRIVE_WITHIN = 15.0  # seconds for a due webhook delivery to reach the receiver
EVENT_KEYS = {"seq", "at", "type", "actor", "slice_id", "scope", "payload", "prev_hash", "hash"}
FAST_WEBHOOKS = {"TETHER_WEBHOOK_EVERY": "0.2", "TETHER_WEBHOOK_BACKOFF_SECONDS": "0.2"}
T = TypeVar("T")


# --- helpers: waiting, a real server process, a real webhook receiver ------------------------------------


def wait_for(what: str, check: Callable[[], T | None], within: float = ARRIVE_WITHIN) -> T:
    """Poll `check` until it returns something truthy, or fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    at: float
    verified: bool

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    """A webhook endpoint on 127.0.0.1 that verifies X-Tether-Signature and records every post.

    It answers 401 to a bad signature, `fail_status` to its first `fail_first` posts (or to all when
    `always_fail`), and 200 otherwise. Not listening until `start()`: a receiver that is down.
    """

    secret: str
    port: int = field(default_factory=free_port)
    fail_first: int = 0
    always_fail: bool = False
    fail_status: int = 503
    got: list[Received] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.got)

    def types(self) -> list[str]:
        return [r.event["type"] for r in self.received()]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                expected = "sha256=" + hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                verified = hmac.compare_digest(self.headers.get("X-Tether-Signature", ""), expected)
                with receiver._lock:
                    receiver.got.append(Received(body, dict(self.headers), time.monotonic(), verified))
                    count = len(receiver.got)
                failing = receiver.always_fail or count <= receiver.fail_first
                self.send_response(receiver.fail_status if failing else 200 if verified else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


# --- fixtures -------------------------------------------------------------------------------------------


def library(db_url: str) -> Context:
    """The library on the server's database, on the system clock like the server."""
    ctx = build(Settings(database_url=db_url, actor="tester"))
    setup.init(ctx)
    return ctx


@pytest.fixture
def lib(db_url: str) -> Iterator[Context]:
    ctx = library(db_url)
    yield ctx
    ctx.db.dispose()


@pytest.fixture
def servers(tmp_path: Path, db_url: str) -> Iterator[Callable[..., Server]]:
    """Starts servers on this test's database; every one is stopped at teardown."""
    started: list[Server] = []

    def start(**kw: Any) -> Server:
        server = start_server(db_url, tmp_path, **kw)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(secret: str, **kw: Any) -> Receiver:
        receiver = Receiver(secret, **kw)
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.stop()


SHARED_WEBHOOKS = {**FAST_WEBHOOKS, "TETHER_WEBHOOK_MAX_ATTEMPTS": "5"}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, module_db_url: str) -> Iterator[tuple[Server, Context]]:
    """One server for the module (JSON logs, fast webhooks, 5 tries) and the library on its database."""
    tmp = tmp_path_factory.mktemp("shared")
    db_url = module_db_url
    ctx = library(db_url)
    server = start_server(db_url, tmp, log_format="json", env=SHARED_WEBHOOKS)
    yield server, ctx
    server.stop()
    ctx.db.dispose()


@pytest.fixture
def subscribe(shared: tuple[Server, Context]) -> Iterator[Callable[[Receiver, list[str]], str]]:
    """Adds webhooks on the shared server for one test, and removes them after it; returns the id."""
    _, ctx = shared
    made: list[str] = []

    def add(receiver: Receiver, events: list[str]) -> str:
        made.append(webhooks.add(ctx, receiver.url, events, receiver.secret)["id"])
        return made[-1]

    yield add
    live = {w["id"] for w in webhooks.list_webhooks(ctx)}
    for hook_id in made:
        if hook_id in live:  # a test may have removed its own already
            webhooks.remove(ctx, hook_id)


def bearer(ctx: Context, role: str) -> dict[str, str]:
    _, secret = tokens.create_token(ctx, role, name=f"test {role}")
    return {"Authorization": f"Bearer {secret}"}


def canary(ctx: Context, scope: str) -> str:
    s = lifecycle.create_slice(ctx, scope)
    lifecycle.start_canary(ctx, s.id, signed_off_by="ana", reason="pilot")
    return s.id


def outbox(ctx: Context, status: str | None = None, hook: str | None = None) -> list[dict[str, Any]]:
    """Deliveries, optionally only those of one webhook."""
    return [d for d in webhooks.deliveries(ctx, status) if hook is None or d["webhook_id"] == hook]


def event_of(ctx: Context, seq: int) -> dict[str, Any]:
    (found,) = [e for e in audit.list_events(ctx, AuditFilter()) if e.seq == seq]
    return dict(found.to_dict())


# --- Prometheus /metrics ----------------------------------------------------------------------------------


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: Server) -> Samples:
    response = httpx.get(server.url + "/metrics", timeout=5.0)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def series(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (n, labels) in samples if n == name]


def test_metrics_expose_slices_by_id_and_state_gate_answers_transitions_latency_evaluator_and_outbox(
    lib: Context, servers: Callable[..., Server]
) -> None:
    """/metrics shows per-slice precision, reviews, missed TPs and state by slice_id and state, gate answers
    by mode, promotions and rollbacks, a latency histogram, the evaluator's age and the outbox backlog."""
    dead_end = f"http://127.0.0.1:{free_port()}/hook"
    webhooks.add(lib, dead_end, ["slice.created"], "s" * 32)
    server = servers(
        evaluate_every=0.5,
        env={"TETHER_WEBHOOK_EVERY": "0.2", "TETHER_WEBHOOK_BACKOFF_SECONDS": "600"},
    )
    a, b, c = (canary(lib, f"tenant=metrics-{x}") for x in "abc")
    admin = bearer(lib, "admin")
    before = scrape(server)
    http = httpx.Client(base_url=server.url, headers=admin, timeout=10.0)
    sent = [decision(f"a{i}", tenant="metrics-a") for i in range(10)]
    sent += [decision(f"b{i}", tenant="metrics-b") for i in range(3)]
    sent += [decision(f"c{i}", tenant="metrics-c") for i in range(2)]
    sent += [decision(f"z{i}", tenant="metrics-zeta") for i in range(4)]
    results = http.post("/v1/decisions", json=sent).json()["results"]
    assert all("review" in r for r in results)
    reviews = [outcome(f"a{i}") for i in range(9)] + [outcome("a9", "benign_positive")]
    assert http.post("/v1/outcomes", json=reviews).json()["actions"] == []
    rolled = http.post("/v1/outcomes", json=[outcome("c0", "true_positive", "incident")]).json()
    assert [x["slice_id"] for x in rolled["actions"]] == [c]
    assert http.post(f"/v1/slices/{b}/promote", json={"reason": "ready"}).status_code == 200
    (killed,) = http.post("/v1/decisions", json=[decision("c9", tenant="metrics-c")]).json()["results"]
    assert killed["mode"] == "killed"
    assert http.get(f"/v1/slices/{a}").status_code == 200

    def evaluated() -> Samples | None:
        found = scrape(server)
        return found if ("tether_evaluator_last_run_age_seconds", frozenset()) in found else None

    after = wait_for("the evaluator's first cycle in /metrics", evaluated)
    assert value(after, "tether_slice_precision", slice_id=a, state="canary") == pytest.approx(0.9)
    assert value(after, "tether_slice_reviews", slice_id=a, state="canary") == 10
    assert value(after, "tether_slice_missed_tp", slice_id=c, state="rolled_back") == 1
    assert value(after, "tether_slice_missed_tp", slice_id=a, state="canary") == 0
    for slice_id, state in ((a, "canary"), (b, "active"), (c, "rolled_back")):
        assert value(after, "tether_slice_state", slice_id=slice_id, state=state) == 1
    for name in (
        "tether_slice_precision",
        "tether_slice_reviews",
        "tether_slice_missed_tp",
        "tether_slice_state",
    ):
        found = series(after, name)
        assert found and all(set(labels) == {"slice_id", "state"} for labels in found), (name, found)
    every_label_value = [v for (_, labels) in after for _, v in labels]
    assert not [v for v in every_label_value if "metrics-" in v or "tenant=" in v]  # never raw scope values

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    answers = {
        m: delta("tether_gate_answers_total", mode=m) for m in ("canary", "shadow", "killed", "active")
    }
    assert answers == {"canary": 15, "shadow": 4, "killed": 1, "active": 0}
    assert delta("tether_transitions", kind="promotion") == 1
    assert delta("tether_transitions", kind="rollback") == 1

    timed = {"method": "POST", "route": "/v1/decisions", "status": "200"}
    assert delta("tether_request_seconds_count", **timed) == 2
    assert value(after, "tether_request_seconds_bucket", le="+Inf", **timed) >= 2
    routes = {labels["route"] for labels in series(after, "tether_request_seconds_count")}
    assert "/v1/slices/{slice_id}" in routes and not [r for r in routes if a in r]
    age = value(after, "tether_evaluator_last_run_age_seconds")
    assert 0 <= age < 10
    assert value(after, "tether_outbox_backlog") == 3  # three slice.created deliveries, receiver unreachable


# --- structured JSON logs ---------------------------------------------------------------------------------


def log_lines(server: Server) -> list[dict[str, Any]]:
    lines = server.stderr_lines()
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"a stderr line is not JSON: {line!r}") from None
    return parsed


def lines_with(server: Server, rid: str) -> list[dict[str, Any]]:
    return [line for line in log_lines(server) if line.get("request_id") == rid]


def test_json_logs_carry_the_callers_request_id_and_the_response_echoes_it(
    shared: tuple[Server, Context],
) -> None:
    """With X-Request-ID: abc123 the response echoes it and the request's JSON log line carries it."""
    server, ctx = shared
    response = httpx.get(
        server.url + "/v1/slices", headers={"X-Request-ID": "abc123", **bearer(ctx, "viewer")}, timeout=5.0
    )
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == "abc123"
    (line,) = wait_for("a log line with request_id abc123", lambda: lines_with(server, "abc123"))
    assert line["logger"] == "tether.access"
    assert (line["message"], line["status"], line["level"]) == ("GET /v1/slices 200", 200, "info")
    assert isinstance(line["duration_ms"], int | float) and line["time"].endswith("Z")
    access = [x for x in log_lines(server) if x["logger"] == "tether.access"]
    assert access and all(x["request_id"] for x in access)  # every request line names its request


def test_a_request_without_an_id_gets_a_generated_one_in_header_and_log(
    shared: tuple[Server, Context],
) -> None:
    """Without X-Request-ID each request gets a fresh id, echoed in the response and on its log line."""
    server, _ = shared
    ids = []
    for _ in range(2):
        response = httpx.get(server.url + "/healthz", timeout=5.0)
        rid = response.headers.get("X-Request-ID", "")
        assert len(rid) >= 8, response.headers
        ids.append(rid)
    assert ids[0] != ids[1]
    for rid in ids:
        (line,) = wait_for(f"a log line with request_id {rid}", functools.partial(lines_with, server, rid))
        assert (line["logger"], line["message"]) == ("tether.access", "GET /healthz 200")


# --- §9 over HTTP -----------------------------------------------------------------------------------------


def test_http_recall_lists_the_rolled_back_attempts_unreviewed_closures(
    shared: tuple[Server, Context],
) -> None:
    """GET /v1/slices/{id}/recall answers the library's recall list: executed closes with no outcome."""
    server, ctx = shared
    slice_id = canary(ctx, "tenant=recall")
    ingest = httpx.Client(base_url=server.url, headers=bearer(ctx, "ingest"), timeout=10.0)
    sent = [decision(f"r{i}", tenant="recall") for i in range(5)]
    sent.append(decision("r-esc", tenant="recall", verdict="escalate"))
    assert ingest.post("/v1/decisions", json=sent).status_code == 200
    assert ingest.post("/v1/outcomes", json=[outcome("r0")]).status_code == 200
    rollback = httpx.post(
        f"{server.url}/v1/slices/{slice_id}/rollback",
        json={"reason": "drill"},
        headers=bearer(ctx, "operator"),
    )
    assert rollback.status_code == 200
    viewer = bearer(ctx, "viewer")
    recalled = httpx.get(f"{server.url}/v1/slices/{slice_id}/recall", headers=viewer, timeout=5.0).json()
    assert recalled == queries.recall(ctx, slice_id)
    assert recalled["state"] == "rolled_back"
    assert sorted(c["decision_id"] for c in recalled["closures"]) == ["d-r1", "d-r2", "d-r3", "d-r4"]
    assert httpx.get(f"{server.url}/v1/slices/sl_nope/recall", headers=viewer).status_code == 404


def test_http_cooldown_override_needs_an_admin(shared: tuple[Server, Context]) -> None:
    """Within the cool-down a canary start is 409; an operator's override is 403, an admin's starts it."""
    server, ctx = shared
    slice_id = canary(ctx, "tenant=cool")
    lifecycle.roll_back(ctx, slice_id, "drill")
    lifecycle.reset(ctx, slice_id, "drill over")
    url = f"{server.url}/v1/slices/{slice_id}/canary"
    body = {"signed_off_by": "ana", "reason": "fixed"}
    operator, admin = bearer(ctx, "operator"), bearer(ctx, "admin")
    refused = httpx.post(url, json=body, headers=operator, timeout=5.0)
    assert refused.status_code == 409 and "cool-down" in refused.text
    override = {**body, "override_cooldown": True}
    assert httpx.post(url, json=override, headers=operator, timeout=5.0).status_code == 403
    started = httpx.post(url, json=override, headers=admin, timeout=5.0)
    assert started.status_code == 200 and started.json()["state"] == "canary"
    event = audit.list_events(ctx, AuditFilter(slice_id=slice_id, type="canary.started"))[-1]
    assert event.payload["cooldown_overridden"] is True and event.actor["type"] == "token"


# --- webhooks ---------------------------------------------------------------------------------------------


SECRET = "webhook-secret-0123456789"


def test_an_event_committed_with_no_server_waits_in_the_outbox_and_is_delivered_signed(
    lib: Context, tmp_path: Path, db_url: str, servers: Callable[..., Server], receivers: Any
) -> None:
    """A CLI event with no server running leaves a pending delivery; the server then posts it, signed."""
    cli = Cli(tmp_path, db_url)
    receiver = receivers(SECRET).start()
    hook = cli.json(
        "webhook", "add", receiver.url, "--events", "slice.created,canary.started", "--secret", SECRET
    )
    created = cli.json("slice", "create", "--scope", "tenant=acme")
    (pending,) = cli.json("webhook", "deliveries")["deliveries"]
    (event,) = audit.list_events(lib, AuditFilter(type="slice.created"))
    assert (pending["webhook_id"], pending["event_seq"], pending["status"]) == (
        hook["id"],
        event.seq,
        "pending",
    )
    assert pending["attempts"] == 0
    servers(env=FAST_WEBHOOKS)
    (got,) = wait_for("the delivery", receiver.received)
    assert got.verified
    signature = "sha256=" + hmac.new(SECRET.encode(), got.body, hashlib.sha256).hexdigest()
    assert got.headers["X-Tether-Signature"] == signature
    assert got.headers["Content-Type"] == "application/json"
    body = got.event
    assert set(body) == EVENT_KEYS | {"text"}
    assert {k: body[k] for k in EVENT_KEYS} == event_of(lib, event.seq)
    assert body["slice_id"] == created["id"]
    assert "slice.created" in body["text"] and "tenant=acme" in body["text"]
    (done,) = wait_for("the delivery marked delivered", lambda: outbox(lib, "delivered"))
    assert done["attempts"] == 1 and done["delivered_at"] is not None


def test_a_server_killed_after_the_commit_delivers_after_restart(
    lib: Context, servers: Callable[..., Server], receivers: Any
) -> None:
    """kill -9 between the event's commit and its delivery loses nothing: the restarted server delivers it."""
    receiver = receivers(SECRET).start()
    webhooks.add(lib, receiver.url, ["kill_switch.activated"], SECRET)
    operator = bearer(lib, "operator")
    slow = servers(env={"TETHER_WEBHOOK_EVERY": "60"})  # no delivery round before the kill
    made = httpx.post(
        slow.url + "/v1/kill-switches", json={"scope": "tenant=acme", "reason": "drill"}, headers=operator
    )
    assert made.status_code == 201
    slow.kill9()
    (pending,) = outbox(lib, "pending")
    assert pending["attempts"] == 0 and receiver.received() == []
    servers(env=FAST_WEBHOOKS)
    (got,) = wait_for("the delivery after restart", receiver.received)
    assert got.verified and got.event["type"] == "kill_switch.activated"
    assert got.event["seq"] == pending["event_seq"]
    assert got.event["payload"]["kill_switch"]["id"] == made.json()["id"]
    wait_for("the delivery marked delivered", lambda: outbox(lib, "delivered"))
    assert len(receiver.received()) == 1


def test_failed_deliveries_are_retried_with_exponential_backoff_until_the_receiver_answers(
    shared: tuple[Server, Context], subscribe: Any, receivers: Any
) -> None:
    """A receiver that is down gets the delivery once up; a failing one gets tries 0.2, 0.4, 0.8 s apart."""
    _, lib = shared
    down = receivers(SECRET)  # not listening yet
    flaky = receivers("flaky-secret-0000000001", fail_first=3).start()
    down_hook = subscribe(down, ["kill_switch.activated"])
    flaky_hook = subscribe(flaky, ["kill_switch.activated"])
    kills.activate(lib, "tenant=backoff", "drill")
    (failing,) = wait_for(
        "two failed tries to the receiver that is down",
        lambda: [d for d in outbox(lib, "pending", down_hook) if d["attempts"] >= 2 and d["last_error"]],
    )
    assert failing["delivered_at"] is None
    down.start()
    (done,) = wait_for("the delivery once the receiver is up", lambda: outbox(lib, "delivered", down_hook))
    (got,) = down.received()
    assert got.verified and got.event["type"] == "kill_switch.activated"
    assert done["attempts"] >= 3 and done["last_error"] is None

    tries = wait_for("four tries at the flaky receiver", lambda: at_least(flaky.received(), 4))
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(tries)]
    for gap, backoff in zip(gaps, (0.2, 0.4, 0.8), strict=True):
        assert gap >= backoff - 0.05, gaps
    assert gaps[2] > gaps[0] + 0.3, gaps  # the wait grows: not a fixed retry interval
    assert len({t.body for t in tries}) == 1 and all(t.verified for t in tries)
    assert tries[0].body == got.body  # the same event, whichever webhook it goes to
    (flaky_done,) = wait_for(
        "the flaky delivery marked delivered", lambda: outbox(lib, "delivered", flaky_hook)
    )
    assert flaky_done["attempts"] == 4


def at_least(items: list[T], n: int) -> list[T] | None:
    return items if len(items) >= n else None


def test_a_delivery_is_dead_lettered_after_max_attempts(
    shared: tuple[Server, Context], subscribe: Any, receivers: Any, tmp_path: Path
) -> None:
    """After TETHER_WEBHOOK_MAX_ATTEMPTS (5) failed tries a delivery is dead: `deliveries --status dead`."""
    _, lib = shared
    receiver = receivers(SECRET, always_fail=True, fail_status=500).start()
    hook = subscribe(receiver, ["kill_switch.activated"])
    kills.activate(lib, "tenant=dead", "drill")
    wait_for("a dead letter", lambda: outbox(lib, "dead", hook), within=30)
    cli = Cli(tmp_path, lib.db.url)
    (dead,) = [
        d
        for d in cli.json("webhook", "deliveries", "--status", "dead")["deliveries"]
        if d["webhook_id"] == hook
    ]
    assert (dead["status"], dead["attempts"], dead["last_error"]) == ("dead", 5, "HTTP 500")
    assert outbox(lib, "pending", hook) == []
    time.sleep(0.5)  # a dead letter is not tried again
    assert len(receiver.received()) == 5


def test_only_subscribed_event_types_are_delivered_and_a_removed_webhook_gets_no_more(
    shared: tuple[Server, Context], subscribe: Any, receivers: Any
) -> None:
    """Each webhook gets only its event types, signed with its own secret; once removed, nothing new."""
    _, lib = shared
    kill_only = receivers("kill-only-secret-000001").start()
    lifecycle_only = receivers("lifecycle-secret-000002").start()
    everything = receivers("everything-secret-00003").start()
    kill_hook = subscribe(kill_only, ["kill_switch.activated"])
    lifecycle_hook = subscribe(lifecycle_only, ["slice.created", "canary.started"])
    all_hook = subscribe(everything, ["*"])
    canary(lib, "tenant=subscribed")
    kills.activate(lib, "tenant=subscribed-beta", "drill")
    tokens.create_token(lib, "viewer", name="audited as token.created")
    wait_for("four events at the catch-all webhook", lambda: len(everything.received()) >= 4)
    wait_for("one event at the kill webhook", kill_only.received)
    wait_for("two events at the lifecycle webhook", lambda: len(lifecycle_only.received()) >= 2)
    assert kill_only.types() == ["kill_switch.activated"]
    assert lifecycle_only.types() == ["slice.created", "canary.started"]
    assert sorted(everything.types()) == sorted(
        ["slice.created", "canary.started", "kill_switch.activated", "token.created"]
    )
    assert all(r.verified for x in (kill_only, lifecycle_only, everything) for r in x.received())
    counts = [len(outbox(lib, hook=h)) for h in (kill_hook, lifecycle_hook, all_hook)]
    assert counts == [1, 2, 4]  # one row per subscribed (event, webhook) pair, nothing else
    webhooks.remove(lib, kill_hook)
    kills.activate(lib, "tenant=subscribed-gamma", "second drill")
    wait_for("the second kill at the catch-all webhook", lambda: len(everything.received()) >= 5)
    (only,) = outbox(lib, hook=kill_hook)  # none for the second kill
    assert only["status"] == "delivered"
    time.sleep(0.5)
    assert kill_only.types() == ["kill_switch.activated"]


def test_removing_a_webhook_stops_its_pending_deliveries(
    lib: Context, tmp_path: Path, db_url: str, servers: Callable[..., Server], receivers: Any
) -> None:
    """A delivery still pending when its webhook is removed (`tether webhook remove`) is never sent."""
    removed = receivers("removed-secret-00000001").start()
    kept = receivers("kept-secret-00000000002").start()
    gone = webhooks.add(lib, removed.url, ["*"], removed.secret)
    webhooks.add(lib, kept.url, ["*"], kept.secret)
    kills.activate(lib, "tenant=acme", "drill while no server runs")
    assert len(outbox(lib, "pending")) == 2
    Cli(tmp_path, db_url).run("webhook", "remove", gone["id"])
    assert [w["id"] for w in webhooks.list_webhooks(lib)] != [] and gone["id"] not in {
        w["id"] for w in webhooks.list_webhooks(lib)
    }
    servers(env=FAST_WEBHOOKS)
    wait_for("the kept webhook's delivery", kept.received)
    time.sleep(0.6)  # three more delivery rounds
    assert removed.received() == [], "a removed webhook still got its pending delivery"
