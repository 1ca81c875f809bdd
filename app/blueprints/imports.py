"""Contact imports: upload, map columns (the mapping page's fields read into a MappingChoice), watch progress,
download the problem report."""

import re

from flask import Blueprint, Response, redirect, render_template, request, stream_with_context, url_for
from flask_login import current_user
from redis.exceptions import RedisError

from app.errors import render_error
from app.services.contacts import imports as contact_import
from app.services.contacts import phones
from app.services.contacts.imports import ROLE_LABELS, ImportStatus, MappingChoice, NotAllowed
from app.services.errors import ServiceError
from jobs.imports import enqueue_import

bp = Blueprint("imports", __name__, url_prefix="/imports")
ROLE_FIELD = re.compile(r"^role-(\d+)$")


@bp.errorhandler(NotAllowed)
def not_allowed(error: NotAllowed):
    return render_error(403, error.message)


@bp.get("/")
def index():
    return _index_page(error=None)


@bp.post("/")
def upload():
    try:
        record = contact_import.create_import(request.files.get("file"), current_user.id)
    except ServiceError as error:
        return _index_page(error=error.message), 400
    return redirect(url_for(".show", import_id=record.id))


@bp.get("/<int:import_id>")
def show(import_id: int):
    record = contact_import.get_import(import_id)
    # HTMX polls for the progress fragment alone; a normal visit gets the whole page.
    if request.headers.get("HX-Request"):
        return render_template("imports/_progress_partial.html", record=record)
    if record.status == ImportStatus.MAPPING:
        return _mapping_page(record, error=None)
    return render_template("imports/show.html", record=record)


@bp.post("/<int:import_id>/start")
def start(import_id: int):
    try:
        record = contact_import.start_import(import_id, _mapping_choice(request.form), current_user)
    except NotAllowed:
        raise
    except ServiceError as error:
        return _mapping_page(contact_import.get_import(import_id), error=error.message, form=request.form), 400
    try:
        enqueue_import(record.id)
    except RedisError:
        contact_import.mark_failed(record.id, "The job queue (Redis) could not be reached. Upload the file again.")
    return redirect(url_for(".show", import_id=record.id))


@bp.post("/<int:import_id>/header")
def header(import_id: int):
    """The mapping page's "Headings are in row N" choice; HTMX swaps the re-read page in, nothing is imported."""
    try:
        record = contact_import.choose_header_row(import_id, _header_row(request.form), current_user)
    except NotAllowed:
        raise
    except ServiceError as error:
        # HTMX swaps only a 2xx answer, so there the page with the error comes as one.
        status = 200 if request.headers.get("HX-Request") else 400
        return _mapping_page(contact_import.get_import(import_id), error=error.message), status
    if request.headers.get("HX-Request"):
        return _mapping_page(record, error=None)
    return redirect(url_for(".show", import_id=record.id))


@bp.post("/<int:import_id>/cancel")
def cancel(import_id: int):
    try:
        record = contact_import.cancel_import(import_id, current_user)
    except NotAllowed:
        raise
    except ServiceError:
        record = contact_import.get_import(import_id)  # it finished meanwhile: show how it ended
    if request.headers.get("HX-Request"):
        return render_template("imports/_progress_partial.html", record=record)
    return redirect(url_for(".show", import_id=record.id))


@bp.get("/<int:import_id>/problems.csv")
def problem_report(import_id: int):
    record = contact_import.get_import(import_id)
    lines = stream_with_context(contact_import.problem_report_lines(record.id))
    headers = {"Content-Disposition": f'attachment; filename="import-{record.id}-problems.csv"'}
    return Response(lines, mimetype="text/csv", headers=headers)


def _mapping_choice(form) -> MappingChoice:
    """The mapping page's fields: role-<column index> for each column, tags, region and existing."""
    roles = {int(match[1]): role for name, role in form.items() if (match := ROLE_FIELD.match(name))}
    return MappingChoice(roles=roles, tags=form.get("tags", ""), region=form.get("region") or "",
                         update_existing=form.get("existing", "update") != "keep")


def _header_row(form) -> int:
    value = form.get("header_row", "")
    if not value.isdigit():
        raise ServiceError("Choose the row with the headings from the list.")
    return int(value)


def _index_page(error: str | None):
    return render_template("imports/index.html", imports=contact_import.recent_imports(), error=error,
                           max_megabytes=contact_import.max_bytes() // (1024 * 1024))


def _mapping_page(record, error: str | None, form=None):
    chosen = form or {}
    return render_template("imports/mapping.html", record=record, error=error, roles=ROLE_LABELS,
                           regions=phones.supported_regions(), chosen=chosen,
                           format_note=contact_import.format_note(record.file_name, record.file_format))
