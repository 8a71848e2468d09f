"""Initial schema: slices, kill switches, decisions, outcomes, the append-only audit trail, tokens.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tether.store.tables import UtcTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_APPEND_ONLY_SQLITE = """
CREATE TRIGGER audit_events_no_{op} BEFORE {OP} ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: {OP} refused'); END
"""

# INSERT OR REPLACE deletes the old row without firing DELETE triggers: refuse reusing a seq.
_NO_REPLACE_SQLITE = """
CREATE TRIGGER audit_events_no_replace BEFORE INSERT ON audit_events
WHEN EXISTS (SELECT 1 FROM audit_events WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'audit_events is append-only: seq already used'); END
"""

_APPEND_ONLY_PG = [
    """CREATE OR REPLACE FUNCTION tether_audit_append_only() RETURNS trigger AS $$
    BEGIN RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP; END;
    $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION tether_audit_append_only()""",
    """CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION tether_audit_append_only()""",
]


def upgrade() -> None:
    op.create_table(
        "tether_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "slices",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("scope", sa.Text, nullable=False, unique=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("created_at", UtcTime, nullable=False),
        sa.Column("canary_started_at", UtcTime),
        sa.Column("promoted_at", UtcTime),
        sa.Column("rolled_back_at", UtcTime),
        sa.Column("held_at", UtcTime),
        sa.Column("kill_switch_id", sa.String(40)),
        sa.Column("policy_overrides", sa.Text, nullable=False),
        *(sa.Column(f"ev_{n}", sa.Integer, nullable=False) for n in ("decisions", "executed", "missed_tp")),
        *(sa.Column(f"ev_{n}", sa.Integer, nullable=False) for n in ("correct", "incorrect")),
        sa.Column("ev_log_e_rb", sa.Float, nullable=False),
        sa.Column("ev_log_e_pr", sa.Float, nullable=False),
    )
    op.create_table(
        "kill_switches",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("activated_by", sa.Text, nullable=False),
        sa.Column("activated_at", UtcTime, nullable=False),
        sa.Column("deactivated_by", sa.Text),
        sa.Column("deactivated_at", UtcTime),
        sa.Column("deactivate_reason", sa.Text),
        sa.Column("slice_id", sa.String(40)),
    )
    op.create_table(
        "decisions",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("decision_id", sa.String(200), nullable=False, unique=True),
        sa.Column("alert_id", sa.String(200), nullable=False),
        sa.Column("tenant", sa.String(200), nullable=False),
        sa.Column("dims", sa.Text, nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("confidence", sa.Float),
        sa.Column("model_version", sa.String(200)),
        sa.Column("decided_at", UtcTime, nullable=False),
        sa.Column("recorded_at", UtcTime, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("execute", sa.Boolean, nullable=False),
        sa.Column("slice_ids", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("kill_switch_id", sa.String(40)),
        sa.Column("out_disposition", sa.String(20)),
        sa.Column("out_source", sa.String(200)),
        sa.Column("out_seq", sa.Integer),
        sa.Column("first_review_seq", sa.Integer),
    )
    op.create_index("ix_decisions_tenant_alert", "decisions", ["tenant", "alert_id"])
    op.create_index("ix_decisions_mode_decided", "decisions", ["mode", "decided_at"])
    op.create_table(
        "decision_slices",
        sa.Column("decision_pk", sa.Integer, sa.ForeignKey("decisions.pk"), primary_key=True),
        sa.Column("slice_id", sa.String(40), primary_key=True),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("executed", sa.Boolean, nullable=False),
    )
    op.create_index("ix_decision_slices_slice", "decision_slices", ["slice_id", "attempt"])
    op.create_table(
        "outcomes",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("decision_pk", sa.Integer, sa.ForeignKey("decisions.pk"), nullable=False),
        sa.Column("disposition", sa.String(20), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("reviewer", sa.String(200)),
        sa.Column("observed_at", UtcTime, nullable=False),
        sa.Column("recorded_at", UtcTime, nullable=False),
    )
    op.create_index("ix_outcomes_decision", "outcomes", ["decision_pk"])
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("at_key", UtcTime, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("slice_id", sa.String(40)),
        sa.Column("scope", sa.Text),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_slice", "audit_events", ["slice_id"])
    op.create_index("ix_audit_type", "audit_events", ["type"])
    op.create_index("ix_audit_at", "audit_events", ["at_key"])
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200)),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("tenants", sa.Text, nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", UtcTime, nullable=False),
        sa.Column("revoked_at", UtcTime),
    )
    if op.get_bind().dialect.name == "postgresql":
        for statement in _APPEND_ONLY_PG:
            op.execute(statement)
    else:
        for name in ("update", "delete"):
            op.execute(_APPEND_ONLY_SQLITE.format(op=name, OP=name.upper()))
        op.execute(_NO_REPLACE_SQLITE)


def downgrade() -> None:
    for table in (
        "tokens",
        "audit_events",
        "outcomes",
        "decision_slices",
        "decisions",
        "kill_switches",
        "slices",
    ):
        op.drop_table(table)
    op.drop_table("tether_meta")
