"""POST /v1/decisions against a real `tether serve`: the request the orchestrator sends all day, from a token
the server confirmed a moment ago, answers exactly what the generic route answers, and a revoked token
records nothing from its very next request, whichever process revoked it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from conftest import Cli, decision
from serving import Server, start_server, stop_server
from tether.bootstrap import build
from tether.config import Settings
from tether.services import tokens

JSON = {"content-type": "application/json"}
# Another spelling of the same content type: such a request takes the generic route.
GENERIC = {"content-type": "application/json; charset=utf-8"}


@dataclass
class Served:
    server: Server
    cli: Cli
    admin: str
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=60.0))

    def post(self, token: str, body: Any, headers: dict[str, str] = JSON) -> httpx.Response:
        """POST /v1/decisions with this body as JSON text, under these headers and the token."""
        content = httpx.Request("POST", "/", json=body).content
        auth = {"authorization": f"Bearer {token}"}
        return self.http.post(self.server.url + "/v1/decisions", content=content, headers=auth | headers)

    def token(self, role: str = "ingest", *tenants: str) -> tuple[str, str]:
        """A new token made with `tether token create`: its id and secret."""
        flags = [f for t in tenants for f in ("--tenant", t)]
        made = self.cli.json("token", "create", "--role", role, *flags)
        return str(made["token"]["id"]), str(made["secret"])

    def raw_both_ways(self, raw: bytes) -> list[httpx.Response]:
        """These bytes posted by the admin, just confirmed, under each content type: lane, then generic."""
        answers = []
        for headers in (JSON, GENERIC):
            self.warm(self.admin)
            auth = {"authorization": f"Bearer {self.admin}"}
            answers.append(
                self.http.post(self.server.url + "/v1/decisions", content=raw, headers=auth | headers)
            )
        return answers

    def warm(self, token: str) -> None:
        """A request on the generic route, so that the server has just confirmed this token."""
        assert self.http.get(self.server.url + "/v1/policy", headers={"authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, module_db_url: str) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("decisions")
    cli = Cli(tmp, module_db_url)
    admin = cli.json("init")["token"]
    server = start_server(module_db_url, tmp)
    out = Served(server, cli, admin)
    try:
        for body in ({"scope": "tenant=acme"},):
            made = out.http.post(
                server.url + "/v1/slices", json=body, headers={"authorization": f"Bearer {admin}"}
            ).json()
            out.http.post(
                f"{server.url}/v1/slices/{made['id']}/canary",
                json={"signed_off_by": "lead", "reason": "pilot"},
                headers={"authorization": f"Bearer {admin}"},
            ).raise_for_status()
        yield out
    finally:
        out.http.close()
        stop_server(server)


def _unauthorised(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json() == {"error": "unknown or revoked token", "errors": []}
    assert response.headers["www-authenticate"] == "Bearer"


def _recorded(served: Served, d: dict[str, Any]) -> bool:
    """Whether this decision's id is recorded: the same id with another body is then a replay conflict."""
    other = dict(d, alert_id=d["alert_id"] + "-other")
    status = served.post(served.admin, [other]).status_code
    assert status in (200, 409)
    return status == 409


def test_a_token_revoked_by_another_process_records_nothing_from_its_next_request(served: Served) -> None:
    """A revocation committed by another process acts at once on a token the server confirmed a moment ago."""
    token_id, secret = served.token()
    elsewhere = build(Settings(database_url=served.cli.db_url, actor="tester"))
    try:
        assert served.post(secret, [decision("other-rev-1")]).status_code == 200
        assert served.post(secret, [decision("other-rev-2")]).status_code == 200
        tokens.revoke_token(elsewhere, token_id)
        late = decision("other-rev-3")
        _unauthorised(served.post(secret, [late]))
        assert not _recorded(served, late)
        _unauthorised(served.post(secret, [decision("other-rev-4")]))
    finally:
        elsewhere.db.dispose()


def test_a_token_revoked_through_the_api_records_nothing_from_its_next_request(served: Served) -> None:
    """A revocation through the API acts on the very next decision of a token confirmed a moment ago."""
    token_id, secret = served.token()
    assert served.post(secret, [decision("api-rev-1")]).status_code == 200
    revoke = served.http.post(
        f"{served.server.url}/v1/tokens/{token_id}/revoke",
        headers={"authorization": f"Bearer {served.admin}"},
    )
    assert revoke.status_code == 200, revoke.text
    late = decision("api-rev-2")
    _unauthorised(served.post(secret, [late]))
    assert not _recorded(served, late)


def _pair(served: Served, token: str, body: Any) -> tuple[httpx.Response, httpx.Response]:
    """The same body sent twice, each time just after the server confirmed the token: once as the common
    request, once on the generic route."""
    served.warm(token)
    short = served.post(token, body)
    served.warm(token)
    generic = served.post(token, body, GENERIC)
    return short, generic


def _alike(short: httpx.Response, generic: httpx.Response) -> None:
    assert (short.status_code, short.content) == (generic.status_code, generic.content)
    for header in ("content-type", "content-length", "www-authenticate"):
        assert short.headers.get(header) == generic.headers.get(header), header


@pytest.mark.parametrize(
    "body",
    [
        [decision("alike-1")],
        [decision("alike-2"), decision("alike-3", verdict="escalate"), decision("alike-2")],
        [decision("alike-4", tenant="newco", severity=95, confidence=0.5, model_version="m1")],
        [decision("alike-5"), dict(decision("alike-6"), colour="red")],
        [decision("alike-7", decided_at="2026-11-27T10:15:00")],
        [decision("alike-8"), decision("alike-8", verdict="escalate")],
        [decision(f"alike-9-{i}") for i in range(10_001)],
        [],
        [decision("alike-10"), "d-1"],
        decision("alike-11"),
        [decision('alike-12 ü "q" \\ \t \u2028 ☃', tenant="ünïcode \u0001", rule_family="ph/ish")],
    ],
    ids=[
        "one",
        "replay-in-batch",
        "new-tenant",
        "unknown-field",
        "no-zone",
        "conflict-in-batch",
        "too-many",
        "empty",
        "not-an-object",
        "not-a-list",
        "escapes-and-unicode",
    ],
)
def test_the_common_request_answers_what_the_generic_route_answers(served: Served, body: Any) -> None:
    """Answers, replays and errors are the same bytes and headers whichever way the request is served."""
    short, generic = _pair(served, served.admin, body)
    _alike(short, generic)


def test_a_kill_switch_answer_and_a_refused_tenant_are_alike_both_ways(served: Served) -> None:
    """A killed answer names its switch, and a token limited to one tenant is refused another, both ways."""
    auth = {"authorization": f"Bearer {served.admin}"}
    kill = {"scope": "tenant=killco", "reason": "drill"}
    assert (
        served.http.post(served.server.url + "/v1/kill-switches", json=kill, headers=auth).status_code == 201
    )
    short, generic = _pair(served, served.admin, [decision("killed-1", tenant="killco")])
    _alike(short, generic)
    assert short.json()["results"][0]["mode"] == "killed" and short.json()["results"][0]["kill_switch_id"]
    _, limited = served.token("ingest", "acme")
    short, generic = _pair(served, limited, [decision("limited-1", tenant="globex")])
    assert short.status_code == 403
    _alike(short, generic)
    _, viewer = served.token("viewer")
    short, generic = _pair(served, viewer, [decision("viewer-1")])
    assert short.status_code == 403
    _alike(short, generic)


@pytest.mark.parametrize("raw", [b'[{"decision_id": ', b"\xff\xfe", b"[1, 2,]", b""])
def test_a_malformed_body_from_a_confirmed_token_is_answered_as_before(served: Served, raw: bytes) -> None:
    """A body that is not JSON, from a token the server has just confirmed, gets the generic route's error."""
    answers = served.raw_both_ways(raw)
    assert answers[0].status_code in (400, 422)
    _alike(*answers)


def test_refused_and_answered_decisions_are_timed_under_the_route(served: Served) -> None:
    """The latency metric names the decisions route for answers and refusals of a confirmed token alike."""
    for body in ([decision("timed-1")], [dict(decision("timed-2"), colour="red")]):
        served.warm(served.admin)
        served.post(served.admin, body)
    text = served.http.get(served.server.url + "/metrics").text
    for status in ("200", "422"):
        series = f'tether_request_seconds_count{{method="POST",route="/v1/decisions",status="{status}"}}'
        assert series in text, status


@pytest.mark.parametrize("field_name", ["decision_id", "rule_family", "model_version"])
def test_a_lone_surrogate_is_refused_by_field_both_ways(served: Served, field_name: str) -> None:
    """JSON may carry `\\ud800`, which is not Unicode text and no database stores: 422 naming the field."""
    body = [dict(decision(f"surrogate-{field_name}"), model_version="m1")]
    raw = json.dumps(body).replace(f'"{field_name}": "', f'"{field_name}": "x\\ud800', 1).encode()
    answers = served.raw_both_ways(raw)
    assert answers[0].status_code == 422, answers[0].text
    assert (
        answers[0].json()["error"]
        == f"item 0: {field_name}: must be Unicode text (it holds a lone surrogate)"
    )
    _alike(*answers)
    assert not _recorded(served, body[0])
