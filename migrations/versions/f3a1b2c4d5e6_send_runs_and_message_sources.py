"""Send runs hold the counters (a campaign reads its run's); every message records its source and, for campaign
messages, its run; one message per (run, contact)

Revision ID: f3a1b2c4d5e6
Revises: e2b8f4c6a1d3
Create Date: 2026-12-07 21:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "f3a1b2c4d5e6"
down_revision = "e2b8f4c6a1d3"
branch_labels = None
depends_on = None

COUNTERS = ("targeted", "skipped", "sent", "delivered", "read", "failed", "replied")


def upgrade():
    op.create_table(
        "send_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=24), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("phone_number_id", sa.String(length=64), nullable=False),
        *[sa.Column(name, sa.Integer(), nullable=False) for name in COUNTERS],
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name=op.f("fk_send_runs_campaign_id_campaigns"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_send_runs")),
        sa.UniqueConstraint("campaign_id", name=op.f("uq_send_runs_campaign_id")),
    )
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("run_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("source", sa.String(length=24), nullable=False, server_default="campaign"))
    _backfill()
    with op.batch_alter_table("messages") as batch_op:
        batch_op.alter_column("source", server_default=None)
        batch_op.create_foreign_key(batch_op.f("fk_messages_run_id_send_runs"), "send_runs", ["run_id"], ["id"],
                                    ondelete="SET NULL")
        batch_op.drop_constraint("uq_messages_campaign_id_contact_id", type_="unique")
        batch_op.create_unique_constraint(batch_op.f("uq_messages_run_id_contact_id"), ["run_id", "contact_id"])
        batch_op.create_index("ix_messages_run_id_status_next_attempt_at", ["run_id", "status", "next_attempt_at"])
    with op.batch_alter_table("campaigns") as batch_op:
        for name in COUNTERS:
            batch_op.drop_column(name)


def _backfill():
    """Every launched campaign gets its run with the counters it had; its messages join the run; campaign-less
    messages take their source from the purpose they were stored with, inbound ones are marked inbound."""
    counters = ", ".join(COUNTERS)
    op.execute(f"INSERT INTO send_runs (source, campaign_id, phone_number_id, {counters}, created_at) "
               f"SELECT 'campaign', id, phone_number_id, {counters}, COALESCE(started_at, created_at) FROM campaigns "
               f"WHERE status <> 'draft' OR targeted > 0")
    op.execute("UPDATE messages SET run_id = (SELECT send_runs.id FROM send_runs "
               "WHERE send_runs.campaign_id = messages.campaign_id) WHERE campaign_id IS NOT NULL")
    purpose = ("parameters->>'purpose'" if op.get_bind().dialect.name == "postgresql"
               else "json_extract(parameters, '$.purpose')")
    op.execute("UPDATE messages SET source = 'inbound' WHERE direction = 'in'")
    op.execute(f"UPDATE messages SET source = {purpose} WHERE direction = 'out' AND campaign_id IS NULL "
               f"AND {purpose} IN ('inbox_reply', 'auto_reply', 'opt_out_confirmation')")


def downgrade():
    with op.batch_alter_table("campaigns") as batch_op:
        for name in COUNTERS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
    for name in COUNTERS:
        op.execute(f"UPDATE campaigns SET {name} = COALESCE((SELECT send_runs.{name} FROM send_runs "
                   f"WHERE send_runs.campaign_id = campaigns.id), 0)")
    with op.batch_alter_table("campaigns") as batch_op:
        for name in COUNTERS:
            batch_op.alter_column(name, server_default=None)
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_index("ix_messages_run_id_status_next_attempt_at")
        batch_op.drop_constraint("uq_messages_run_id_contact_id", type_="unique")
        batch_op.create_unique_constraint("uq_messages_campaign_id_contact_id", ["campaign_id", "contact_id"])
        batch_op.drop_constraint("fk_messages_run_id_send_runs", type_="foreignkey")
        batch_op.drop_column("source")
        batch_op.drop_column("run_id")
    op.drop_table("send_runs")
