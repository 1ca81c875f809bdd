"""Blueprints, one module each; `create_app` registers the list below."""

from app.blueprints import (
    account,
    admin,
    analytics,
    auth,
    auto_replies,
    campaign_runs,
    campaigns,
    contacts,
    dashboard,
    health,
    imports,
    inbox,
    message_log,
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
    analytics.bp,
    message_log.bp,
    inbox.bp,
    auto_replies.bp,
]
