"""Account problems from account_update webhooks; the customer's marketing preference on contacts; Meta's own words
on a template rejection

Revision ID: b5d7f9a1c3e5
Revises: a4c6e8f0b2d4
Create Date: 2026-12-07 23:30:00

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "b5d7f9a1c3e5"
down_revision = "a4c6e8f0b2d4"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "account_problems",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("phone_number_id", sa.String(length=64), nullable=True),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("blocks", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                  nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("account_problems", schema=None) as batch_op:
        batch_op.create_index("ix_account_problems_open", ["lifted_at", "phone_number_id"], unique=False)
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("marketing_preference", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("marketing_preference_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("message_templates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_detail", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("message_templates", schema=None) as batch_op:
        batch_op.drop_column("status_detail")
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("marketing_preference_at")
        batch_op.drop_column("marketing_preference")
    with op.batch_alter_table("account_problems", schema=None) as batch_op:
        batch_op.drop_index("ix_account_problems_open")
    op.drop_table("account_problems")
