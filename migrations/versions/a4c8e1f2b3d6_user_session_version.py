"""A per-user session version, part of the sign-in identity: raising it ends every session and remember cookie

Revision ID: a4c8e1f2b3d6
Revises: f3a1b2c4d5e6
Create Date: 2026-12-09 10:00:00

"""

import sqlalchemy as sa
from alembic import op

revision = "a4c8e1f2b3d6"
down_revision = "f3a1b2c4d5e6"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("session_version", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("users") as batch_op:
        batch_op.alter_column("session_version", server_default=None)


def downgrade():
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("session_version")
