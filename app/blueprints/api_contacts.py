"""/api/v1/contacts: list with the dashboard's filters, get, upsert (one or in bulk), delete, tags, opt-out."""

from __future__ import annotations

from flask import url_for
from redis.exceptions import RedisError

from app.blueprints.api import api_blueprint, body, caller, endpoint, query, respond
from app.services.api import bulk, contacts
from app.services.api.problems import Problem
from app.services.api.render import bulk_job_out, contact_out
from app.services.api.schemas import (
    BulkContactsIn,
    BulkJobOut,
    BulkResult,
    ContactIn,
    ContactOut,
    ContactPage,
    ContactQuery,
    FieldError,
    ProblemOut,
    TagsIn,
)
from app.services.contacts.imports import mark_failed
from jobs.imports import enqueue_bulk_upsert
from jobs.outbound_webhooks import enqueue_deliver_outbound_webhooks

bp = api_blueprint("api_contacts", __name__)
READ, WRITE, TAG = "contacts:read", "contacts:write", "Contacts"


@bp.get("/contacts")
@endpoint(READ, {200: ContactPage}, query=ContactQuery, tag=TAG)
def list_contacts():
    """List contacts, newest first, 50 a page; pass `next_cursor` back as `cursor` for the next page."""
    page = contacts.list_contacts(query(ContactQuery))
    return respond(ContactPage(data=[contact_out(row) for row in page.rows], next_cursor=page.next_cursor))


@bp.post("/contacts")
@endpoint(WRITE, {200: ContactOut, 201: ContactOut, 409: ProblemOut}, body=ContactIn, tag=TAG)
def upsert_contact():
    """Create the contact with this phone number, or update it (name, fields merged, tags added)."""
    contact, created = contacts.upsert(body(ContactIn))
    return respond(contact_out(contact), 201 if created else 200)


@bp.post("/contacts/bulk")
@endpoint(WRITE, {200: BulkResult, 202: BulkJobOut, 503: ProblemOut}, body=BulkContactsIn, tag=TAG)
def bulk_upsert():
    """Create or update contacts in bulk. Up to 10,000: in one transaction, all saved or (one bad) none, answered
    200. More, up to 100,000: 202 with `Location`, the status URL of a job that saves them per row, as a file import
    does (good ones saved, each bad one listed in its `errors`). More than that: 413."""
    data = body(BulkContactsIn)
    if bulk.needs_job(data):
        return _queue_job(data)
    result = contacts.bulk_upsert(data)
    problems = [FieldError(field=f"contacts[{p.row_number}].phone", message=p.reason) for p in result.problems]
    return respond(BulkResult(created=result.created, updated=result.updated, unchanged=result.unchanged,
                              skipped=result.skipped, problems=problems))


def _queue_job(data: BulkContactsIn):
    job = bulk.queue_bulk(data, caller())
    try:
        enqueue_bulk_upsert(job.id)
    except RedisError:
        mark_failed(job.id, "The job queue could not be reached; nothing was saved. Send the call again.")
        raise Problem(503, "The job queue could not be reached; nothing was saved. Retry in a moment.") from None
    url = url_for(".bulk_job", job_id=job.id)
    return respond(bulk_job_out(bulk.job_status(job.id), url), 202, {"Location": url})


@bp.get("/contacts/bulk/<int:job_id>")
@endpoint(READ, {200: BulkJobOut, 404: ProblemOut}, tag=TAG)
def bulk_job(job_id: int):
    """A bulk job's status, counts and the contacts it did not save; any key with contacts:read may read it."""
    return respond(bulk_job_out(bulk.job_status(job_id), url_for(".bulk_job", job_id=job_id)))


@bp.get("/contacts/<int:contact_id>")
@endpoint(READ, {200: ContactOut, 404: ProblemOut}, tag=TAG)
def get_contact(contact_id: int):
    """One contact."""
    return respond(contact_out(contacts.get_contact(contact_id)))


@bp.delete("/contacts/<int:contact_id>")
@endpoint(WRITE, {204: None, 404: ProblemOut}, tag=TAG)
def delete_contact(contact_id: int):
    """Move the contact to the deleted bin; an admin can restore it in the dashboard."""
    contacts.delete_contact(contact_id, caller())
    return "", 204


@bp.post("/contacts/<int:contact_id>/tags")
@endpoint(WRITE, {200: ContactOut, 404: ProblemOut, 409: ProblemOut}, body=TagsIn, tag=TAG)
def add_tags(contact_id: int):
    """Add tags (created when new)."""
    return respond(contact_out(contacts.add_tags(contact_id, body(TagsIn).tags)))


@bp.delete("/contacts/<int:contact_id>/tags/<tag>")
@endpoint(WRITE, {200: ContactOut, 404: ProblemOut, 409: ProblemOut}, tag=TAG)
def remove_tag(contact_id: int, tag: str):
    """Remove one tag from the contact."""
    return respond(contact_out(contacts.remove_tag(contact_id, tag)))


@bp.post("/contacts/<int:contact_id>/opt-out")
@endpoint(WRITE, {200: ContactOut, 404: ProblemOut, 409: ProblemOut}, tag=TAG)
def opt_out(contact_id: int):
    """Opt the contact out of every future message."""
    contact = contacts.opt_out(contact_id, caller())
    enqueue_deliver_outbound_webhooks()  # its contact.opted_out event, if an endpoint wants it
    return respond(contact_out(contact))
