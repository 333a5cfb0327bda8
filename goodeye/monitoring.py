"""Per-request bookkeeping and `GET /metrics`: request ids, one log line and the counts of every request."""

import secrets
import time

from flask import Blueprint, Response, g, request

from goodeye import logs, metrics
from goodeye.context import current_context
from goodeye.errors import NotFound
from goodeye.http import client_ip, from_nginx

bp = Blueprint("monitoring", __name__)


def _begin():
    g.request_started = time.perf_counter()
    sent = request.headers.get("X-Request-Id", "")
    # From nginx the header is always nginx's own $request_id; from anyone else it
    # is never taken (nor echoed into a log): the app makes its own.
    if from_nginx() and logs.REQUEST_ID.match(sent):
        g.request_id = sent
    else:
        g.request_id = secrets.token_hex(16)


def _finish(response):
    started = g.get("request_started")
    elapsed = time.perf_counter() - started if started is not None else 0.0
    family = metrics.route_family(request.path)
    metrics.REQUESTS.labels(family, str(response.status_code)).inc()
    metrics.LATENCY.labels(family).observe(elapsed)
    request_id = g.get("request_id") or secrets.token_hex(16)
    response.headers["X-Request-Id"] = request_id
    logs.log_request(request_id, request.method, request.path, response.status_code, elapsed * 1000, family)
    return response


def init_app(app):
    """Give every request an id, a log line and its counts (errors too), and serve `GET /metrics`."""
    app.before_request(_begin)
    app.after_request(_finish)
    app.register_blueprint(bp)


@bp.get("/metrics")
def metrics_page():
    settings = current_context().settings
    if not metrics.is_allowed(client_ip(), settings.metrics_allow):
        # As if there were no such page: the address learns nothing.
        raise NotFound("No such endpoint.")
    body = metrics.render(settings)
    return Response(body, content_type="text/plain; version=0.0.4; charset=utf-8", headers={"Cache-Control": "no-store"})
