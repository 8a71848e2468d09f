"""Read-only SQL for the dashboard: a slice attempt's activity per day, recent audit events, known values."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, case, func, select

from tether.store import tables as t

_DAY = 10  # characters of `YYYY-MM-DD` at the start of a stored UtcTime


@dataclass(frozen=True)
class DayCount:
    """Decisions, executed decisions and analyst reviews of one slice attempt on one UTC day."""

    day: str
    decisions: int = 0
    executed: int = 0
    reviews: int = 0


@dataclass(frozen=True)
class ReviewMoment:
    """When Tether recorded one outcome of an executed decision of the attempt (seq order)."""

    seq: int
    recorded_at: datetime


def daily_counts(conn: Connection, slice_id: str, attempt: int) -> list[DayCount]:
    """Per UTC day: the attempt's decisions (by decided_at), executions, and reviews (by recorded_at)."""
    ds, d, o = t.decision_slices, t.decisions, t.outcomes
    attempt_of = and_(ds.c.slice_id == slice_id, ds.c.attempt == attempt)
    day = func.substr(d.c.decided_at, 1, _DAY)
    made = conn.execute(
        select(day, func.count(), func.coalesce(func.sum(case((ds.c.executed.is_(True), 1), else_=0)), 0))
        .join(ds, ds.c.decision_pk == d.c.pk)
        .where(attempt_of)
        .group_by(day)
    ).all()
    review_day = func.substr(o.c.recorded_at, 1, _DAY)
    reviewed = conn.execute(
        select(review_day, func.count())
        .join(ds, ds.c.decision_pk == o.c.decision_pk)
        .where(and_(attempt_of, ds.c.executed.is_(True), o.c.source == "review"))
        .group_by(review_day)
    ).all()
    days: dict[str, DayCount] = {str(r[0]): DayCount(str(r[0]), int(r[1]), int(r[2])) for r in made}
    for row in reviewed:
        key = str(row[0])
        before = days.get(key, DayCount(key))
        days[key] = DayCount(key, before.decisions, before.executed, int(row[1]))
    return [days[k] for k in sorted(days)]


def review_moments(conn: Connection, slice_id: str, attempt: int) -> list[ReviewMoment]:
    """Every outcome of the attempt's executed decisions, in seq order, with when it was recorded."""
    ds, o = t.decision_slices, t.outcomes
    rows = conn.execute(
        select(o.c.seq, o.c.recorded_at)
        .join(ds, ds.c.decision_pk == o.c.decision_pk)
        .where(and_(ds.c.slice_id == slice_id, ds.c.attempt == attempt, ds.c.executed.is_(True)))
        .order_by(o.c.seq)
    )
    return [ReviewMoment(int(r.seq), r.recorded_at) for r in rows]


def seen_dimension_values(conn: Connection, limit: int = 10_000) -> dict[str, set[str]]:
    """The values each dimension took in recorded decisions (from at most `limit` distinct alerts' dims)."""
    found: dict[str, set[str]] = {}
    for (dims,) in conn.execute(select(t.decisions.c.dims).distinct().limit(limit)):
        for name, value in json.loads(dims).items():
            found.setdefault(str(name), set()).add(str(value))
    return found
