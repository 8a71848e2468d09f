"""The evidence loop (DESIGN §9): review sampling, model version per attempt, dry-run notes, webhooks.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tether.store.tables import UtcTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN works in place on both engines (no table rebuild, foreign keys untouched).
    op.add_column("decisions", sa.Column("review", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("slices", sa.Column("model_version", sa.String(200)))
    op.add_column("slices", sa.Column("would_promote_at", UtcTime))
    op.add_column("slices", sa.Column("would_roll_back_at", UtcTime))
    op.add_column("slices", sa.Column("ev_other_reviews", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("events", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("created_at", UtcTime, nullable=False),
        sa.Column("removed_at", UtcTime),
    )
    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("webhook_id", sa.String(40), nullable=False),
        sa.Column("event_seq", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_at", UtcTime, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("delivered_at", UtcTime),
    )
    op.create_index("ix_outbox_due", "webhook_outbox", ["status", "next_at"])


def downgrade() -> None:
    op.drop_table("webhook_outbox")
    op.drop_table("webhooks")
    with op.batch_alter_table("slices") as batch:
        batch.drop_column("ev_other_reviews")
        batch.drop_column("would_roll_back_at")
        batch.drop_column("would_promote_at")
        batch.drop_column("model_version")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("review")
