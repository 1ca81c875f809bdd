"""The inbox: conversations with customers, replies inside (text) and outside (templates) the 24-hour window."""

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from app.blueprints import variable_fields
from app.numbers import whole_number
from app.services.errors import NotFound, ServiceError
from app.services.inbox import conversations as inbox
from app.services.inbox import numbers as inbox_numbers
from app.services.inbox import replies as inbox_replies
from app.services.templates import library, rendering
from jobs.sending import enqueue_send_direct

bp = Blueprint("inbox", __name__, url_prefix="/inbox")


def _list_args() -> dict:
    filter_name = request.args.get("filter", "open")
    filter_name = filter_name if filter_name in inbox.FILTERS else "open"
    q = request.args.get("q", "").strip()[:100]
    return {"filter_name": filter_name, "q": q,
            "conversations": inbox.conversations(filter_name, current_user.id, q), "filters": inbox.FILTERS}


@bp.get("/")
def index():
    args = _list_args()
    if request.headers.get("HX-Target") == "conversation-list":
        return render_template("inbox/_list_partial.html", current_id=None, list_fragment=True, **args)
    return render_template("inbox/index.html", current_id=None, **args)


@bp.get("/<int:contact_id>")
def conversation(contact_id: int):
    target = request.headers.get("HX-Target")
    if target == "conversation-list":
        return render_template("inbox/_list_partial.html", current_id=contact_id, list_fragment=True, **_list_args())
    return _page(inbox.thread(contact_id))


@bp.post("/<int:contact_id>/read")
def read(contact_id: int):
    """The open page posts here on load and as its thread polls: a POST, so a link from another site cannot."""
    marked = inbox.mark_read(contact_id)
    response = make_response(render_template("inbox/_read_partial.html", thread=inbox.thread(contact_id)))
    if marked:
        response.headers["HX-Trigger"] = "inbox-read"  # the conversation list refreshes its unread counts
    return response


@bp.post("/<int:contact_id>/reply")
def reply(contact_id: int):
    try:
        if request.form.get("kind") == "template":
            inbox_replies.reply_template(contact_id, _int(request.form.get("template_id")),
                                         variable_fields.texts(request.form), current_user.id)
        else:
            inbox_replies.reply_text(contact_id, request.form.get("body", ""), current_user.id)
    except ServiceError as error:
        return _page(inbox.thread(contact_id), error=error, form=request.form), 422
    enqueue_send_direct()
    return redirect(url_for("inbox.conversation", contact_id=contact_id))


@bp.post("/<int:contact_id>/<any(assign, done, reopen):action>")
def change(contact_id: int, action: str):
    try:
        if action == "assign":
            user_id = request.form.get("user_id", "")
            inbox.assign(contact_id, current_user.id if user_id == "me" else _int(user_id))
        else:
            inbox.set_done(contact_id, action == "done")
    except ServiceError as error:
        flash(error.message, "error")
    if action == "done":
        flash("Marked done. A new message from the customer reopens it.", "success")
        return redirect(url_for("inbox.index"))
    return redirect(url_for("inbox.conversation", contact_id=contact_id))


@bp.post("/<int:contact_id>/messages/<int:message_id>/use-number")
def use_number(contact_id: int, message_id: int):
    """The customer changed their number (WhatsApp's notice in the thread): staff move the contact to it."""
    try:
        contact = inbox_numbers.use_new_number(contact_id, message_id)
        flash(f"{contact.name or 'The contact'} now has the number {contact.phone}.", "success")
    except ServiceError as error:
        flash(error.message, "error")
    return redirect(url_for("inbox.conversation", contact_id=contact_id))


@bp.get("/<int:contact_id>/template-fields")
def template_fields(contact_id: int):
    contact = inbox.get_conversation(contact_id).contact
    template, variables = _chosen_template(request.args.get("template_id"))
    return render_template("inbox/_template_fields_partial.html", template=template, variables=variables,
                           contact=contact, form={})


def _chosen_template(template_id: str | None):
    if not (number := _int(template_id)):
        return None, []
    template = library.get_template(number)
    return template, rendering.template_variables(template)


def _page(thread: inbox.Thread, error: ServiceError | None = None, form=None):
    form = form or {}
    try:
        template, variables = _chosen_template(form.get("template_id"))
    except NotFound:
        template, variables = None, []
    return render_template("inbox/conversation.html", thread=thread, error=error, form=form,
                           templates=library.approved_templates(), team=inbox.team(), template=template,
                           variables=variables, contact=thread.conversation.contact,
                           current_id=thread.conversation.contact_id, **_list_args())


def _int(value: str | None) -> int | None:
    return whole_number(value)
