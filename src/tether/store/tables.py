"""SQLAlchemy Core tables; timestamps are fixed-width UTC text so they sort and compare everywhere."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect


class UtcTime(TypeDecorator[datetime]):
    """An aware datetime stored as `YYYY-MM-DDTHH:MM:SS.ffffffZ`."""

    impl = String(27)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if value.tzinfo is not UTC:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return datetime.fromisoformat(str(value)[:-1]).replace(tzinfo=UTC)


metadata = MetaData()

meta = Table(
    "tether_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

slices = Table(
    "slices",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("scope", Text, nullable=False, unique=True),
    Column("state", String(16), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("created_at", UtcTime, nullable=False),
    Column("canary_started_at", UtcTime),
    Column("promoted_at", UtcTime),
    Column("rolled_back_at", UtcTime),
    Column("held_at", UtcTime),
    Column("kill_switch_id", String(40)),
    Column("policy_overrides", Text, nullable=False),
    Column("ev_decisions", Integer, nullable=False),
    Column("ev_executed", Integer, nullable=False),
    Column("ev_missed_tp", Integer, nullable=False),
    Column("ev_correct", Integer, nullable=False),
    Column("ev_incorrect", Integer, nullable=False),
    Column("ev_log_e_rb", Float, nullable=False),
    Column("ev_log_e_pr", Float, nullable=False),
    Column("model_version", String(200)),  # the model whose evidence this attempt gathers
    Column("would_promote_at", UtcTime),  # dry run: noted once per attempt
    Column("would_roll_back_at", UtcTime),
    Column("ev_other_reviews", Integer, nullable=False, default=0),  # reviews not counted (review_from)
)

kill_switches = Table(
    "kill_switches",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("scope", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("activated_by", Text, nullable=False),
    Column("activated_at", UtcTime, nullable=False),
    Column("deactivated_by", Text),
    Column("deactivated_at", UtcTime),
    Column("deactivate_reason", Text),
    Column("slice_id", String(40)),
)

decisions = Table(
    "decisions",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("decision_id", String(200), nullable=False, unique=True),
    Column("alert_id", String(200), nullable=False),
    Column("tenant", String(200), nullable=False),
    Column("dims", Text, nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("confidence", Float),
    Column("model_version", String(200)),
    Column("decided_at", UtcTime, nullable=False),
    Column("recorded_at", UtcTime, nullable=False),
    Column("body", Text, nullable=False),
    Column("mode", String(16), nullable=False),
    Column("execute", Boolean, nullable=False),
    Column("slice_ids", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("kill_switch_id", String(40)),
    Column("review", Boolean, nullable=False, default=False),  # sampled for an analyst's review
    # Cache of the latest outcome; the outcomes table is the source of truth.
    Column("out_disposition", String(20)),
    Column("out_source", String(200)),
    Column("out_seq", Integer),
    Column("first_review_seq", Integer),
    Index("ix_decisions_tenant_alert", "tenant", "alert_id"),
    Index("ix_decisions_mode_decided", "mode", "decided_at"),
)

decision_slices = Table(
    "decision_slices",
    metadata,
    Column("decision_pk", Integer, ForeignKey("decisions.pk"), primary_key=True),
    Column("slice_id", String(40), primary_key=True),
    Column("attempt", Integer, nullable=False),
    Column("executed", Boolean, nullable=False),
    Index("ix_decision_slices_slice", "slice_id", "attempt"),
)

outcomes = Table(
    "outcomes",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("decision_pk", Integer, ForeignKey("decisions.pk"), nullable=False),
    Column("disposition", String(20), nullable=False),
    Column("source", String(200), nullable=False),
    Column("reviewer", String(200)),
    Column("observed_at", UtcTime, nullable=False),
    Column("recorded_at", UtcTime, nullable=False),
    Index("ix_outcomes_decision", "decision_pk"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", String(40), nullable=False),  # as hashed: RFC 3339 text
    Column("at_key", UtcTime, nullable=False),  # the same instant, fixed width, for range filters
    Column("type", String(64), nullable=False),
    Column("actor", Text, nullable=False),
    Column("slice_id", String(40)),
    Column("scope", Text),
    Column("payload", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_slice", "slice_id"),
    Index("ix_audit_type", "type"),
    Index("ix_audit_at", "at_key"),
)

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),  # JSON list of event types
    Column("secret", Text, nullable=False),  # the HMAC key; it signs, so it cannot be stored hashed
    Column("created_at", UtcTime, nullable=False),
    Column("removed_at", UtcTime),
)

webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("webhook_id", String(40), nullable=False),
    Column("event_seq", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # pending, delivered, dead
    Column("attempts", Integer, nullable=False),
    Column("next_at", UtcTime, nullable=False),
    Column("last_error", Text),
    Column("delivered_at", UtcTime),
    Index("ix_outbox_due", "status", "next_at"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200)),
    Column("role", String(16), nullable=False),
    Column("tenants", Text, nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", UtcTime, nullable=False),
    Column("revoked_at", UtcTime),
)
