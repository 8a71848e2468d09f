"""The SQL store: rows <-> domain objects, one transaction at a time, for SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, case, func, insert, select, update

from tether.domain.audit import GENESIS, AuditEvent, event_hash
from tether.domain.frozen import quick_init
from tether.domain.model import (
    Actor,
    ActorType,
    Answer,
    Counters,
    KillSwitch,
    Mode,
    Slice,
    SliceState,
)
from tether.domain.scope import Scope
from tether.domain.timefmt import iso
from tether.stats.sequential import EProcess
from tether.store import tables as t
from tether.store.engine import BUMPED

_VERSION_KEY = "gate_version"
_EPOCH_KEY = "evaluator_epoch"
GATE_CHANNEL = "tether_gate"
_STORED = [
    t.decisions.c[name]
    for name in (
        "pk",
        "decision_id",
        "tenant",
        "body",
        "mode",
        "execute",
        "slice_ids",
        "reason",
        "kill_switch_id",
        "verdict",
        "out_disposition",
        "out_source",
        "first_review_seq",
        "review",
    )
]
_STORED_SQL = f"SELECT {', '.join(c.name for c in _STORED)} FROM decisions"
_MODES = {m.value: m for m in Mode}
_HEAD_KEY = "audit_head"
_POLICY_KEY = "policy"


def scope_from_text(text: str) -> Scope:
    """A stored canonical scope back into pairs (stored text is already canonical)."""
    if not text:
        return Scope()
    return Scope(tuple(tuple(p.split("=", 1)) for p in text.split(",")))  # type: ignore[misc]


def _actor(text: str | None) -> Actor | None:
    if text is None:
        return None
    raw = json.loads(text)
    return Actor(ActorType(raw["type"]), raw["id"], raw.get("name"))


def _bound(values: list[Any], processor: Callable[[Any], Any] | None) -> list[Any]:
    """A column's values through its type's bind processor, each distinct value once."""
    if processor is None:
        return values
    try:
        done = {v: processor(v) for v in set(values)}
    except TypeError:  # unhashable values: one by one
        return [processor(v) for v in values]
    return [done[v] for v in values]


Columns = dict[str, list[Any]]  # rows given column by column: name -> one value per row


def _count(columns: Columns) -> int:
    return len(next(iter(columns.values()))) if columns else 0


def _rows(columns: Columns) -> list[dict[str, Any]]:
    names = list(columns)
    return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]


@quick_init
@dataclass(frozen=True)
class StoredDecision:
    pk: int
    decision_id: str
    tenant: str
    body: str
    answer: Answer
    verdict: str
    out_disposition: str | None
    out_source: str | None
    first_review_seq: int | None
    review: bool


@quick_init
@dataclass(frozen=True)
class Grant:
    """A decision's place in a slice's evidence."""

    slice_id: str
    attempt: int
    executed: bool


@dataclass(frozen=True)
class OutcomeRow:
    decision_pk: int
    seq: int
    disposition: str
    source: str
    sampled: bool


@dataclass(frozen=True)
class ShadowRow:
    dims: dict[str, str]
    verdict: str
    disposition: str | None
    count: int


class Tx:
    """One open transaction with typed reads and writes."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._policy: dict[str, Any] | None = None  # read once per transaction
        self._hooks: list[tuple[str, frozenset[str]]] | None = None  # webhooks, read once per transaction

    # meta ------------------------------------------------------------------
    def _meta(self, key: str, lock: bool = False) -> str | None:
        query = select(t.meta.c.value).where(t.meta.c.key == key)
        if lock:
            query = query.with_for_update()
        return self.conn.execute(query).scalar_one_or_none()

    def _set_meta(self, key: str, value: str) -> None:
        done = self.conn.execute(update(t.meta).where(t.meta.c.key == key).values(value=value))
        if done.rowcount == 0:
            self.conn.execute(insert(t.meta).values(key=key, value=value))

    def version(self) -> int:
        return int(self._meta(_VERSION_KEY) or 0)

    def bump_version(self) -> int:
        """Mark the gate's view stale: slices, kill switches or the policy changed.

        On PostgreSQL every replica listening on GATE_CHANNEL hears of it when this transaction commits.
        """
        version = int(self._meta(_VERSION_KEY, lock=True) or 0) + 1
        self._set_meta(_VERSION_KEY, str(version))
        self.conn.info[BUMPED] = True
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(
                select(func.pg_notify(GATE_CHANNEL, func.concat(func.current_schema(), ":", str(version))))
            )
        return version

    def next_epoch(self) -> int:
        """A new evaluator epoch: the fencing token of the replica that just became the evaluator."""
        epoch = int(self._meta(_EPOCH_KEY, lock=True) or 0) + 1
        self._set_meta(_EPOCH_KEY, str(epoch))
        return epoch

    def epoch(self) -> int:
        """The current evaluator epoch, held (shared) so that no takeover commits while this runs."""
        query = select(t.meta.c.value).where(t.meta.c.key == _EPOCH_KEY).with_for_update(read=True)
        return int(self.conn.execute(query).scalar_one_or_none() or 0)

    def policy_values(self) -> dict[str, Any]:
        if self._policy is None:
            self._policy = dict(json.loads(self._meta(_POLICY_KEY) or "{}"))
        return dict(self._policy)

    def set_policy_values(self, values: dict[str, Any]) -> None:
        self._set_meta(_POLICY_KEY, json.dumps(values, sort_keys=True))
        self._policy = dict(values)

    # slices ----------------------------------------------------------------
    @staticmethod
    def _slice(row: Row[Any]) -> Slice:
        m = row._mapping
        return Slice(
            id=m["id"],
            scope=scope_from_text(m["scope"]),
            state=SliceState(m["state"]),
            attempt=m["attempt"],
            created_at=m["created_at"],
            canary_started_at=m["canary_started_at"],
            promoted_at=m["promoted_at"],
            rolled_back_at=m["rolled_back_at"],
            held_at=m["held_at"],
            kill_switch_id=m["kill_switch_id"],
            policy_overrides=json.loads(m["policy_overrides"]),
            counters=Counters(
                m["ev_decisions"],
                m["ev_executed"],
                m["ev_missed_tp"],
                EProcess(m["ev_correct"], m["ev_incorrect"], m["ev_log_e_rb"], m["ev_log_e_pr"]),
                m["ev_other_reviews"],
            ),
            model_version=m["model_version"],
            would_promote_at=m["would_promote_at"],
            would_roll_back_at=m["would_roll_back_at"],
        )

    @staticmethod
    def _slice_row(s: Slice) -> dict[str, Any]:
        c = s.counters
        return {
            "id": s.id,
            "scope": s.scope.text,
            "state": s.state.value,
            "attempt": s.attempt,
            "created_at": s.created_at,
            "canary_started_at": s.canary_started_at,
            "promoted_at": s.promoted_at,
            "rolled_back_at": s.rolled_back_at,
            "held_at": s.held_at,
            "kill_switch_id": s.kill_switch_id,
            "policy_overrides": json.dumps(s.policy_overrides, sort_keys=True),
            "ev_decisions": c.decisions,
            "ev_executed": c.executed,
            "ev_missed_tp": c.missed_tp,
            "ev_correct": c.reviews.correct,
            "ev_incorrect": c.reviews.incorrect,
            "ev_log_e_rb": c.reviews.log_e_rb,
            "ev_log_e_pr": c.reviews.log_e_pr,
            "ev_other_reviews": c.other_reviews,
            "model_version": s.model_version,
            "would_promote_at": s.would_promote_at,
            "would_roll_back_at": s.would_roll_back_at,
        }

    def slices(self, ids: Iterable[str] | None = None, lock: bool = False) -> list[Slice]:
        query = select(t.slices).order_by(t.slices.c.created_at, t.slices.c.id)
        if ids is not None:
            query = query.where(t.slices.c.id.in_(list(ids)))
        if lock:
            query = query.with_for_update()
        return [self._slice(r) for r in self.conn.execute(query)]

    def refining_slice_ids(self, scope: Scope) -> list[str]:
        """Ids of the slices whose scope strictly refines `scope`, oldest first (reads id and scope only)."""
        query = select(t.slices.c.id, t.slices.c.scope).order_by(t.slices.c.created_at, t.slices.c.id)
        for dim, value in scope.pairs:  # a refining scope holds every pair: narrow by text, decide below
            pattern = f"{dim}={value}".replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(t.slices.c.scope.like(f"%{pattern}%", escape="\\"))
        return [row.id for row in self.conn.execute(query) if scope_from_text(row.scope).refines(scope)]

    def slice(self, slice_id: str, lock: bool = False) -> Slice | None:
        found = self.slices([slice_id], lock=lock)
        return found[0] if found else None

    def slice_by_scope(self, scope: Scope) -> Slice | None:
        row = self.conn.execute(select(t.slices).where(t.slices.c.scope == scope.text)).first()
        return self._slice(row) if row else None

    def insert_slice(self, s: Slice) -> None:
        self.conn.execute(insert(t.slices).values(**self._slice_row(s)))

    def save_slice(self, s: Slice) -> None:
        row = self._slice_row(s)
        self.conn.execute(update(t.slices).where(t.slices.c.id == s.id).values(**row))

    def set_model_version(self, slice_id: str, model_version: str) -> None:
        self.conn.execute(
            update(t.slices).where(t.slices.c.id == slice_id).values(model_version=model_version)
        )

    def add_decision_counts(self, counts: dict[tuple[str, int], tuple[int, int]]) -> None:
        """Add (decisions, executed) to each slice's counters, if the slice is still on that attempt."""
        sl = t.slices
        for (slice_id, attempt), (n, executed) in sorted(counts.items()):  # one lock order for all writers
            self.conn.execute(
                update(sl)
                .where(and_(sl.c.id == slice_id, sl.c.attempt == attempt))
                .values(ev_decisions=sl.c.ev_decisions + n, ev_executed=sl.c.ev_executed + executed)
            )

    # kill switches ---------------------------------------------------------
    @staticmethod
    def _kill(row: Row[Any]) -> KillSwitch:
        m = row._mapping
        activated_by = _actor(m["activated_by"])
        assert activated_by is not None
        return KillSwitch(
            id=m["id"],
            scope=scope_from_text(m["scope"]),
            reason=m["reason"],
            active=bool(m["active"]),
            activated_by=activated_by,
            activated_at=m["activated_at"],
            deactivated_by=_actor(m["deactivated_by"]),
            deactivated_at=m["deactivated_at"],
            slice_id=m["slice_id"],
        )

    def kill_switches(self, active_only: bool = False) -> list[KillSwitch]:
        query = select(t.kill_switches).order_by(t.kill_switches.c.activated_at, t.kill_switches.c.id)
        if active_only:
            query = query.where(t.kill_switches.c.active.is_(True))
        return [self._kill(r) for r in self.conn.execute(query)]

    def kill_switch(self, kill_id: str, lock: bool = False) -> KillSwitch | None:
        query = select(t.kill_switches).where(t.kill_switches.c.id == kill_id)
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        return self._kill(row) if row else None

    def insert_kill_switch(self, k: KillSwitch) -> None:
        self.conn.execute(
            insert(t.kill_switches).values(
                id=k.id,
                scope=k.scope.text,
                reason=k.reason,
                active=k.active,
                activated_by=json.dumps(k.activated_by.to_dict()),
                activated_at=k.activated_at,
                slice_id=k.slice_id,
            )
        )

    def deactivate_kill_switch(self, k: KillSwitch, reason: str) -> None:
        assert k.deactivated_by is not None
        self.conn.execute(
            update(t.kill_switches)
            .where(t.kill_switches.c.id == k.id)
            .values(
                active=False,
                deactivated_by=json.dumps(k.deactivated_by.to_dict()),
                deactivated_at=k.deactivated_at,
                deactivate_reason=reason,
            )
        )

    # decisions -------------------------------------------------------------
    @staticmethod
    def _stored(row: Row[Any], slice_ids: dict[str, tuple[str, ...]] | None = None) -> StoredDecision:
        """A decision row (the columns of _STORED, in order); `slice_ids` memoises the decoded id lists,
        which repeat across a batch."""
        values: tuple[Any, ...] = tuple(row)
        pk, decision_id, tenant, body, mode, execute, ids_text, reason, kill_id, verdict, *rest = values
        out_disposition, out_source, first_review_seq, review = rest
        ids = slice_ids.get(ids_text) if slice_ids is not None else None
        if ids is None:
            ids = tuple(json.loads(ids_text))
            if slice_ids is not None:
                slice_ids[ids_text] = ids
        answer = Answer(_MODES[mode], bool(execute), ids, reason, kill_id, review=bool(review))
        return StoredDecision(
            pk,
            decision_id,
            tenant,
            body,
            answer,
            verdict,
            out_disposition,
            out_source,
            first_review_seq,
            bool(review),
        )

    def decisions_by_id(self, decision_ids: Sequence[str], lock: bool = False) -> dict[str, StoredDecision]:
        """Recorded decisions by id; `lock` holds their rows (in key order) until the transaction ends."""
        found: dict[str, StoredDecision] = {}
        memo: dict[str, tuple[str, ...]] = {}
        sqlite = self.conn.dialect.name == "sqlite"
        for start in range(0, len(decision_ids), 500):
            chunk = list(decision_ids[start : start + 500])
            if sqlite:  # plain text and integers: the driver alone (no locks to take on SQLite)
                marks = ", ".join("?" * len(chunk))
                for row in self.conn.exec_driver_sql(
                    f"{_STORED_SQL} WHERE decision_id IN ({marks})", tuple(chunk)
                ).fetchall():
                    stored = self._stored(row, memo)
                    found[stored.decision_id] = stored
                continue
            query = select(*_STORED).where(t.decisions.c.decision_id.in_(chunk))
            if lock:
                query = query.order_by(t.decisions.c.pk).with_for_update()
            for row in self.conn.execute(query):
                stored = self._stored(row, memo)
                found[stored.decision_id] = stored
        return found

    def latest_decision_for_alert(
        self, tenant: str, alert_id: str, lock: bool = False
    ) -> StoredDecision | None:
        query = (
            select(*_STORED)
            .where(and_(t.decisions.c.tenant == tenant, t.decisions.c.alert_id == alert_id))
            .order_by(t.decisions.c.decided_at.desc(), t.decisions.c.pk.desc())
            .limit(1)
        )
        row = self.conn.execute(query.with_for_update() if lock else query).first()
        return self._stored(row) if row else None

    def _insert_numbered(self, table: Any, key: Any, columns: Columns) -> list[int]:
        """Insert rows, given column by column, in order; their integer keys in the same order.

        SQLite has one writer at a time (BEGIN IMMEDIATE), so the keys can be handed out here and the
        rows sent with one executemany; elsewhere the database assigns them and RETURNING reports them.
        """
        count = _count(columns)
        if not count:
            return []
        if self.conn.dialect.name == "sqlite":
            first = int(self.conn.execute(select(func.coalesce(func.max(key), 0))).scalar_one()) + 1
            numbers = list(range(first, first + count))
            self._insert_many(table, {**columns, key.name: numbers})
            return numbers
        result = self.conn.execute(insert(table).returning(key, sort_by_parameter_order=True), _rows(columns))
        return [int(r[0]) for r in result]

    def _insert_many(self, table: Any, columns: Columns) -> None:
        """One driver-level executemany (SQLite) of rows given column by column.

        Values go through each column's own bind processing, as SQLAlchemy would apply it; what is skipped
        is its per-row statement machinery, which cost more than the database's own work.
        """
        count = _count(columns)
        dialect = self.conn.dialect
        names = [n for n in columns if n in table.c]
        values = [_bound(columns[name], table.c[name].type.bind_processor(dialect)) for name in names]
        for name, column in table.c.items():
            if name not in columns and column.default is not None and column.default.is_scalar:
                names.append(name)
                values.append([column.default.arg] * count)
        quote = dialect.identifier_preparer.quote
        sql = (
            f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
            f"VALUES ({', '.join('?' for _ in names)})"
        )
        self.conn.exec_driver_sql(sql, list(zip(*values, strict=True)))

    def insert_decisions(self, columns: Columns) -> list[int]:
        """Insert decisions, given column by column, in order; their primary keys, in the same order."""
        return self._insert_numbered(t.decisions, t.decisions.c.pk, columns)

    def insert_grants(self, columns: Columns) -> None:
        """Insert evidence rows (decision_pk, slice_id, attempt, executed), given column by column."""
        if not _count(columns):
            return
        if self.conn.dialect.name == "sqlite":
            self._insert_many(t.decision_slices, columns)
        else:
            self.conn.execute(insert(t.decision_slices), _rows(columns))

    def grants_of(self, decision_pks: Sequence[int]) -> dict[int, list[Grant]]:
        """Where each decision counts as evidence, for many decisions at once."""
        ds = t.decision_slices
        found: dict[int, list[Grant]] = {pk: [] for pk in decision_pks}
        unique = list(found)
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            query = select(ds.c.decision_pk, ds.c.slice_id, ds.c.attempt, ds.c.executed).where(
                ds.c.decision_pk.in_(chunk)
            )
            for pk, slice_id, attempt, executed in self.conn.execute(query).fetchall():
                found[pk].append(Grant(slice_id, attempt, bool(executed)))
        return found

    # outcomes --------------------------------------------------------------
    def insert_outcomes(self, columns: Columns) -> list[int]:
        """Insert outcomes, given column by column, in order; their sequence numbers, in the same order."""
        return self._insert_numbered(t.outcomes, t.outcomes.c.seq, columns)

    def cache_latest_outcomes(self, latest: list[dict[str, Any]]) -> None:
        """Write each decision's latest outcome (b_pk, b_disposition, b_source, b_seq, b_first_review_seq)."""
        if latest and self.conn.dialect.name == "sqlite":  # plain text and integers: no bind processing
            self.conn.exec_driver_sql(
                "UPDATE decisions SET out_disposition = ?, out_source = ?, out_seq = ?, first_review_seq = ? "
                "WHERE pk = ?",
                [
                    (r["b_disposition"], r["b_source"], r["b_seq"], r["b_first_review_seq"], r["b_pk"])
                    for r in latest
                ],
            )
        elif latest:
            d = t.decisions
            self.conn.execute(
                update(d)
                .where(d.c.pk == bindparam("b_pk"))
                .values(
                    out_disposition=bindparam("b_disposition"),
                    out_source=bindparam("b_source"),
                    out_seq=bindparam("b_seq"),
                    first_review_seq=bindparam("b_first_review_seq"),
                ),
                latest,
            )

    def attempt_history(
        self, slice_id: str, attempt: int, upto_seq: int | None = None
    ) -> tuple[int, int, list[OutcomeRow]]:
        """From the source of truth: (decisions, executed, outcomes of executed decisions by seq)."""
        ds, o = t.decision_slices, t.outcomes
        counts = self.conn.execute(
            select(
                func.count(), func.coalesce(func.sum(case((ds.c.executed.is_(True), 1), else_=0)), 0)
            ).where(and_(ds.c.slice_id == slice_id, ds.c.attempt == attempt))
        ).one()
        d = t.decisions
        query = (
            select(o.c.decision_pk, o.c.seq, o.c.disposition, o.c.source, d.c.review)
            .join(ds, ds.c.decision_pk == o.c.decision_pk)
            .join(d, d.c.pk == o.c.decision_pk)
            .where(and_(ds.c.slice_id == slice_id, ds.c.attempt == attempt, ds.c.executed.is_(True)))
            .order_by(o.c.seq)
        )
        if upto_seq is not None:
            query = query.where(o.c.seq <= upto_seq)
        history = [
            OutcomeRow(r.decision_pk, r.seq, r.disposition, r.source, bool(r.review))
            for r in self.conn.execute(query)
        ]
        return int(counts[0]), int(counts[1]), history

    def unreviewed_closures(self, slice_id: str, attempt: int) -> list[dict[str, Any]]:
        """Executed closes of an attempt that have no outcome yet, oldest first."""
        d, ds = t.decisions, t.decision_slices
        query = (
            select(d.c.decision_id, d.c.alert_id, d.c.tenant, d.c.decided_at, d.c.review)
            .join(ds, ds.c.decision_pk == d.c.pk)
            .where(and_(ds.c.slice_id == slice_id, ds.c.attempt == attempt, ds.c.executed.is_(True)))
            .where(d.c.out_seq.is_(None))
            .order_by(d.c.decided_at, d.c.pk)
        )
        return [dict(r._mapping) for r in self.conn.execute(query)]

    def shadow_rows(self, since: datetime, tenant: str | None) -> list[ShadowRow]:
        """Shadow answers (not killed) since a moment, grouped by alert, verdict and latest outcome."""
        d = t.decisions
        query = (
            select(d.c.dims, d.c.verdict, d.c.out_disposition, func.count().label("n"))
            .where(and_(d.c.mode == Mode.SHADOW.value, d.c.decided_at >= since))
            .group_by(d.c.dims, d.c.verdict, d.c.out_disposition)
        )
        if tenant is not None:
            query = query.where(d.c.tenant == tenant)
        return [
            ShadowRow(json.loads(r.dims), r.verdict, r.out_disposition, int(r.n))
            for r in self.conn.execute(query)
        ]

    # audit -----------------------------------------------------------------
    def append_event(self, at: datetime, type_: str, actor: Actor, about: EventSubject) -> AuditEvent:
        """Append one event to the chain; the head row's lock keeps the chain linear."""
        head = self._meta(_HEAD_KEY, lock=True)
        seq, prev = (int(head.split(":")[0]), head.split(":")[1]) if head else (0, GENESIS)
        actor_dict = actor.to_dict()
        body: dict[str, Any] = {
            "seq": seq + 1,
            "at": iso(at),
            "type": type_,
            "actor": actor_dict,
            "slice_id": about.slice_id,
            "scope": about.scope,
            "payload": about.payload,
        }
        digest = event_hash(prev, body)
        self.conn.execute(
            insert(t.audit_events).values(
                seq=seq + 1,
                at=body["at"],
                at_key=at,
                type=type_,
                actor=json.dumps(actor_dict, sort_keys=True),
                slice_id=body["slice_id"],
                scope=body["scope"],
                payload=json.dumps(about.payload, sort_keys=True),
                prev_hash=prev,
                hash=digest,
            )
        )
        self._set_meta(_HEAD_KEY, f"{seq + 1}:{digest}")
        self._enqueue(seq + 1, type_, at)
        return AuditEvent(
            seq + 1,
            str(body["at"]),
            type_,
            body["actor"],
            about.slice_id,
            about.scope,
            about.payload,
            prev,
            digest,
        )

    @staticmethod
    def _event(row: Row[Any]) -> AuditEvent:
        m = row._mapping
        return AuditEvent(
            m["seq"],
            m["at"],
            m["type"],
            json.loads(m["actor"]),
            m["slice_id"],
            m["scope"],
            json.loads(m["payload"]),
            m["prev_hash"],
            m["hash"],
        )

    def events(self, filters: AuditFilter | None = None) -> list[AuditEvent]:
        e = t.audit_events
        f = filters or AuditFilter()
        query = select(e).order_by(e.c.seq.desc() if f.newest_first else e.c.seq)
        if f.slice_id is not None:
            query = query.where(e.c.slice_id == f.slice_id)
        if f.type is not None:
            query = query.where(e.c.type == f.type)
        if f.since is not None:
            query = query.where(e.c.at_key >= f.since)
        if f.until is not None:
            query = query.where(e.c.at_key < f.until)
        if f.after_seq is not None:
            query = query.where(e.c.seq > f.after_seq)
        if f.before_seq is not None:
            query = query.where(e.c.seq < f.before_seq)
        if f.limit is not None:
            query = query.limit(f.limit)
        return [self._event(r) for r in self.conn.execute(query)]

    def head(self) -> tuple[int, str]:
        row = self.conn.execute(
            select(t.audit_events.c.seq, t.audit_events.c.hash).order_by(t.audit_events.c.seq.desc()).limit(1)
        ).first()
        return (int(row.seq), str(row.hash)) if row else (0, GENESIS)

    # webhooks ---------------------------------------------------------------
    def _enqueue(self, seq: int, type_: str, at: datetime) -> None:
        """Outbox rows for the webhooks subscribed to this event, in the event's own transaction."""
        if self._hooks is None:
            w = t.webhooks
            rows = self.conn.execute(select(w.c.id, w.c.events).where(w.c.removed_at.is_(None)))
            self._hooks = [(r.id, frozenset(json.loads(r.events))) for r in rows]
        due = [
            {"webhook_id": hook, "event_seq": seq, "status": "pending", "attempts": 0, "next_at": at}
            for hook, types in self._hooks
            if type_ in types or "*" in types
        ]
        if due:
            self.conn.execute(insert(t.webhook_outbox), due)

    def insert_webhook(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(t.webhooks).values(**row))
        self._hooks = None

    def webhooks(self, include_removed: bool = False) -> list[dict[str, Any]]:
        w = t.webhooks
        query = select(w).order_by(w.c.created_at, w.c.id)
        if not include_removed:
            query = query.where(w.c.removed_at.is_(None))
        return [dict(r._mapping) for r in self.conn.execute(query)]

    def remove_webhook(self, webhook_id: str, at: datetime) -> bool:
        w = t.webhooks
        done = self.conn.execute(
            update(w).where(and_(w.c.id == webhook_id, w.c.removed_at.is_(None))).values(removed_at=at)
        )
        o = t.webhook_outbox
        self.conn.execute(
            update(o)
            .where(and_(o.c.webhook_id == webhook_id, o.c.status == "pending"))
            .values(status="dead", last_error="webhook removed")
        )
        self._hooks = None
        return bool(done.rowcount)

    def deliveries(self, status: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        o = t.webhook_outbox
        query = select(o).order_by(o.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(o.c.status == status)
        return [dict(r._mapping) for r in self.conn.execute(query)]

    def claim_deliveries(self, now: datetime, lease_until: datetime, limit: int) -> list[dict[str, Any]]:
        """Due pending deliveries, leased to this worker until `lease_until` (re-sent if it dies)."""
        o, w = t.webhook_outbox, t.webhooks
        query = (
            select(o.c.id, o.c.event_seq, o.c.attempts, w.c.url, w.c.secret)
            .join(w, w.c.id == o.c.webhook_id)
            .where(and_(o.c.status == "pending", o.c.next_at <= now, w.c.removed_at.is_(None)))
            .order_by(o.c.next_at, o.c.id)
            .limit(limit)
            .with_for_update(of=o, skip_locked=True)  # replicas delivering at once take different rows
        )
        rows = [dict(r._mapping) for r in self.conn.execute(query)]
        for row in rows:
            self.conn.execute(
                update(o).where(o.c.id == row["id"]).values(next_at=lease_until, attempts=row["attempts"] + 1)
            )
        return rows

    def finish_delivery(self, delivery_id: int, values: dict[str, Any]) -> None:
        o = t.webhook_outbox
        self.conn.execute(update(o).where(o.c.id == delivery_id).values(**values))

    def event(self, seq: int) -> AuditEvent | None:
        row = self.conn.execute(select(t.audit_events).where(t.audit_events.c.seq == seq)).first()
        return self._event(row) if row else None

    def event_counts(self) -> dict[str, int]:
        e = t.audit_events
        rows = self.conn.execute(select(e.c.type, func.count()).group_by(e.c.type))
        return {str(r[0]): int(r[1]) for r in rows}

    def outbox_backlog(self) -> int:
        o = t.webhook_outbox
        query = select(func.count()).select_from(o).where(o.c.status == "pending")
        return int(self.conn.execute(query).scalar_one())

    # tokens ----------------------------------------------------------------
    def insert_token(self, row: dict[str, Any]) -> None:
        self.conn.execute(insert(t.tokens).values(**row))

    def tokens(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(select(t.tokens).order_by(t.tokens.c.created_at, t.tokens.c.id))
        return [dict(r._mapping) for r in rows]

    def token(self, token_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(select(t.tokens).where(t.tokens.c.id == token_id)).first()
        return dict(row._mapping) if row else None

    def token_by_hash(self, secret_hash: str) -> dict[str, Any] | None:
        row = self.conn.execute(select(t.tokens).where(t.tokens.c.secret_hash == secret_hash)).first()
        return dict(row._mapping) if row else None

    def active_token_hashes(self, secret_hashes: Collection[str]) -> set[str]:
        """Those of these secret hashes that name a token not revoked, as this transaction reads them."""
        if not secret_hashes:
            return set()
        tk = t.tokens
        query = select(tk.c.secret_hash).where(
            tk.c.secret_hash.in_(list(secret_hashes)), tk.c.revoked_at.is_(None)
        )
        return {row[0] for row in self.conn.execute(query)}

    def revoke_token(self, token_id: str, at: datetime) -> None:
        self.conn.execute(update(t.tokens).where(t.tokens.c.id == token_id).values(revoked_at=at))

    def token_count(self) -> int:
        return int(self.conn.execute(select(func.count()).select_from(t.tokens)).scalar_one())


@dataclass(frozen=True)
class EventSubject:
    """What an audit event is about: a slice and/or a scope, and its payload."""

    slice_id: str | None
    scope: str | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class AuditFilter:
    slice_id: str | None = None
    type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after_seq: int | None = None
    before_seq: int | None = None
    limit: int | None = None
    newest_first: bool = False
