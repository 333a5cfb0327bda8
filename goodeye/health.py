"""`/healthz` (the process answers) and `/readyz` (database and storage reachable)."""

from flask import Blueprint, jsonify

from goodeye.context import current_context
from goodeye.db import database, discard_connection
from goodeye.errors import ServiceUnavailable

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    try:
        database.execute_sql("SELECT 1").fetchone()
    except Exception as exc:  # any driver error means "not ready", never a 500
        discard_connection()
        raise ServiceUnavailable(f"The database is unreachable: {exc.__class__.__name__}.") from None
    current_context().storage.check()
    return jsonify({"status": "ready", "checks": {"database": "ok", "storage": "ok"}})
