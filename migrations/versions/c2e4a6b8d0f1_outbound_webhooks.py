"""Outbound webhooks: endpoints, the event outbox and deliveries

Revision ID: c2e4a6b8d0f1
Revises: b7d1e3f5a9c2
Create Date: 2026-12-07 23:45:00

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "c2e4a6b8d0f1"
down_revision = "b7d1e3f5a9c2"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
WHEN = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "outbound_endpoints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("events", JSON_DOCUMENT, nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("failing_since", WHEN, nullable=True),
        sa.Column("disabled_reason", sa.String(length=500), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"],
                                name=op.f("fk_outbound_endpoints_created_by_id_users"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_endpoints")),
    )
    with op.batch_alter_table("outbound_endpoints", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbound_endpoints_enabled"), ["enabled"], unique=False)
    op.create_table(
        "outbound_events",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("event_type", sa.String(length=40), nullable=False),
        sa.Column("occurred_at", WHEN, nullable=False),
        sa.Column("payload", JSON_DOCUMENT, nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("fanned_out_at", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_events")),
    )
    with op.batch_alter_table("outbound_events", schema=None) as batch_op:
        batch_op.create_index("ix_outbound_events_fanned_out_at_id", ["fanned_out_at", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbound_events_created_at"), ["created_at"], unique=False)
    op.create_table(
        "outbound_deliveries",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("event_id", BIG_ID, nullable=False),
        sa.Column("endpoint_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", WHEN, nullable=True),
        sa.Column("last_attempt_at", WHEN, nullable=True),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=255), nullable=True),
        sa.Column("delivered_at", WHEN, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.ForeignKeyConstraint(["endpoint_id"], ["outbound_endpoints.id"],
                                name=op.f("fk_outbound_deliveries_endpoint_id_outbound_endpoints"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["event_id"], ["outbound_events.id"],
                                name=op.f("fk_outbound_deliveries_event_id_outbound_events"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_deliveries")),
        sa.UniqueConstraint("event_id", "endpoint_id", name=op.f("uq_outbound_deliveries_event_id")),
    )
    with op.batch_alter_table("outbound_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_outbound_deliveries_status_next_attempt_at", ["status", "next_attempt_at"],
                              unique=False)
        batch_op.create_index("ix_outbound_deliveries_endpoint_id_id", ["endpoint_id", "id"], unique=False)


def downgrade():
    with op.batch_alter_table("outbound_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_outbound_deliveries_endpoint_id_id")
        batch_op.drop_index("ix_outbound_deliveries_status_next_attempt_at")
    op.drop_table("outbound_deliveries")
    with op.batch_alter_table("outbound_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbound_events_created_at"))
        batch_op.drop_index("ix_outbound_events_fanned_out_at_id")
    op.drop_table("outbound_events")
    with op.batch_alter_table("outbound_endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbound_endpoints_enabled"))
    op.drop_table("outbound_endpoints")
