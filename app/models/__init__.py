"""SQLAlchemy models, one module per aggregate; imported here so Alembic sees them all."""

from app.models.contact import Contact, OptOutSource, Tag, contact_tags
from app.models.user import Role, User

__all__ = ["Contact", "OptOutSource", "Role", "Tag", "User", "contact_tags"]
