"""Crash safety: `tether serve` killed with SIGKILL at random moments while it records batches of decisions.

Each round a client thread posts batches of decisions (unique ids) to a server, and the server is killed
at a random moment (seeded). Then, before anything else touches the database: every batch that got a 2xx
is stored whole, and every other batch is stored whole or not at all (a batch is one transaction).
A restarted server gets the batches that got no 2xx again (and a few that did): each decision is stored
once, and its answer is the first one given. At the end the counters match the decisions
(`tether evaluate --recompute`) and the audit chain verifies.

TETHER_CRASH_ROUNDS sets the number of kills (20; `make soak` runs 100). The next server process is
started while the current round runs, so a round does not wait for a whole start-up.
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from conftest import Cli, decision
from serving import Server, start_server
from tether.bootstrap import build
from tether.config import Settings
from tether.services.context import Context
from tether.store import tables
from tether.store.sql import Tx

ROUNDS = int(os.environ.get("TETHER_CRASH_ROUNDS", "20"))
SEED = int(os.environ.get("TETHER_CRASH_SEED", "20261127"))
BATCH = 200
KILL_WITHIN = 2.5  # the kill comes this many batch durations after the round's first 2xx, drawn per round
REPLAY_ACKED = 2  # batches that did get a 2xx, sent again after each restart
PREBOOT = 1  # server processes starting up ahead of the round that needs them


@dataclass
class Batch:
    name: str
    body: list[dict[str, Any]]
    answers: list[dict[str, Any]] | None = None  # the first 2xx answer
    status: int | None = None  # HTTP status, None when the connection broke (the kill)

    @property
    def ids(self) -> list[str]:
        return [d["decision_id"] for d in self.body]


def make_batch(rng: random.Random, name: str) -> Batch:
    """Decisions on the canary slice (tenant=acme) and elsewhere, closes and escalations."""
    body = [
        decision(
            f"{name}-{i}",
            tenant=rng.choice(("acme", "acme", "acme", "globex")),
            verdict=rng.choice(("close", "close", "escalate")),
            rule_family=rng.choice(("phishing", "malware")),
        )
        for i in range(BATCH)
    ]
    return Batch(name, body)


@dataclass
class Client:
    """Posts new batches one after another until the server goes away or it is told to stop."""

    token: str
    rng: random.Random
    batches: list[Batch] = field(default_factory=list)
    other_status: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # seconds per acknowledged batch
    acked: threading.Event = field(default_factory=threading.Event)  # set at a round's first 2xx

    def post(self, http: httpx.Client, server: Server, batch: Batch) -> bool:
        began = time.monotonic()
        try:
            response = http.post(
                server.url + "/v1/decisions",
                json=batch.body,
                headers={"Authorization": f"Bearer {self.token}"},
            )
        except httpx.TransportError:
            return False
        batch.status = response.status_code
        if not 200 <= response.status_code < 300:
            self.other_status.append(response.status_code)
            return False
        batch.answers = response.json()["results"]
        self.latencies.append(time.monotonic() - began)
        self.acked.set()
        return True

    def run(self, server: Server, round_no: int, stop: threading.Event) -> None:
        with httpx.Client(timeout=60.0) as http:
            for n in range(1_000_000):
                if stop.is_set():
                    return
                batch = make_batch(self.rng, f"r{round_no}b{n}")
                self.batches.append(batch)
                if not self.post(http, server, batch):
                    return


@dataclass
class Store:
    """Reads the database directly, with the library, while no server runs on it."""

    ctx: Context

    def present(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        with self.ctx.db.transaction(write=False) as conn:
            stored = Tx(conn).decisions_by_id(ids)
        return {k: {"decision_id": k, **_answer(v.answer)} for k, v in stored.items()}

    def counts(self) -> tuple[int, int]:
        """(rows, distinct decision_ids) in the decisions table."""
        d = tables.decisions
        with self.ctx.db.transaction(write=False) as conn:
            rows = conn.execute(select(func.count(), func.count(d.c.decision_id.distinct()))).one()
        return int(rows[0]), int(rows[1])


def _answer(a: Any) -> dict[str, Any]:
    return {
        "mode": a.mode.value,
        "execute": a.execute,
        "slice_ids": list(a.slice_ids),
        "reason": a.reason,
        "review": a.review,
        "kill_switch_id": a.kill_switch_id,
    }


class Servers:
    """Server processes on one database, started PREBOOT ahead of need; every one is stopped at the end."""

    def __init__(self, db_url: str, tmp: Path) -> None:
        self.db_url, self.tmp = db_url, tmp
        self.pool = ThreadPoolExecutor(PREBOOT)
        self.ahead: deque[Future[Server]] = deque()
        self.started: list[Server] = []
        self.boot_times: list[float] = []  # seconds from launch to answering /healthz
        self.waits: list[float] = []  # seconds a round waited for its server

    def _boot(self) -> Server:
        began = time.monotonic()
        server = start_server(self.db_url, self.tmp)
        self.started.append(server)
        self.boot_times.append(time.monotonic() - began)
        return server

    def next(self, last: bool = False) -> Server:
        """A server that answers; unless it is the `last` one needed, another starts up in its place."""
        while len(self.ahead) < PREBOOT:
            self.ahead.append(self.pool.submit(self._boot))
        began = time.monotonic()
        server = self.ahead.popleft().result(timeout=120)
        self.waits.append(time.monotonic() - began)
        if not last:
            self.ahead.append(self.pool.submit(self._boot))
        return server

    def close(self) -> None:
        for pending in self.ahead:
            pending.cancel()
        self.pool.shutdown(wait=True)
        for server in self.started:
            server.stop()


def replay(token: str, server: Server, batches: list[Batch]) -> None:
    """Send batches again: 200 each time; a batch answered before gets exactly its first answer."""
    with httpx.Client(timeout=60.0) as http:
        for batch in batches:
            response = http.post(
                server.url + "/v1/decisions", json=batch.body, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 200, (
                f"replay of {batch.name}: {response.status_code} {response.text}"
            )
            answers = response.json()["results"]
            if batch.answers is not None:
                assert answers == batch.answers, f"replay of {batch.name} answered differently"
            else:
                batch.answers, batch.status = answers, response.status_code


def test_decisions_survive_kill_9_at_random_moments_whole_and_once(tmp_path: Path, db_url: str) -> None:
    """Acknowledged batches are stored whole, others whole or not at all; replays store nothing twice."""
    rng = random.Random(f"{SEED}-{db_url.split(':')[0]}")
    cli = Cli(tmp_path, db_url)
    token = cli.json("init")["token"]
    store = Store(build(Settings(database_url=db_url, actor="tester")))
    servers = Servers(db_url, tmp_path)
    client = Client(token, random.Random(f"{SEED}-client"))
    pending: list[Batch] = []  # sent, no 2xx: replayed after the restart
    landed = Counter[str]()  # what became of the batch in flight at each kill
    began = time.monotonic()
    try:
        server = servers.next()
        with httpx.Client(timeout=30.0) as http:
            auth = {"Authorization": f"Bearer {token}"}
            made = http.post(server.url + "/v1/slices", json={"scope": "tenant=acme"}, headers=auth)
            assert made.status_code == 201, made.text
            started = http.post(
                f"{server.url}/v1/slices/{made.json()['id']}/canary",
                json={"signed_off_by": "soc-lead", "reason": "crash drill"},
                headers=auth,
            )
            assert started.status_code == 200, started.text
        for round_no in range(ROUNDS):
            if round_no:
                server = servers.next()
            acked = [b for b in client.batches if b.answers is not None]
            replay(token, server, pending + rng.sample(acked, min(REPLAY_ACKED, len(acked))))
            pending = []
            first = len(client.batches)
            stop = threading.Event()
            client.acked.clear()
            pump = threading.Thread(target=client.run, args=(server, round_no, stop), daemon=True)
            pump.start()
            # The server is warm once a batch went through; the kill lands in one of the next few.
            assert client.acked.wait(timeout=60), "no batch went through"
            time.sleep(rng.uniform(0, KILL_WITHIN * statistics.median(client.latencies[-20:])))
            server.kill9()
            stop.set()
            pump.join(timeout=60)
            assert not pump.is_alive(), "the client did not notice the server was gone"

            # Before any replay: whole batches only, and every acknowledged one.
            for batch in client.batches[first:]:
                found = store.present(batch.ids)
                if batch.answers is not None:
                    assert len(found) == BATCH, f"{batch.name} got a 2xx but {len(found)}/{BATCH} are stored"
                    assert [found[i] for i in batch.ids] == batch.answers, f"{batch.name}: stored answers"
                else:
                    assert len(found) in (0, BATCH), f"{batch.name}: a partial batch, {len(found)}/{BATCH}"
                    landed["committed, no answer" if found else "absent"] += 1
                    pending.append(batch)
        server = servers.next(last=True)
        replay(token, server, pending)
        rows, distinct = store.counts()
        assert rows == distinct == BATCH * len(client.batches), (rows, distinct, len(client.batches))
        for batch in client.batches:
            assert batch.answers is not None
            found = store.present(batch.ids)
            assert [found[i] for i in batch.ids] == batch.answers, f"{batch.name}: stored answers differ"
        assert client.other_status == [], f"non-2xx answers other than the kill: {client.other_status}"
    finally:
        servers.close()
        store.ctx.db.dispose()
    elapsed = time.monotonic() - began
    print(
        f"\ncrash drill on {db_url.split(':')[0]}: {ROUNDS} kills in {elapsed:.1f} s, "
        f"{len(client.batches)} batches of {BATCH} ({rows} decisions), "
        f"a batch in {statistics.median(client.latencies):.3f} s (median); "
        f"the batch in flight at each kill: {dict(landed)}; "
        f"server start-up {statistics.median(servers.boot_times):.2f} s (median), "
        f"rounds waited {sum(servers.waits):.1f} s in all for their server"
    )
    cli.now = datetime.now(UTC)
    recomputed = cli.json("evaluate", "--recompute")
    assert recomputed["recompute"] == {"differences": [], "ok": True}, recomputed["recompute"]
    cli.run("audit", "verify")
