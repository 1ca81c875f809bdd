"""Give existing contacts the timezone of their number, as new contacts get on import, edit and inbound

Revision ID: e2b8f4c6a1d3
Revises: a9e4c2d17b30
Create Date: 2026-12-07 16:00:00

"""

from collections import defaultdict
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from alembic import op
from phonenumbers.tzdata import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX

revision = "e2b8f4c6a1d3"
down_revision = "a9e4c2d17b30"
branch_labels = None
depends_on = None

BACKFILL_BATCH = 5000


def upgrade():
    _backfill_contact_timezones()


def _backfill_contact_timezones():
    """Existing contacts get their number's timezone, as new ones do; messages already launched keep none (they
    follow the campaign's timezone). The lookup is copied from app.services.contacts.phones.time_zone, not
    imported, so this migration still runs the same when the app's code changes."""
    contacts = sa.table("contacts", sa.column("id", sa.BigInteger), sa.column("phone", sa.String),
                        sa.column("timezone", sa.String))
    connection, last_id = op.get_bind(), 0
    while rows := connection.execute(sa.select(contacts.c.id, contacts.c.phone).where(contacts.c.id > last_id)
                                     .order_by(contacts.c.id).limit(BACKFILL_BATCH)).all():
        ids_by_zone = defaultdict(list)
        for contact_id, phone in rows:
            ids_by_zone[_time_zone(phone)].append(contact_id)
        ids_by_zone.pop(None, None)
        for zone, ids in ids_by_zone.items():  # one UPDATE per timezone in the batch, not one per contact
            connection.execute(contacts.update().where(contacts.c.id.in_(ids)).values(timezone=zone))
        last_id = rows[-1].id


CURRENT_ZONE_NAMES = {
    "Africa/Asmera": "Africa/Asmara", "America/Buenos_Aires": "America/Argentina/Buenos_Aires",
    "America/Godthab": "America/Nuuk", "Asia/Calcutta": "Asia/Kolkata", "Asia/Choibalsan": "Asia/Ulaanbaatar",
    "Asia/Katmandu": "Asia/Kathmandu", "Asia/Rangoon": "Asia/Yangon", "Atlantic/Faeroe": "Atlantic/Faroe",
    "Pacific/Enderbury": "Pacific/Kanton", "Pacific/Ponape": "Pacific/Pohnpei", "Pacific/Truk": "Pacific/Chuuk",
}


def _time_zone(phone):
    digits = phone.removeprefix("+")
    for length in range(min(len(digits), TIMEZONE_LONGEST_PREFIX), 0, -1):
        zones = TIMEZONE_DATA.get(digits[:length])
        if zones is not None:
            current = (CURRENT_ZONE_NAMES.get(zone, zone) for zone in zones)
            return next((zone for zone in current if _loads(zone)), None)
    return None


def _loads(zone):
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def downgrade():
    pass  # the column stays; a9e4c2d17b30's downgrade drops it
