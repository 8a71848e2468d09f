"""Group commit of decisions: requests share a transaction, yet each is all or nothing with its own answer.

The library tests run one group on purpose (`GroupCommit.decide_together`); the server tests send many
requests at once to a real `tether serve` and check what each got and what is stored, and that every
acknowledged decision survives a kill -9.
"""

from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from conftest import Cli, decision
from serving import start_server
from tether.bootstrap import build
from tether.config import Settings
from tether.domain.errors import BadInput, ReplayConflict
from tether.services import lifecycle
from tether.services.batching import GroupCommit
from tether.services.context import Context
from tether.services.decide import decide
from tether.store import tables


def stored(ctx: Context, ids: list[str]) -> dict[str, int]:
    """How many rows each decision_id has."""
    with ctx.db.transaction(write=False) as conn:
        rows = conn.execute(
            select(tables.decisions.c.decision_id, func.count())
            .where(tables.decisions.c.decision_id.in_(ids))
            .group_by(tables.decisions.c.decision_id)
        ).all()
    return {str(r[0]): int(r[1]) for r in rows}


def test_one_group_answers_each_request_alone(ctx: Context) -> None:
    """In one group a conflicting replay gets its conflict and a bad item its index; the others commit."""
    s = lifecycle.create_slice(ctx, "tenant=acme")
    lifecycle.start_canary(ctx, s.id, signed_off_by="ana", reason="pilot")
    committer = GroupCommit(ctx.db)
    bad = decision(9, verdict="maybe")
    results = committer.decide_together(
        [
            (ctx, [decision(1)]),
            (ctx, [decision(2), decision(3)]),
            (ctx, [decision(1, alert_id="A-other")]),  # the same id as the first, another body
            (ctx, [decision(4), bad]),
            (ctx, [decision(1)]),  # a true replay of the first: its answer
        ]
    )
    first, pair, conflict, invalid, again = results
    assert isinstance(first, list) and isinstance(pair, list) and isinstance(again, list)
    assert [a.decision_id for a in pair] == ["d-2", "d-3"]
    assert isinstance(conflict, ReplayConflict)
    assert isinstance(invalid, BadInput) and invalid.problems[0].index == 1
    assert [a.to_dict() for a in again] == [a.to_dict() for a in first]
    assert first[0].answer.execute
    assert stored(ctx, ["d-1", "d-2", "d-3", "d-4", "d-9"]) == {"d-1": 1, "d-2": 1, "d-3": 1}
    assert [a.to_dict() for a in decide(ctx, [decision(1)])] == [a.to_dict() for a in first]


def test_a_failing_request_undoes_only_its_own_writes(ctx: Context) -> None:
    """A batch that fails after its first items were written leaves nothing; its neighbour commits."""
    committer = GroupCommit(ctx.db)
    decide(ctx, [decision(5)])
    results = committer.decide_together(
        [
            (ctx, [decision(6), decision(7), decision(5, alert_id="A-changed")]),
            (ctx, [decision(8)]),
        ]
    )
    assert isinstance(results[0], ReplayConflict)
    assert isinstance(results[1], list)
    assert stored(ctx, ["d-6", "d-7", "d-8"]) == {"d-8": 1}


def test_many_threads_share_commits_and_each_gets_its_answer(ctx: Context) -> None:
    """Concurrent callers through one committer: every decision stored once, each caller its own answers."""
    committer = GroupCommit(ctx.db)
    items = [decision(i) for i in range(200)]
    try:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda d: committer.decide(ctx, [d]), items))
    finally:
        committer.stop()
    assert [a[0].decision_id for a in answers] == [d["decision_id"] for d in items]
    assert stored(ctx, [d["decision_id"] for d in items]) == {d["decision_id"]: 1 for d in items}


# the server ----------------------------------------------------------------------------------------------


def _post_all(url: str, token: str, bodies: list[Any], threads: int = 16) -> list[httpx.Response]:
    """Each body POSTed to /v1/decisions, released together from `threads` keep-alive clients."""
    start = threading.Barrier(threads)
    local = threading.local()

    def send(body: Any) -> httpx.Response:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(
                base_url=url, headers={"authorization": f"Bearer {token}"}, timeout=60
            )
            start.wait(timeout=60)
        return client.post("/v1/decisions", json=body)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(send, bodies))


def test_served_concurrent_requests_are_recorded_once_with_their_own_answers(
    tmp_path: Path, db_url: str
) -> None:
    """Many single-decision requests at once, with replays, conflicts and bad items among them."""
    token = Cli(tmp_path, db_url).json("init")["token"]
    ctx = build(Settings(database_url=db_url, actor="tester"))
    server = start_server(db_url, tmp_path)
    try:
        bodies: list[Any] = []
        for i in range(160):
            if i % 20 == 7:
                bodies.append([decision(i - 1, alert_id="A-conflict")])  # its neighbour's id, another body
            elif i % 20 == 13:
                bodies.append([decision(i), decision(f"{i}-bad", verdict="maybe")])
            else:
                bodies.append([decision(i)])
        responses = _post_all(server.url, token, bodies)
        replays = _post_all(server.url, token, [b for b in bodies if len(b) == 1])
    finally:
        server.stop()
    codes = [r.status_code for r in responses]
    for i, (body, response) in enumerate(zip(bodies, responses, strict=True)):
        if i % 20 == 13:
            assert response.status_code == 422, response.text
            assert response.json()["errors"][0]["loc"] == ["body", 1, "verdict"]
        elif i % 20 in (6, 7):  # the two bodies for one id: the first recorded wins, the other conflicts
            assert response.status_code in (200, 409), response.text
        else:
            assert response.status_code == 200, response.text
            assert [a["decision_id"] for a in response.json()["results"]] == [body[0]["decision_id"]]
    pairs = [(codes[i - 1], codes[i]) for i in range(len(bodies)) if i % 20 == 7]
    assert all(sorted(p) == [200, 409] for p in pairs), pairs
    first = {r.json()["results"][0]["decision_id"]: r.json() for r in responses if r.status_code == 200}
    for replay in replays:
        if replay.status_code == 200:
            assert replay.json() == first[replay.json()["results"][0]["decision_id"]]
        else:
            assert replay.status_code == 409
    ids = [str(b[0]["decision_id"]) for b in bodies if len(b) == 1 and b[0].get("alert_id") != "A-conflict"]
    assert stored(ctx, ids) == dict.fromkeys(ids, 1)
    ctx.db.dispose()


@pytest.mark.parametrize("round_no", range(3))
def test_every_acknowledged_decision_survives_kill_9(tmp_path: Path, db_url: str, round_no: int) -> None:
    """Concurrent single-decision requests, the server killed at a random moment: every 2xx is stored."""
    token = Cli(tmp_path, db_url).json("init")["token"]
    server = start_server(db_url, tmp_path)
    rng = random.Random(f"group-commit-{round_no}")
    acked: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def pump(worker: int) -> None:
        with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {token}"}) as client:
            for n in range(100_000):
                if stop.is_set():
                    return
                d = decision(f"{round_no}-{worker}-{n}")
                try:
                    response = client.post("/v1/decisions", json=[d], timeout=30)
                except httpx.TransportError:
                    return
                if response.status_code == 200:
                    with lock:
                        acked.append(str(d["decision_id"]))

    workers = [threading.Thread(target=pump, args=(w,), daemon=True) for w in range(12)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 30
    while len(acked) < 50 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(rng.uniform(0, 0.3))
    server.kill9()
    stop.set()
    for w in workers:
        w.join(timeout=60)
    with lock:
        done = list(acked)
    assert len(done) >= 50
    ctx = build(Settings(database_url=db_url, actor="tester"))
    assert stored(ctx, done) == dict.fromkeys(done, 1)
    ctx.db.dispose()
