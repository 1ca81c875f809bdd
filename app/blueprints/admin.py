"""Administration pages: admins only."""

from flask import Blueprint, abort, render_template
from flask_login import current_user

from app.services import users

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
def require_admin():
    if current_user.is_authenticated and not current_user.is_admin:
        abort(403)


@bp.get("/users")
def user_list():
    return render_template("admin/users.html", users=users.list_users())
