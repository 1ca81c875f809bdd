"""`/healthz`: for load balancers and uptime checks, so no login."""

from flask import Blueprint, jsonify

from app.services.admin import health

bp = Blueprint("health", __name__)
bp.login_exempt = True


@bp.get("/healthz")
def healthz():
    report = health.check()
    body = {"db": report.db, "redis": report.redis, "workers": report.workers, "queues": report.queues}
    return jsonify(body), 200 if report.ok else 503
