"""Blueprints, one module each; `create_app` registers the list below."""

from app.blueprints import (
    account,
    admin,
    auth,
    auto_replies,
    campaign_runs,
    campaigns,
    contacts,
    dashboard,
    health,
    imports,
    inbox,
    system,
    templates,
    webhooks,
)

BLUEPRINTS = [
    auth.bp,
    dashboard.bp,
    health.bp,
    contacts.bp,
    imports.bp,
    templates.bp,
    campaigns.bp,
    account.bp,
    admin.bp,
    system.bp,
    webhooks.bp,
    campaign_runs.bp,
    inbox.bp,
    auto_replies.bp,
]
