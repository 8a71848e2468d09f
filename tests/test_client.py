"""TetherClient against a real `tether serve`, and against a broken network: it fails closed, never raises."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from conftest import Cli, decision, outcome
from serving import Server, free_port, start_server, stop_server
from tether.client import (
    Answer,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    OutcomesReceipt,
    TetherClient,
    TooLarge,
    Unauthorized,
)

QUICK = 2.0  # seconds: a client that fails closed must not keep the orchestrator waiting


@dataclass
class Live:
    """A running server, a slice in canary for acme and one for initech, and two ingest tokens."""

    server: Server
    admin: str
    ingest: str
    acme_ingest: str
    acme_slice: str
    initech_slice: str

    def client(self, token: str | None = None, timeout: float = 10.0) -> TetherClient:
        return TetherClient(self.server.url, token or self.ingest, timeout=timeout)

    def decisions_of(self, slice_id: str) -> int:
        """The slice's evidence counter of recorded decisions, read with the admin token."""
        headers = {"Authorization": f"Bearer {self.admin}"}
        response = httpx.get(f"{self.server.url}/v1/slices/{slice_id}", headers=headers, timeout=30)
        return int(response.json()["evidence"]["decisions"])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, module_db_url: str) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("client")
    db_url = module_db_url
    admin = Cli(tmp, db_url).json("init")["token"]
    server = start_server(db_url, tmp)
    try:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {admin}"}) as http:

            def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
                response = http.post(path, json=body, timeout=30)
                assert response.status_code in (200, 201), response.text
                return dict(response.json())

            def canary(scope: str) -> str:
                sid = str(post("/v1/slices", {"scope": scope})["id"])
                post(f"/v1/slices/{sid}/canary", {"signed_off_by": "lead", "reason": "pilot"})
                return sid

            yield Live(
                server,
                admin=admin,
                ingest=post("/v1/tokens", {"role": "ingest", "name": "orchestrator"})["secret"],
                acme_ingest=post("/v1/tokens", {"role": "ingest", "tenants": ["acme"]})["secret"],
                acme_slice=canary("tenant=acme"),
                initech_slice=canary("tenant=initech"),
            )
    finally:
        stop_server(server)


def alert(tenant: str) -> dict[str, Any]:
    return {"tenant": tenant, "severity": "high", "rule_family": "phishing", "data_source": "o365"}


# --- against a real server -------------------------------------------------------------------------------


def test_decide_one_decision_returns_one_answer(live: Live) -> None:
    """decide() with one dict returns one Answer: a close in canary is executed, naming its slice."""
    answer = live.client().decide(decision("one-1"))
    assert isinstance(answer, Answer)
    assert answer == Answer("canary", True, (live.acme_slice,), answer.reason, "d-one-1")
    assert answer.reason


def test_decide_a_list_returns_answers_in_order_and_executes_only_a_close_in_canary(live: Live) -> None:
    """decide() with a list returns one Answer per decision, in order; execute only for a close in canary."""
    batch = [
        decision("list-1", verdict="escalate"),
        decision("list-2", tenant="newco"),
        decision("list-3"),
        decision("list-4", tenant="newco", verdict="escalate"),
    ]
    answers = live.client().decide(batch)
    assert [a.decision_id for a in answers] == ["d-list-1", "d-list-2", "d-list-3", "d-list-4"]
    assert [(a.mode, a.execute) for a in answers] == [
        ("canary", False),
        ("shadow", False),
        ("canary", True),
        ("shadow", False),
    ]


def test_gate_answers_without_recording(live: Live) -> None:
    """gate() answers the mode an alert would get and whether a close would run, and records nothing."""
    client = live.client()
    before = live.decisions_of(live.acme_slice)
    asked = client.gate(alert("acme"))
    assert (asked.mode, asked.execute, asked.slice_ids, asked.decision_id) == (
        "canary",
        True,
        (live.acme_slice,),
        None,
    )
    assert client.gate(alert("newco")).execute is False
    assert live.decisions_of(live.acme_slice) == before


def test_record_outcomes_returns_accepted_and_the_rollbacks_it_triggered(live: Live) -> None:
    """record_outcomes() returns how many were accepted and the rollback a missed true positive triggers."""
    client = live.client()
    assert client.decide(decision("rb-1", tenant="initech")).execute is True
    clean = client.record_outcomes([outcome("rb-1")])
    assert clean == OutcomesReceipt(1, [], None)
    receipt = client.record_outcomes([outcome("rb-1", "true_positive")])
    assert receipt.accepted == 1 and receipt.reason is None
    [action] = receipt.actions
    assert action["action"] == "rollback" and action["slice_id"] == live.initech_slice
    after = client.decide(decision("rb-2", tenant="initech"))
    assert (after.mode, after.execute) == ("killed", False)


def test_a_bad_token_raises_unauthorized(live: Live) -> None:
    """A 401 raises Unauthorized from every call: a wrong token is not a network failure."""
    client = TetherClient(live.server.url, "tth_wrong", timeout=10)
    with pytest.raises(Unauthorized) as caught:
        client.decide(decision("auth-1"))
    assert caught.value.status == 401
    with pytest.raises(Unauthorized):
        client.gate(alert("acme"))
    with pytest.raises(Unauthorized):
        client.record_outcomes([outcome("auth-1")])


def test_a_bad_decision_raises_bad_request_naming_field_and_index(live: Live) -> None:
    """A 422 raises BadRequest whose errors name the field and the item's index; none of the batch is kept."""
    client = live.client()
    with pytest.raises(BadRequest) as caught:
        client.decide([decision("bad-1"), decision("bad-2", colour="red")])
    [problem] = caught.value.errors
    assert caught.value.status == 422 and problem["index"] == 1 and "colour" in problem["loc"]
    with pytest.raises(BadRequest) as caught:
        client.record_outcomes([outcome("one-1"), outcome("never-decided")])
    assert caught.value.errors[0]["index"] == 1 and "decision_id" in caught.value.errors[0]["loc"]
    with pytest.raises(BadRequest) as caught:
        client.gate({**alert("acme"), "severity": "extreme"})
    assert "severity" in caught.value.errors[0]["loc"]
    assert client.decide(decision("bad-1", verdict="escalate")).decision_id == "d-bad-1"


def test_a_conflicting_replay_raises_conflict(live: Live) -> None:
    """The same decision_id with a different body raises Conflict; the same body returns the first answer."""
    client = live.client()
    first = client.decide(decision("rep-1"))
    assert client.decide(decision("rep-1")) == first
    with pytest.raises(Conflict) as caught:
        client.decide(decision("rep-1", verdict="escalate"))
    assert caught.value.status == 409 and caught.value.errors[0]["index"] == 0


def test_another_tenant_raises_forbidden(live: Live) -> None:
    """A token limited to acme deciding, asking or reporting for another tenant raises Forbidden."""
    client = live.client(live.acme_ingest)
    with pytest.raises(Forbidden) as caught:
        client.decide(decision("other-1", tenant="initech"))
    assert caught.value.status == 403
    with pytest.raises(Forbidden):
        client.gate(alert("initech"))
    live.client().decide(decision("other-2", tenant="initech", verdict="escalate"))
    with pytest.raises(Forbidden):
        client.record_outcomes([outcome("other-2")])


def test_a_wrong_base_path_raises_not_found_and_a_huge_batch_raises_too_large(live: Live) -> None:
    """A 404 raises NotFound and a 413 (batch over 10,000) raises TooLarge."""
    with pytest.raises(NotFound):
        TetherClient(live.server.url + "/nowhere", live.ingest, timeout=10).decide(decision("nf-1"))
    with pytest.raises(TooLarge) as caught:
        live.client(timeout=30).decide([decision(f"huge-{i}", tenant="hugeco") for i in range(10_001)])
    assert caught.value.status == 413


# --- against a broken network ----------------------------------------------------------------------------


def assert_fails_closed(client: TetherClient, reason: str) -> None:
    """Every call returns quickly with a non-executing answer carrying `reason`, and none raises."""
    started = time.monotonic()
    one = client.decide(decision("down-1"))
    assert one == Answer("shadow", False, (), reason, "d-down-1")
    many = client.decide([decision("down-2"), decision("down-3", verdict="escalate")])
    assert [(a.decision_id, a.execute, a.reason) for a in many] == [
        ("d-down-2", False, reason),
        ("d-down-3", False, reason),
    ]
    asked = client.gate(alert("acme"))
    assert (asked.execute, asked.reason, asked.slice_ids) == (False, reason, ())
    assert client.record_outcomes([outcome("down-1")]) == OutcomesReceipt(0, [], reason)
    assert time.monotonic() - started < 4 * QUICK


def test_nothing_listening_means_unreachable_not_an_exception() -> None:
    """With nothing on the port, every call answers execute=False, reason "unreachable", and never raises."""
    client = TetherClient(f"http://127.0.0.1:{free_port()}", "tth_any", timeout=1.0)
    assert_fails_closed(client, "unreachable")


def test_a_server_that_never_answers_times_out_as_unreachable() -> None:
    """A server that accepts but never answers makes each call give up at its timeout with "unreachable"."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # the kernel completes the handshakes; nobody ever reads or writes
        client = TetherClient(f"http://127.0.0.1:{silent.getsockname()[1]}", "tth_any", timeout=0.5)
        started = time.monotonic()
        answer = client.decide(decision("slow-1"))
        assert time.monotonic() - started < QUICK
        assert (answer.execute, answer.reason) == (False, "unreachable")
        assert_fails_closed(client, "unreachable")


@contextmanager
def fake_tether(status: int, body: bytes, content_type: str = "application/json") -> Iterator[str]:
    """A tiny HTTP server standing in for a broken Tether or a proxy in front of it; yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (503, b'{"error": "overloaded", "errors": []}', "application/json"),
        (500, b"<html>Internal Server Error</html>", "text/html"),
        (502, b"", "text/plain"),
    ],
    ids=["503-json", "500-html", "502-empty"],
)
def test_a_5xx_means_error_not_an_exception(status: int, body: bytes, content_type: str) -> None:
    """A 5xx, whatever its body, makes every call answer execute=False with reason "error" and never raise."""
    with fake_tether(status, body, content_type) as url:
        assert_fails_closed(TetherClient(url, "tth_any", timeout=2.0), "error")


def test_a_200_with_invalid_json_means_error() -> None:
    """A 200 whose body is not JSON makes every call answer execute=False with reason "error"."""
    with fake_tether(200, b"<html>captive portal</html>", "text/html") as url:
        assert_fails_closed(TetherClient(url, "tth_any", timeout=2.0), "error")


@pytest.mark.parametrize(
    "body",
    [b"{}", b"[1, 2]", b'{"results": "yes"}', b'{"results": []}', b'{"results": [{"execute": true}]}'],
    ids=["empty-object", "list", "results-not-a-list", "no-results", "answer-without-mode"],
)
def test_a_200_that_is_not_tethers_answer_means_error(body: bytes) -> None:
    """A 200 with JSON of the wrong shape is no answer from Tether: calls answer "error" and never raise."""
    with fake_tether(200, body) as url:
        assert_fails_closed(TetherClient(url, "tth_any", timeout=2.0), "error")
