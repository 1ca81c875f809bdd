"""A message WhatsApp accepted and then reported failed counts as failed, not also as sent: take such messages out
of their run's sent counter and of the hourly sent figure of the hour they were counted in

Revision ID: a4c6e8f0b2d4
Revises: a4c8e1f2b3d6
Create Date: 2026-12-07 22:00:00

"""

from collections import Counter
from datetime import UTC

import sqlalchemy as sa
from alembic import op

revision = "a4c6e8f0b2d4"
down_revision = "a4c8e1f2b3d6"
branch_labels = None
depends_on = None

messages = sa.table("messages", sa.column("run_id", sa.Integer), sa.column("status", sa.String),
                    sa.column("sent_at", sa.DateTime(timezone=True)))
runs = sa.table("send_runs", sa.column("id", sa.Integer), sa.column("sent", sa.Integer))
hours = sa.table("hourly_message_stats", sa.column("hour", sa.DateTime(timezone=True)), sa.column("sent", sa.Integer))


def upgrade():
    _take_back(-1)


def downgrade():
    _take_back(+1)


def _take_back(sign: int) -> None:
    """Only failed messages that were accepted first (a few per cent): read them once, update per run and hour."""
    per_run, per_hour = Counter(), Counter()
    rows = op.get_bind().execute(sa.select(messages.c.run_id, messages.c.sent_at)
                                 .where(messages.c.status == "failed", messages.c.sent_at.is_not(None)))
    for run_id, sent_at in rows:
        if run_id is not None:
            per_run[run_id] += 1
        per_hour[_hour(sent_at)] += 1
    for run_id, count in sorted(per_run.items()):
        op.execute(runs.update().where(runs.c.id == run_id).values(sent=runs.c.sent + sign * count))
    for hour, count in sorted(per_hour.items()):
        op.execute(hours.update().where(hours.c.hour == hour).values(sent=hours.c.sent + sign * count))


def _hour(at):
    at = at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite hands back naive UTC
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
