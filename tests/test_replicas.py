"""Several `tether serve` replicas on one PostgreSQL database (DESIGN §6, §8), as real processes.

Gate views kept fresh across replicas (a change made through one is answered by the others within 1 s),
failing closed when the database is out of reach, one evaluator at a time with a fencing epoch, and
concurrent writers through different replicas: exactly one rollback, one record per decision, one
linear audit chain.
"""

from __future__ import annotations

import functools
import itertools
import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import httpx
import pytest
from sqlalchemy import func, select, text

from conftest import Cli, decision, outcome, pg_schema_url
from pgproxy import TcpProxy
from serving import Server, start_server
from tether.bootstrap import build
from tether.config import Settings
from tether.domain.errors import Fenced
from tether.services import audit, evaluate, lifecycle
from tether.services.context import Context, FixedClock
from tether.services.leader import LOCK_NAME, Leadership
from tether.store import tables

# These measure time across processes (propagation, staleness, failover): run alone, not beside others.
pytestmark = pytest.mark.serial

T = TypeVar("T")
PROPAGATE_WITHIN = 1.0  # seconds: DESIGN §6, a change reaches the other replicas' gates
PATIENCE = 15.0  # seconds: how long a wait goes on (to measure a slow case) before it fails
MAX_STALENESS = 2.0  # seconds: TETHER_MAX_STALENESS of the replica that is cut off
EVALUATE_EVERY = 1.0  # seconds between evaluation cycles in the failover test
FAILOVER_WITHIN = 2 * EVALUATE_EVERY + 1.0  # two intervals, and a margin for process scheduling
GRANTING = ("canary", "active")


def alert(tenant: str = "acme") -> dict[str, str]:
    return {"tenant": tenant, "severity": "low", "rule_family": "phishing", "data_source": "o365"}


def wait_for(
    what: str, check: Callable[[], T | None], within: float = PATIENCE, every: float = 0.005
) -> tuple[T, float]:
    """Poll `check` every `every` seconds until it returns something truthy; that and the time taken."""
    start = time.monotonic()
    deadline = start + within
    while True:
        value = check()
        if value:
            return value, time.monotonic() - start
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        time.sleep(every)


@dataclass
class Cluster:
    """Replicas of one Tether on one PostgreSQL schema, an admin token, and the CLI on the same schema."""

    url: str
    tmp: Path
    cli: Cli
    token: str
    servers: list[Server] = field(default_factory=list)
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30.0))
    lib: Context | None = None

    def start(self, db_url: str | None = None, **kw: Any) -> Server:
        server = start_server(db_url or self.url, self.tmp, **kw)
        self.servers.append(server)
        return server

    def stop(self, server: Server) -> None:
        self.servers.remove(server)
        server.stop()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def call(self, server: Server, method: str, path: str, **kw: Any) -> httpx.Response:
        return self.http.request(method, server.url + path, headers=self.auth, **kw)

    def ok(self, server: Server, method: str, path: str, **kw: Any) -> Any:
        response = self.call(server, method, path, **kw)
        assert response.status_code in (200, 201), f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def post_at_once(self, servers: list[Server], path: str, bodies: list[Any]) -> list[httpx.Response]:
        """POST bodies[i] to servers[i], all released at the same moment."""
        calls = [
            functools.partial(self.call, server, "POST", path, json=body)
            for server, body in zip(servers, bodies, strict=True)
        ]
        return at_once(calls)

    def gate(self, server: Server, tenant: str = "acme") -> dict[str, Any]:
        return dict(self.ok(server, "POST", "/v1/gate", json=alert(tenant)))

    def mode(self, server: Server, tenant: str = "acme") -> str:
        return str(self.gate(server, tenant)["mode"])

    def readyz(self, server: Server) -> dict[str, Any]:
        response = self.http.get(server.url + "/readyz")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def canary(self, server: Server, scope: str, **policy: Any) -> str:
        """A new slice on `scope`, started in canary by a person's sign-off; its id."""
        body: dict[str, Any] = {"scope": scope, **({"policy": policy} if policy else {})}
        sid = str(self.ok(server, "POST", "/v1/slices", json=body)["id"])
        started = self.ok(
            server,
            "POST",
            f"/v1/slices/{sid}/canary",
            json={"signed_off_by": "soc-lead", "reason": "shadow reviewed by hand"},
        )
        assert started["state"] == "canary"
        return sid

    def library(self) -> Context:
        """The library on the same schema (one engine for the test)."""
        if self.lib is None:
            self.lib = build(Settings(database_url=self.url, actor="tester"))
        return self.lib

    def events(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in audit.list_events(self.library())]

    def check_consistent(self) -> None:
        """`tether audit verify` passes and `tether evaluate --recompute` finds nothing to repair."""
        self.cli.now = datetime.now(UTC)
        self.cli.run("audit", "verify")
        recomputed = self.cli.json("evaluate", "--recompute")
        assert recomputed["recompute"] == {"differences": [], "ok": True}, recomputed["recompute"]


def new_cluster(tmp: Path, pg_database: str) -> Iterator[Cluster]:
    """An initialised Tether on a new schema; every replica started on it is stopped at the end."""
    for url in pg_schema_url(pg_database):
        cli = Cli(tmp, url)
        c = Cluster(url, tmp, cli, cli.json("init")["token"])
        try:
            yield c
        finally:
            for server in c.servers:
                server.stop()
            c.http.close()
            if c.lib is not None:
                c.lib.db.dispose()


@pytest.fixture
def cluster(tmp_path: Path, pg_database: str) -> Iterator[Cluster]:
    """A schema of the test's own (replicas with an evaluator, the library's leadership)."""
    yield from new_cluster(tmp_path, pg_database)


class Pair(NamedTuple):
    cluster: Cluster
    a: Server
    b: Server


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, pg_database: str) -> Iterator[Pair]:
    """Two replicas A and B (no evaluator) shared by the tests of this module, each on tenants of its own."""
    for c in new_cluster(tmp_path_factory.mktemp("replicas"), pg_database):
        yield Pair(c, c.start(), c.start())


def check_chain(events: list[dict[str, Any]]) -> None:
    """seq 1..N with no gap, and each event chained to the one before it (no fork)."""
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), "a gap or a reorder in seq"
    previous = "0" * 64
    for e in events:
        assert e["prev_hash"] == previous, f"seq {e['seq']} does not follow seq {e['seq'] - 1}"
        previous = e["hash"]


# --- 1. a change made through one replica reaches the other's gate within 1 s ---------------------------


@pytest.mark.slow
def test_kill_switches_and_slice_changes_reach_the_other_replicas_gate_within_a_second(pair: Pair) -> None:
    """Canary start, kill switch activation and deactivation through one replica: the other answers ≤ 1 s."""
    cluster, a, b = pair
    sid = cluster.ok(a, "POST", "/v1/slices", json={"scope": "tenant=prop"})["id"]
    wait_for("the new slice in B's view", lambda: sid in cluster.gate(b, "prop")["slice_ids"])
    assert cluster.mode(b, "prop") == "shadow"
    timings: dict[str, list[float]] = {"canary start": [], "kill activate": [], "kill deactivate": []}

    def propagated(what: str, writer: Server, reader: Server, expected: str) -> dict[str, Any]:
        """The writer answers `expected` at once; the reader within PROPAGATE_WITHIN of the write's answer."""
        wrote = time.monotonic()
        assert cluster.mode(writer, "prop") == expected, f"{what}: the replica that made the change"
        answer, _ = wait_for(
            f"{what} on the other replica",
            lambda: (g := cluster.gate(reader, "prop"))["mode"] == expected and g,
        )
        took = time.monotonic() - wrote
        timings[what].append(took)
        assert took <= PROPAGATE_WITHIN, f"{what}: the other replica answered {expected} after {took:.3f} s"
        return dict(answer)

    cluster.ok(
        a, "POST", f"/v1/slices/{sid}/canary", json={"signed_off_by": "soc-lead", "reason": "sign-off"}
    )
    assert propagated("canary start", a, b, "canary")["slice_ids"] == [sid]
    for round_ in range(6):  # both directions: through A read on B, through B read on A
        writer, reader = (a, b) if round_ % 2 == 0 else (b, a)
        made = cluster.call(
            writer, "POST", "/v1/kill-switches", json={"scope": "tenant=prop", "reason": "drill"}
        )
        assert made.status_code == 201, made.text
        killed = propagated("kill activate", writer, reader, "killed")
        assert killed["kill_switch_id"] == made.json()["id"] and killed["execute"] is False
        cluster.ok(writer, "POST", f"/v1/kill-switches/{made.json()['id']}/deactivate", json={"reason": "ok"})
        assert propagated("kill deactivate", writer, reader, "canary")["execute"] is True
    for what, seen in timings.items():
        print(
            f"\npropagation of {what} to the other replica: max {max(seen) * 1000:.1f} ms, "
            f"median {statistics.median(seen) * 1000:.1f} ms over {len(seen)}"
        )


# --- 2. a replica that cannot reach the database fails closed, then recovers -----------------------------


STALE = {"mode": "shadow", "execute": False, "slice_ids": [], "reason": "stale"}


def is_stale(status: int, body: dict[str, Any]) -> bool:
    return status == 200 and {k: body.get(k) for k in STALE} == STALE


@dataclass
class CutOff:
    """A replica whose only way to PostgreSQL is a proxy, and one that reaches it directly."""

    cluster: Cluster
    proxy: TcpProxy
    direct: Server
    replica: Server
    tenant: str
    slice_id: str

    def watch(self, cut: float, until: float) -> list[tuple[float, int, dict[str, Any]]]:
        """Ask the replica's gate until `until`: (sent, in seconds after `cut`; status; body) for each."""
        seen = []
        while time.monotonic() < until:
            sent = time.monotonic()
            response = self.cluster.call(self.replica, "POST", "/v1/gate", json=alert(self.tenant))
            seen.append((sent - cut, response.status_code, response.json()))
            time.sleep(0.02)
        return seen

    def cut_for(self, seconds: float) -> tuple[float, list[tuple[float, int, dict[str, Any]]]]:
        """Cut the proxy and watch the gate; the time the cut took and what the gate answered."""
        before = time.monotonic()
        self.proxy.cut()
        cut = time.monotonic()
        return cut - before, self.watch(cut, cut + seconds)

    def fresh_answer(self, what: str) -> tuple[dict[str, Any], float]:
        """Wait for an answer from a fresh view (not stale, not a 503)."""

        def fresh() -> dict[str, Any] | None:
            response = self.cluster.call(self.replica, "POST", "/v1/gate", json=alert(self.tenant))
            body = response.json()
            return body if response.status_code == 200 and not is_stale(200, body) else None

        return wait_for(what, fresh)


CUT_TENANTS = itertools.count(1)


@pytest.fixture
def cut_off(pair: Pair) -> Iterator[CutOff]:
    """A canary that a third replica, behind the proxy, answers (with TETHER_MAX_STALENESS=2)."""
    cluster, direct, _ = pair
    tenant = f"cut{next(CUT_TENANTS)}"
    with TcpProxy() as proxy:
        replica = cluster.start(proxy.url_for(cluster.url), env={"TETHER_MAX_STALENESS": str(MAX_STALENESS)})
        try:
            sid = cluster.canary(direct, f"tenant={tenant}")
            wait_for("the canary behind the proxy", lambda: cluster.mode(replica, tenant) == "canary")
            assert proxy.open_connections > 0
            yield CutOff(cluster, proxy, direct, replica, tenant, sid)
        finally:
            if not proxy.listening:
                proxy.restore()  # a replica that reaches its database shuts down at once
            cluster.stop(replica)


def granted_late(seen: list[tuple[float, int, dict[str, Any]]]) -> list[tuple[float, dict[str, Any]]]:
    """Granting answers to questions sent after max_staleness had passed since the cut.

    0.1 s of slack: a refresh that read the version just before the cut may mark the view fresh just after.
    """
    return [
        (round(at, 3), body)
        for at, status, body in seen
        if status == 200 and body.get("mode") in GRANTING and at > MAX_STALENESS + 0.1
    ]


@pytest.mark.slow
def test_a_replica_cut_off_from_the_database_answers_shadow_stale(cut_off: CutOff) -> None:
    """DESIGN §3: past max_staleness without a refresh, /v1/gate answers shadow / stale, never a grant."""
    took, seen = cut_off.cut_for(MAX_STALENESS + 4.0)
    statuses = Counter(status for _, status, _ in seen)
    assert not granted_late(seen), f"granted without a fresh view: {granted_late(seen)[:3]}"
    stale = [at for at, status, body in seen if is_stale(status, body)]
    print(f"\ncut off: gate answers by status {dict(statuses)}; first shadow/stale at {stale[:1]} s")
    assert stale, f"never answered shadow/stale after the cut; answers by status {dict(statuses)}: {seen[-1]}"
    assert stale[0] + took <= MAX_STALENESS + 2.0
    after = [(at, status, body) for at, status, body in seen if at >= stale[0]]
    assert all(is_stale(status, body) for _, status, body in after), "stale, then something else"


@pytest.mark.slow
def test_a_replica_cut_off_from_the_database_answers_from_a_fresh_view_once_it_is_back(
    cut_off: CutOff,
) -> None:
    """Restored, the gate answers as before within seconds, including a change made meanwhile elsewhere."""
    _, seen = cut_off.cut_for(MAX_STALENESS + 1.0)
    assert not granted_late(seen), f"granted without a fresh view: {granted_late(seen)[:3]}"
    cut_off.proxy.restore()
    answer, took = cut_off.fresh_answer("a fresh answer after the restore")
    print(f"\nrestored: answers canary again {took:.2f} s after the database is reachable")
    assert answer["mode"] == "canary" and answer["slice_ids"] == [cut_off.slice_id] and answer["execute"]
    assert took <= 5.0

    # A kill switch made through another replica while this one was cut off is what it answers once back.
    _, seen = cut_off.cut_for(MAX_STALENESS + 1.0)
    assert not granted_late(seen), f"granted without a fresh view: {granted_late(seen)[:3]}"
    made = cut_off.cluster.ok(
        cut_off.direct,
        "POST",
        "/v1/kill-switches",
        json={"scope": f"tenant={cut_off.tenant}", "reason": "drill"},
    )
    cut_off.proxy.restore()
    answer, took = cut_off.fresh_answer("the kill switch after the restore")
    print(f"restored: answers the kill switch made meanwhile {took:.2f} s after the restore")
    assert answer["mode"] == "killed" and answer["kill_switch_id"] == made["id"], answer
    assert took <= 5.0


# --- 3. one evaluator at a time: failover on kill -9, fencing of a superseded epoch ----------------------


Roles = dict[str, list[tuple[Server, dict[str, Any]]]]


def roles(cluster: Cluster, servers: list[Server]) -> Roles:
    """The replicas by the evaluator role their /readyz reports, with what it reports."""
    out: Roles = {}
    for s in servers:
        evaluator = cluster.readyz(s)["evaluator"]
        out.setdefault(evaluator["role"], []).append((s, evaluator))
    return out


def one_leader(cluster: Cluster, servers: list[Server]) -> Roles | None:
    found = roles(cluster, servers)
    return found if len(found.get("leader", [])) == 1 and len(found.get("standby", [])) == 1 else None


@pytest.mark.slow
def test_the_standby_replica_takes_over_the_evaluator_when_the_leader_is_killed(cluster: Cluster) -> None:
    """Exactly one leader; kill -9 it and the standby leads with a higher epoch within two intervals."""
    a, b = cluster.start(evaluate_every=EVALUATE_EVERY), cluster.start(evaluate_every=EVALUATE_EVERY)
    settled, _ = wait_for("one leader and one standby", lambda: one_leader(cluster, [a, b]))
    ((leader, led),) = settled["leader"]
    ((standby, _),) = settled["standby"]
    assert led["pid"] == leader.proc.pid and isinstance(led["epoch"], int)
    for _ in range(3):  # it stays that way: the standby never takes the lock while the leader holds it
        time.sleep(EVALUATE_EVERY / 2)
        assert [s for s, _ in roles(cluster, [a, b])["leader"]] == [leader]
    # Evaluations happen once, on the leader: a slice due for `hold` is held exactly once.
    before = cluster.canary(a, "tenant=before", hold_after_days=0)
    wait_for("the hold by the leader", lambda: held(cluster, before), every=0.1)

    killed_at = time.monotonic()
    leader.kill9()
    taken, _ = wait_for(
        "the standby to lead", lambda: (e := cluster.readyz(standby)["evaluator"])["role"] == "leader" and e
    )
    took = time.monotonic() - killed_at  # from the SIGKILL, not from the end of the wait for the exit
    print(
        f"\nfailover: the standby leads {took:.2f} s after kill -9 (epoch {led['epoch']} -> {taken['epoch']})"
    )
    assert took <= FAILOVER_WITHIN
    assert taken["epoch"] > led["epoch"] and taken["pid"] == standby.proc.pid

    after = cluster.canary(standby, "tenant=after", hold_after_days=0)
    wait_for("the hold by the new leader", lambda: held(cluster, after), every=0.1)
    time.sleep(EVALUATE_EVERY)  # another cycle or two: nothing is held twice
    holds = Counter(e["slice_id"] for e in cluster.events() if e["type"] == "canary.held")
    assert holds == {before: 1, after: 1}


def held(cluster: Cluster, slice_id: str) -> bool:
    return any(e["type"] == "canary.held" and e["slice_id"] == slice_id for e in cluster.events())


T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_an_evaluator_whose_epoch_was_superseded_changes_nothing(cluster: Cluster) -> None:
    """Two Leadership objects on one schema: one holder at a time; a superseded epoch is fenced off."""
    early = build(Settings(database_url=cluster.url, actor="x"), clock=FixedClock(T0))
    sid = lifecycle.start_canary(
        early,
        lifecycle.create_slice(early, "tenant=acme", {"hold_after_days": 7}).id,
        signed_off_by="soc-lead",
        reason="sign-off",
    ).id
    # Thirty days later the slice is due for `hold`: an evaluation that runs would change it.
    first = build(Settings(database_url=cluster.url, actor="x"), clock=FixedClock(T0 + timedelta(days=30)))
    second = build(Settings(database_url=cluster.url, actor="x"), clock=FixedClock(T0 + timedelta(days=30)))
    one, two = Leadership(first.db), Leadership(second.db)
    try:
        old_epoch = one.claim()
        assert old_epoch is not None and one.leading
        for _ in range(3):
            assert two.claim() is None and not two.leading, "a second holder while the first holds"
            assert one.claim() == old_epoch, "the holder keeps its epoch"

        # Take the lock from under the first holder without telling it: its database session ends.
        lock_holder = advisory_lock_holder(cluster.url)
        assert lock_holder is not None
        with first.db.engine.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": lock_holder}).scalar_one()
        assert one.epoch == old_epoch, "the first holder has not noticed yet"
        new_epoch, _ = wait_for("the second to take over", two.claim, within=10.0)
        assert new_epoch > old_epoch

        length = len(audit.list_events(first))
        with pytest.raises(Fenced):
            evaluate.evaluate(first, epoch=old_epoch)
        assert len(audit.list_events(first)) == length, "a fenced evaluation wrote to the audit trail"
        assert lifecycle_state(first, sid) == ("canary", None)
        assert one.claim() is None and not one.leading, "the first holder notices it lost the lock"

        result = evaluate.evaluate(second, epoch=new_epoch)
        assert [(r["slice_id"], r["action"]) for r in result.results] == [(sid, "hold")]
        assert [e.type for e in audit.list_events(first)[length:]] == ["canary.held"]
        assert lifecycle_state(first, sid)[0] == "canary" and lifecycle_state(first, sid)[1] is not None

        # The same by an orderly release: the next holder's epoch fences the old one again.
        two.release()
        newest, _ = wait_for("the first to lead again", one.claim, within=10.0)
        assert newest > new_epoch
        with pytest.raises(Fenced):
            evaluate.evaluate(second, epoch=new_epoch)
        assert len(audit.list_events(first)) == length + 1
    finally:
        one.release()
        two.release()
        for ctx in (early, first, second):
            ctx.db.dispose()


def advisory_lock_holder(url: str) -> int | None:
    """The backend pid holding the evaluator's advisory lock of this schema, read from pg_locks."""
    ctx = build(Settings(database_url=url, actor="x"))
    try:
        with ctx.db.engine.connect() as conn:
            return conn.execute(
                text(
                    "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
                    " WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()"
                    " AND l.objsubid = 1"
                    " AND l.objid::bigint = (hashtext(current_schema() || :name)::bigint & 4294967295)"
                ),
                {"name": LOCK_NAME},
            ).scalar_one_or_none()
    finally:
        ctx.db.dispose()


def lifecycle_state(ctx: Context, slice_id: str) -> tuple[str, datetime | None]:
    with ctx.db.transaction(write=False) as conn:
        from tether.store.sql import Tx

        s = Tx(conn).slice(slice_id)
    assert s is not None
    return s.state.value, s.held_at


# --- 4. concurrent writers through different replicas ----------------------------------------------------


def at_once(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run the calls in threads released together by a barrier; their results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


RACE_ROUNDS = 10


def is_mode(cluster: Cluster, server: Server, tenant: str, mode: str) -> bool:
    return cluster.mode(server, tenant) == mode


@pytest.mark.slow
def test_one_missed_tp_reported_to_two_replicas_at_once_rolls_back_once(pair: Pair) -> None:
    """DESIGN: the same missed TP to two replicas at once → one canary.rolled_back, one kill switch."""
    cluster, a, b = pair
    slices = {}
    for r in range(RACE_ROUNDS):
        tenant = f"race{r}"
        sid = cluster.canary(a, f"tenant={tenant}")
        wait_for("the canary on B", functools.partial(is_mode, cluster, b, tenant, "canary"))
        sent = decision(f"race-{r}", tenant=tenant)
        (answer,) = cluster.ok(a, "POST", "/v1/decisions", json=[sent])["results"]
        assert answer["mode"] == "canary" and answer["execute"] is True, answer
        report = [outcome(f"race-{r}", "true_positive", source="incident")]
        posts = cluster.post_at_once([a, b, a, b], "/v1/outcomes", [report] * 4)
        assert [p.status_code for p in posts] == [200] * 4, [p.text for p in posts]
        actions = [act for p in posts for act in p.json()["actions"]]
        assert len(actions) == 1 and actions[0]["slice_id"] == sid, actions
        slices[sid] = actions[0]["kill_switch_id"]
    events = cluster.events()
    check_chain(events)
    for sid, kill_id in slices.items():
        mine = Counter(e["type"] for e in events if e["slice_id"] == sid)
        assert mine["canary.rolled_back"] == 1 and mine["kill_switch.activated"] == 1, (sid, mine)
        (kill,) = [e for e in events if e["type"] == "kill_switch.activated" and e["slice_id"] == sid]
        assert kill["payload"]["kill_switch"]["id"] == kill_id
        assert cluster.ok(b, "GET", f"/v1/slices/{sid}")["state"] == "rolled_back"
    print(f"\nmissed-TP race: {RACE_ROUNDS} slices, 4 concurrent reports each, one rollback each")
    cluster.check_consistent()


REPLAY_IDS = 50
THREADS_PER_REPLICA = 3


@pytest.mark.slow
def test_one_decision_sent_to_two_replicas_at_once_is_recorded_once(pair: Pair) -> None:
    """The same decision_id posted concurrently through both replicas: one record, the same answer to all."""
    cluster, a, b = pair
    sid = cluster.canary(a, "tenant=dup")
    wait_for("the canary on B", lambda: cluster.mode(b, "dup") == "canary")
    answers: dict[str, list[dict[str, Any]]] = {}
    for i in range(REPLAY_IDS):
        body = [decision(f"once-{i}", tenant="dup", verdict="close" if i % 3 else "escalate")]
        posts = cluster.post_at_once([a, b] * THREADS_PER_REPLICA, "/v1/decisions", [body] * 6)
        assert [p.status_code for p in posts] == [200] * len(posts), [p.text for p in posts]
        answers[f"d-once-{i}"] = [p.json()["results"][0] for p in posts]
    # Then overlapping batches in different orders (the unique index is taken in different orders).
    rng = random.Random(7)
    ids = [f"mix-{i}" for i in range(40)]
    for _ in range(5):
        batches = [rng.sample(ids, 20) for _ in range(2 * THREADS_PER_REPLICA)]
        bodies = [[decision(i, tenant="dup") for i in batch] for batch in batches]
        posts = cluster.post_at_once([a, b] * THREADS_PER_REPLICA, "/v1/decisions", bodies)
        assert [p.status_code for p in posts] == [200] * len(posts), [p.text for p in posts]
        for p in posts:
            for got in p.json()["results"]:
                answers.setdefault(got["decision_id"], []).append(got)
    for decision_id, seen in answers.items():
        assert all(got == seen[0] for got in seen), f"{decision_id}: different answers {seen}"
    counts = stored_counts(cluster, list(answers))
    assert counts == dict.fromkeys(answers, 1), {k: v for k, v in counts.items() if v != 1}
    evidence = cluster.ok(a, "GET", f"/v1/slices/{sid}")["evidence"]
    assert evidence["decisions"] == len(answers), evidence
    print(
        f"\nreplayed decisions: {len(answers)} ids, {sum(map(len, answers.values()))} answers, "
        "one record each"
    )


def stored_counts(cluster: Cluster, decision_ids: list[str]) -> dict[str, int]:
    """How many rows the decisions table holds for each of these ids."""
    d = tables.decisions
    query = select(d.c.decision_id, func.count()).where(d.c.decision_id.in_(decision_ids))
    with cluster.library().db.transaction(write=False) as conn:
        return {str(k): int(n) for k, n in conn.execute(query.group_by(d.c.decision_id))}


AUDIT_THREADS_PER_REPLICA = 4
AUDIT_CYCLES = 10


@pytest.mark.slow
def test_the_audit_chain_stays_linear_under_writers_on_two_replicas(pair: Pair) -> None:
    """Threads activating and deactivating kill switches through both replicas: seq 1..N, no fork."""
    cluster, a, b = pair
    start_seq = len(cluster.events())

    def writer(server: Server, name: str) -> list[str]:
        made = []
        for i in range(AUDIT_CYCLES):
            k = cluster.call(
                server, "POST", "/v1/kill-switches", json={"scope": f"tenant={name}-{i}", "reason": "drill"}
            )
            assert k.status_code == 201, k.text
            made.append(k.json()["id"])
            gone = cluster.call(
                server, "POST", f"/v1/kill-switches/{made[-1]}/deactivate", json={"reason": "done"}
            )
            assert gone.status_code == 200, gone.text
        return made

    servers = [a, b] * AUDIT_THREADS_PER_REPLICA
    made = at_once([functools.partial(writer, s, f"w{n}") for n, s in enumerate(servers)])
    events = cluster.events()
    check_chain(events)
    written = len(servers) * AUDIT_CYCLES
    assert len(events) == start_seq + 2 * written
    kinds = Counter(e["type"] for e in events[start_seq:])
    assert kinds == {"kill_switch.activated": written, "kill_switch.deactivated": written}
    assert {
        e["payload"]["kill_switch"]["id"] for e in events[start_seq:] if e["type"] == "kill_switch.activated"
    } == {k for ks in made for k in ks}
    print(f"\naudit chain: {2 * written} events from {len(servers)} writers on 2 replicas, linear")
    cluster.cli.run("audit", "verify")
