"""Outbound webhook endpoints: list and add, edit events, enable/disable, delete, test, and each one's delivery log
with Redeliver. Admins only."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user

from app.services.api.outbound import endpoints, events
from app.services.api.outbound.endpoints import EndpointForm
from app.services.errors import ServiceError
from jobs.outbound_webhooks import enqueue_deliver_outbound_webhooks

bp = Blueprint("outbound_webhooks", __name__, url_prefix="/admin/outbound-webhooks")
bp.admin_only = True  # enforced by app.security.require_admin


@bp.get("/")
def index():
    return _list_page(None, None)


@bp.post("/")
def create():
    try:
        endpoint = endpoints.create(_form(), current_user.id)
    except ServiceError as error:
        return _list_page(request.form, error), 422
    flash("Added the endpoint. Its signing secret is on this page.", "success")
    return redirect(url_for("outbound_webhooks.show", endpoint_id=endpoint.id))


@bp.get("/<int:endpoint_id>")
def show(endpoint_id: int):
    return _endpoint_page(endpoints.get(endpoint_id), None, None)


@bp.get("/<int:endpoint_id>/log")
def log(endpoint_id: int):
    """The delivery log alone: the page's HTMX fragment, which refreshes itself while deliveries are pending."""
    return render_template("admin/_outbound_log_partial.html", webhook=endpoints.get(endpoint_id),
                           log=endpoints.delivery_log(endpoint_id))


@bp.post("/<int:endpoint_id>")
def update(endpoint_id: int):
    try:
        endpoints.update(endpoint_id, _form())
    except ServiceError as error:
        return _endpoint_page(endpoints.get(endpoint_id), request.form, error), 422
    flash("Saved the endpoint.", "success")
    return redirect(url_for("outbound_webhooks.show", endpoint_id=endpoint_id))


@bp.post("/<int:endpoint_id>/<any(enable, disable, test, delete, 'rotate-secret'):action>")
def act(endpoint_id: int, action: str):
    try:
        if action == "delete":
            flash(f"Deleted the endpoint {endpoints.delete(endpoint_id)} and its delivery log.", "success")
            return _go(url_for("outbound_webhooks.index"))
        if action == "rotate-secret":
            endpoints.rotate_secret(endpoint_id)
            flash("Made a new signing secret: give it to the receiver now; deliveries are signed with it from now on.",
                  "success")
        elif action == "test":
            endpoints.send_test(endpoint_id)
            enqueue_deliver_outbound_webhooks(force=True)
            flash("Queued a test event; it shows in the log below.", "success")
        else:
            endpoints.set_enabled(endpoint_id, action == "enable")
            flash(f"{action.capitalize()}d the endpoint.", "success")
    except ServiceError as error:
        flash(error.message, "error")
    return _go(url_for("outbound_webhooks.show", endpoint_id=endpoint_id))


@bp.post("/<int:endpoint_id>/deliveries/<int:delivery_id>/redeliver")
def redeliver(endpoint_id: int, delivery_id: int):
    try:
        found = endpoints.redeliver(endpoint_id, delivery_id)
        enqueue_deliver_outbound_webhooks(force=True)
        flash(f"Queued event evt_{found.event_id} for redelivery.", "success")
    except ServiceError as error:
        flash(error.message, "error")
    return redirect(url_for("outbound_webhooks.show", endpoint_id=endpoint_id))


def _go(url: str):
    """Redirect a form post, or an HTMX one (whose confirm dialog came first) through HX-Redirect."""
    if request.headers.get("HX-Request"):
        return "", 204, {"HX-Redirect": url}
    return redirect(url)


def _form() -> EndpointForm:
    return EndpointForm(url=request.form.get("url", ""), description=request.form.get("description", ""),
                        events=request.form.getlist("events"))


def _list_page(form, error: ServiceError | None):
    return render_template("admin/outbound_webhooks.html", rows=endpoints.list_endpoints(), form=form, error=error,
                           event_types=events.EVENT_TYPES)


def _endpoint_page(endpoint, form, error: ServiceError | None):
    return render_template("admin/outbound_endpoint.html", webhook=endpoint, form=form, error=error,
                           event_types=events.EVENT_TYPES, log=endpoints.delivery_log(endpoint.id))
