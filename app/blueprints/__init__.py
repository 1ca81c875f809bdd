"""Blueprints, one module each; `create_app` registers the list below.

Two modules here are not blueprints: campaign_forms (the composer's fields ↔ CampaignDraft) and variable_fields
(the one naming convention for template-variable inputs, shared by the composer, the inbox and auto-replies).
"""

from app.blueprints import (
    account,
    admin,
    analytics,
    api,
    api_campaigns,
    api_contacts,
    api_keys,
    api_messages,
    api_reference,
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
    outbound_webhooks,
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
    outbound_webhooks.bp,
    api.bp,
    api_contacts.bp,
    api_messages.bp,
    api_campaigns.bp,
    api_keys.bp,
    api_reference.bp,
]
