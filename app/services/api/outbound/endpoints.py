"""Admins' side of outbound webhooks: registering endpoints, their delivery log, redelivery and test events.

Every change is audited in the transaction that makes it. URLs pass the address guard when saved (and again at
every delivery, in transport). The secret is generated here and stays viewable by admins on the endpoint's page:
we need it in the clear to sign, so hiding it after the first view would protect nothing on our side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import func, select

from app.clock import utcnow
from app.extensions import db
from app.models import DeliveryStatus, OutboundDelivery, OutboundEndpoint, OutboundEvent
from app.services import address_guard
from app.services.admin import audit
from app.services.api.outbound import delivery, events, signing
from app.services.errors import NotFound, ServiceError

LOG_SIZE = 50
URL_LENGTH = 2048


@dataclass(frozen=True)
class EndpointForm:
    url: str
    description: str
    events: list[str]


@dataclass
class LogRow:
    delivery: OutboundDelivery
    event_type: str
    event_id: int


def list_endpoints() -> list[tuple[OutboundEndpoint, int, int]]:
    """Each endpoint with its pending and failed delivery counts."""
    counts = {(endpoint_id, status): amount for endpoint_id, status, amount in db.session.execute(
        select(OutboundDelivery.endpoint_id, OutboundDelivery.status, func.count())
        .where(OutboundDelivery.status != DeliveryStatus.DELIVERED)
        .group_by(OutboundDelivery.endpoint_id, OutboundDelivery.status))}
    endpoints = db.session.scalars(select(OutboundEndpoint).order_by(OutboundEndpoint.id))
    return [(endpoint, counts.get((endpoint.id, DeliveryStatus.PENDING), 0),
             counts.get((endpoint.id, DeliveryStatus.FAILED), 0)) for endpoint in endpoints]


def get(endpoint_id: int) -> OutboundEndpoint:
    endpoint = db.session.get(OutboundEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound("That webhook endpoint no longer exists.")
    return endpoint


def create(form: EndpointForm, user_id: int | None) -> OutboundEndpoint:
    """Validate and save a new, enabled endpoint with a fresh secret. Commits."""
    url, chosen = _validated(form)
    endpoint = OutboundEndpoint(url=url, description=form.description.strip()[:255], events=chosen,
                                secret=signing.new_secret(), enabled=True, created_by_id=user_id)
    db.session.add(endpoint)
    db.session.flush()
    audit.record("outbound_webhook.create", f"Added webhook endpoint {url}", target=_target(endpoint),
                 details={"events": chosen})
    db.session.commit()
    return endpoint


def update(endpoint_id: int, form: EndpointForm) -> OutboundEndpoint:
    """Change an endpoint's address, description and events. Commits."""
    endpoint = get(endpoint_id)
    url, chosen = _validated(form)
    endpoint.url, endpoint.description, endpoint.events = url, form.description.strip()[:255], chosen
    audit.record("outbound_webhook.update", f"Changed webhook endpoint {url}", target=_target(endpoint),
                 details={"events": chosen})
    db.session.commit()
    return endpoint


def set_enabled(endpoint_id: int, enabled: bool) -> OutboundEndpoint:
    """Enable (which also clears an automatic disabling and its failing streak) or disable. Commits."""
    endpoint = get(endpoint_id)
    if enabled:
        _check(endpoint.url)  # the setting may have changed, or the name may now point elsewhere
    endpoint.enabled, endpoint.disabled_reason, endpoint.failing_since = enabled, None, None
    audit.record(f"outbound_webhook.{'enable' if enabled else 'disable'}",
                 f"{'Enabled' if enabled else 'Disabled'} webhook endpoint {endpoint.url}", target=_target(endpoint))
    db.session.commit()
    return endpoint


def rotate_secret(endpoint_id: int) -> OutboundEndpoint:
    """A new signing secret, used from the next delivery on (the receiver needs it at once). Commits."""
    endpoint = get(endpoint_id)
    endpoint.secret = signing.new_secret()
    audit.record("outbound_webhook.rotate_secret", f"Made a new signing secret for webhook endpoint {endpoint.url}",
                 target=_target(endpoint))
    db.session.commit()
    return endpoint


def delete(endpoint_id: int) -> str:
    """Delete an endpoint with its delivery log; returns its URL. Commits."""
    endpoint = get(endpoint_id)
    url = endpoint.url
    audit.record("outbound_webhook.delete", f"Deleted webhook endpoint {url}", target=_target(endpoint))
    db.session.delete(endpoint)
    db.session.commit()
    return url


def delivery_log(endpoint_id: int, limit: int = LOG_SIZE) -> list[LogRow]:
    """The endpoint's latest deliveries, newest first."""
    rows = db.session.execute(select(OutboundDelivery, OutboundEvent.event_type, OutboundEvent.id)
                              .join(OutboundEvent, OutboundEvent.id == OutboundDelivery.event_id)
                              .where(OutboundDelivery.endpoint_id == endpoint_id)
                              .order_by(OutboundDelivery.id.desc()).limit(limit))
    return [LogRow(row[0], row[1], row[2]) for row in rows]


def redeliver(endpoint_id: int, delivery_id: int) -> OutboundDelivery:
    """Send a delivery again as soon as a job runs (the same event id, so the receiver can tell). Commits."""
    found = db.session.get(OutboundDelivery, delivery_id)
    if found is None or found.endpoint_id != endpoint_id:
        raise NotFound("That delivery no longer exists.")
    endpoint = get(endpoint_id)
    if not endpoint.enabled:
        raise ServiceError("Enable this endpoint first: a disabled endpoint gets no deliveries.")
    now = utcnow()
    # A new retry window from now: the delivery is tried (and retried) as if it were new.
    found.status, found.next_attempt_at, found.created_at = DeliveryStatus.PENDING, now, now
    audit.record("outbound_webhook.redeliver", f"Redelivered event evt_{found.event_id} to {endpoint.url}",
                 target=_target(endpoint))
    db.session.commit()
    return found


def send_test(endpoint_id: int) -> OutboundDelivery:
    """Queue a `ping` event for this endpoint only, so an admin can check the receiver. Commits."""
    endpoint = get(endpoint_id)
    if not endpoint.enabled:
        raise ServiceError("Enable this endpoint first: a disabled endpoint gets no deliveries.")
    now = utcnow()
    event = OutboundEvent(event_type=events.PING, occurred_at=now, payload={}, created_at=now, fanned_out_at=now)
    db.session.add(event)
    db.session.flush()
    event.body = json.dumps({"id": f"evt_{event.id}", "type": events.PING, "occurred_at": now.isoformat(),
                             "data": {"endpoint_id": endpoint.id}}, separators=(",", ":"))
    found = OutboundDelivery(event_id=event.id, endpoint_id=endpoint.id, status=DeliveryStatus.PENDING, attempts=0,
                             next_attempt_at=now, created_at=now)
    db.session.add(found)
    db.session.commit()
    return found


def disabled_notices() -> list[OutboundEndpoint]:
    """Endpoints we disabled because they kept failing: the admins' banner until someone acts on them."""
    return list(db.session.scalars(select(OutboundEndpoint).where(OutboundEndpoint.enabled.is_(False),
                                                                  OutboundEndpoint.disabled_reason.is_not(None))
                                   .order_by(OutboundEndpoint.id)))


def _validated(form: EndpointForm) -> tuple[str, list[str]]:
    if not form.url.strip():
        raise ServiceError("Enter the address that should receive the webhooks.", field="url")
    if len(form.url.strip()) > URL_LENGTH:
        raise ServiceError(f"Keep the address under {URL_LENGTH:,} characters.", field="url")
    url = _check(form.url)
    chosen = [event_type for event_type in events.EVENT_TYPES if event_type in form.events]
    if not chosen:
        raise ServiceError("Choose at least one event to receive.", field="events")
    return url, chosen


def _check(url: str) -> str:
    try:
        return address_guard.check_url(url, delivery.allow_private())
    except address_guard.AddressRefused as error:
        raise ServiceError(str(error), field="url") from None


def _target(endpoint: OutboundEndpoint) -> str:
    return f"outbound_endpoint:{endpoint.id}"
