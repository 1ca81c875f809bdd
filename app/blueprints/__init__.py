"""Blueprints, one module each; `create_app` registers the list below."""

from app.blueprints import admin, auth, contacts, dashboard, health

BLUEPRINTS = [
    auth.bp,
    dashboard.bp,
    health.bp,
    contacts.bp,
    admin.bp,
]
