"""API bulk upserts above API_BULK_MAX_CONTACTS run as contact imports: an import's source and API key, and the
payload kept in the database until its job has run

Revision ID: d8f0a2c4e6b1
Revises: 9e1a2b3c4d5f
Create Date: 2026-12-08 00:30:00

"""

import sqlalchemy as sa
from alembic import op

revision = "d8f0a2c4e6b1"
down_revision = "9e1a2b3c4d5f"  # api_keys, which the new foreign key needs
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("contact_imports") as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=8), nullable=False, server_default="file"))
        batch_op.add_column(sa.Column("api_key_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(op.f("fk_contact_imports_api_key_id_api_keys"), "api_keys", ["api_key_id"],
                                    ["id"], ondelete="SET NULL")
        batch_op.create_index(op.f("ix_contact_imports_api_key_id"), ["api_key_id"], unique=False)
    op.create_table(
        "contact_import_payloads",
        sa.Column("import_id", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["import_id"], ["contact_imports.id"],
                                name=op.f("fk_contact_import_payloads_import_id_contact_imports"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("import_id", name=op.f("pk_contact_import_payloads")),
    )


def downgrade():
    op.drop_table("contact_import_payloads")
    with op.batch_alter_table("contact_imports") as batch_op:
        batch_op.drop_index(op.f("ix_contact_imports_api_key_id"))
        batch_op.drop_constraint(op.f("fk_contact_imports_api_key_id_api_keys"), type_="foreignkey")
        batch_op.drop_column("api_key_id")
        batch_op.drop_column("source")
