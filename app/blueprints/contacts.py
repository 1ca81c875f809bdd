"""The contact list, one contact's page, editing, bulk actions and export."""

from __future__ import annotations

from dataclasses import replace

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    stream_with_context,
    url_for,
)
from flask_login import current_user

from app.numbers import whole_number
from app.security import ensure_admin
from app.services.admin import settings
from app.services.contacts import edits, search, tags
from app.services.contacts import export as contact_export
from app.services.contacts.search import ContactFilter
from app.services.errors import ServiceError
from jobs.outbound_webhooks import enqueue_deliver_outbound_webhooks

bp = Blueprint("contacts", __name__, url_prefix="/contacts")


def _region() -> str:
    return settings.get("default_region")


def _criteria() -> ContactFilter:
    criteria = ContactFilter.from_args(request.args if request.method == "GET" else request.form)
    if criteria.status == "deleted":
        ensure_admin()  # the bin of deleted contacts is for admins
    return criteria


@bp.get("/")
def index():
    page = search.search(_criteria(), _region())
    # The filter form swaps only the results; a reload or shared link renders the whole page in the same state.
    if request.headers.get("HX-Target") == "contact-results":
        return render_template("contacts/_results_partial.html", page=page)
    return render_template("contacts/index.html", page=page, all_tags=tags.all_tags())


@bp.get("/count")
def count():
    total, capped = search.count_matching(_criteria(), _region())
    return render_template("contacts/_count_partial.html", total=total, capped=capped)


@bp.post("/bulk")
def bulk():
    criteria = _criteria()
    ids = [number for value in request.form.getlist("ids") if (number := whole_number(value)) is not None]
    everything = request.form.get("scope") == "all"
    action = request.form.get("action", "")
    if action == edits.BulkAction.RESTORE:
        ensure_admin()
    try:
        changed = edits.apply_bulk(action, None if everything else ids, criteria if everything else None,
                                           request.form.get("bulk_tag", ""), _region())
        enqueue_deliver_outbound_webhooks()  # the opt-outs' events, if an endpoint wants them
        flash(f"{_describe(action)}: {changed:,} contact{'s' if changed != 1 else ''} changed.", "success")
    except ServiceError as error:
        flash(error.message, "error")
    return redirect(url_for("contacts.index", **criteria.to_args()))


def _describe(action: str) -> str:
    return {"add_tag": "Tag added", "remove_tag": "Tag removed", "opt_out": "Opted out", "delete": "Deleted",
            "restore": "Restored"}.get(action, "Done")


@bp.get("/export.<any(csv, xlsx):fmt>")
def export(fmt: str):
    criteria = replace(_criteria(), page=1)
    if fmt == "csv":
        response = Response(stream_with_context(contact_export.csv_chunks(criteria, _region())), mimetype="text/csv")
        response.headers["Content-Disposition"] = "attachment; filename=contacts.csv"
        return response
    handle = contact_export.xlsx(criteria, _region())
    return send_file(handle, as_attachment=True, download_name="contacts.xlsx",
                     mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@bp.route("/new", methods=["GET", "POST"])
def new():
    return _edit_form(None)


@bp.route("/<int:contact_id>/edit", methods=["GET", "POST"])
def edit(contact_id: int):
    return _edit_form(_contact_or_404(contact_id))


def _edit_form(contact):
    if request.method == "POST":
        form = request.form
        pairs = list(zip(form.getlist("attr_key"), form.getlist("attr_value"), strict=False))
        try:
            saved = edits.save_contact(contact.id if contact else None, form.get("phone", ""),
                                               form.get("name", ""), form.get("tags", ""),
                                               edits.clean_attributes(pairs), _region())
        except ServiceError as error:
            values = {"phone": form.get("phone", ""), "name": form.get("name", ""), "tags": form.get("tags", ""),
                      "attributes": [pair for pair in pairs if any(pair)]}
            return render_template("contacts/form.html", contact=contact, values=values, error=error), 422
        flash(f"Saved {saved.phone}.", "success")
        return redirect(url_for("contacts.detail", contact_id=saved.id))
    return render_template("contacts/form.html", contact=contact, values=_form_values(contact), error=None)


def _form_values(contact) -> dict:
    if contact is None:
        return {"phone": "", "name": "", "tags": "", "attributes": []}
    return {"phone": contact.phone, "name": contact.name or "", "tags": ", ".join(t.name for t in contact.tags),
            "attributes": list(contact.attributes.items())}


@bp.get("/<int:contact_id>")
def detail(contact_id: int):
    return render_template("contacts/detail.html", contact=_contact_or_404(contact_id))


@bp.post("/<int:contact_id>/<any('opt-out', 'undo-opt-out', delete, restore):action>")
def change(contact_id: int, action: str):
    if action == "restore":
        ensure_admin()
    _contact_or_404(contact_id)  # staff never see deleted contacts, so cannot change them either
    operations = {
        "opt-out": (edits.opt_out, "Opted out: this contact will not receive any more messages."),
        "undo-opt-out": (edits.undo_staff_opt_out, "Opted back in."),
        "delete": (lambda cid: edits.set_deleted(cid, True), "Contact deleted. An admin can restore it."),
        "restore": (lambda cid: edits.set_deleted(cid, False), "Contact restored."),
    }
    operation, message = operations[action]
    try:
        operation(contact_id)
        enqueue_deliver_outbound_webhooks()  # an opt-out's (or opt-in's) event, if an endpoint wants it
        flash(message, "success")
    except ServiceError as error:
        flash(error.message, "error")
    return redirect(url_for("contacts.detail", contact_id=contact_id))


def _contact_or_404(contact_id: int):
    contact = search.get_contact(contact_id)
    if contact is None or (contact.deleted_at and not current_user.is_admin):
        abort(404)
    return contact
