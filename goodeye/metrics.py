"""Prometheus metrics: what the app, its workers and the sweeper count, and the page `GET /metrics` shows
(goodeye/monitoring.py serves it).

goodeye/stack.py points PROMETHEUS_MULTIPROC_DIR (prometheus-client's own
variable) at a directory under the run dir, empties it at start and marks each
dead gunicorn worker (goodeye/gunicorn_conf.py): every process writes its
counts there and `/metrics` merges them. Labels are bounded: a route family,
never a path, a token or an address.

The page also carries what no single process counts: the images and bytes
every project keeps (from the database) and nginx's own connection and request
counts (its stub_status, read over a unix socket only the stack can reach).
"""

import http.client
import ipaddress
import os
import re
import socket

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from peewee import fn

from goodeye.models import Project

REQUESTS = Counter("goodeye_http_requests", "Requests the app answered, by route family and status.", ["family", "status"])
LATENCY = Histogram(
    "goodeye_http_request_duration_seconds",
    "Time the app took to answer, by route family.",
    ["family"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
UPLOADS = Counter("goodeye_images_stored", "Images stored, by source (upload or generated).", ["source"])
STORED_BYTES = Counter("goodeye_images_stored_bytes", "Bytes of the images stored, by source.", ["source"])
GENERATIONS = Counter("goodeye_generations", "Calls to image generators, by generator and outcome.", ["generator", "outcome"])
LIVE = Counter("goodeye_live_answers", "Live-URL answers the app gave, by cache status (HIT or MISS).", ["cache"])
VARIANT_RENDERS = Counter("goodeye_variant_renders", "Variants rendered, by output format.", ["format"])
LIMIT_REFUSALS = Counter("goodeye_limit_refusals", "Requests refused by a rate limit, a budget or a quota, by code.", ["code"])
SWEEPS = Counter("goodeye_sweeper_runs", "Sweeper passes, by outcome (ok or failed).", ["outcome"])
SWEPT = Counter("goodeye_sweeper_reclaimed", "What the sweeper removed, by kind.", ["kind"])

# Route families, first match wins: the label of every request count.
_FAMILIES = (
    ("/v1/i/", "serve"),
    ("/v1/", "v1"),
    ("/_goodeye/decide/", "decide"),
    ("/api/", "api"),
    ("/healthz", "health"),
    ("/readyz", "health"),
    ("/metrics", "metrics"),
)
_CONSOLE_PAGES = {"/", "/docs", "/openapi.json", "/favicon.ico"}
_LIVE_PATH = re.compile(r"^/cdn/[^/]+/[^/]+/live/")
_STUB_STATUS = re.compile(
    r"Active connections:\s*(\d+).*?(\d+)\s+(\d+)\s+(\d+)\s*Reading:\s*(\d+)\s*Writing:\s*(\d+)\s*Waiting:\s*(\d+)", re.S
)

def route_family(path):
    """The bounded label of a request path: serve, v1, live, cdn, decide, api, health, metrics, console or other."""
    if path in _CONSOLE_PAGES or path.startswith("/console/"):
        return "console"
    if path.startswith("/cdn/"):
        return "live" if _LIVE_PATH.match(path) else "cdn"
    for prefix, family in _FAMILIES:
        if path.startswith(prefix):
            return family
    return "other"


def count_upload(source, size_bytes):
    """One image stored (uploaded or generated) of this many bytes."""
    UPLOADS.labels(source).inc()
    STORED_BYTES.labels(source).inc(size_bytes)


def count_generation(generator, outcome):
    """One call to a generator: outcome succeeded, partial, failed or quota_exceeded."""
    GENERATIONS.labels(generator, outcome).inc()


def count_live(cache_status):
    """One live-URL answer of the app: HIT or MISS."""
    LIVE.labels(cache_status).inc()


def count_variant_render(fmt):
    """One variant rendered (not served from the store), by its output format."""
    VARIANT_RENDERS.labels(fmt).inc()


def count_refusal(code):
    """One request refused by a limit, budget or quota (its /cdn-style code)."""
    LIMIT_REFUSALS.labels(code).inc()


def count_sweep(outcome, result=None):
    """One sweeper pass and, when it finished, what it reclaimed."""
    SWEEPS.labels(outcome).inc()
    for kind, amount in (result or {}).items():
        SWEPT.labels(kind).inc(amount)


class UsageCollector:
    """What every project keeps, summed from the usage counters at scrape time (exact across nodes)."""

    def collect(self):
        images, size = Project.select(fn.COALESCE(fn.SUM(Project.image_count), 0), fn.COALESCE(fn.SUM(Project.storage_bytes), 0)).tuples().get()
        yield GaugeMetricFamily("goodeye_stored_images", "Images every project keeps now.", value=int(images))
        yield GaugeMetricFamily("goodeye_stored_bytes", "Bytes of the images every project keeps now (size_bytes).", value=int(size))


class _UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a unix socket: the standard library has no such connection class."""

    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def nginx_status_socket(settings):
    """The unix socket of nginx's stub_status server (goodeye/nginx/goodeye.conf.j2)."""
    return os.path.join(settings.run_dir, "nginx-status.sock")


class NginxCollector:
    """nginx's stub_status counts as Prometheus series; nothing when nginx does not answer."""

    def __init__(self, socket_path):
        self.socket_path = socket_path

    def _read(self):
        connection = _UnixHTTPConnection(self.socket_path, timeout=1)
        try:
            connection.request("GET", "/status")
            return connection.getresponse().read().decode("ascii", "replace")
        finally:
            connection.close()

    def collect(self):
        try:
            match = _STUB_STATUS.search(self._read())
        except OSError:
            return
        if match is None:
            return
        active, accepted, handled, requests, reading, writing, waiting = (int(value) for value in match.groups())
        yield GaugeMetricFamily("goodeye_nginx_connections_active", "Open client connections (nginx).", value=active)
        yield GaugeMetricFamily("goodeye_nginx_connections_reading", "Connections nginx is reading a request on.", value=reading)
        yield GaugeMetricFamily("goodeye_nginx_connections_writing", "Connections nginx is writing a response on.", value=writing)
        yield GaugeMetricFamily("goodeye_nginx_connections_waiting", "Idle keep-alive connections (nginx).", value=waiting)
        yield CounterMetricFamily("goodeye_nginx_connections_accepted", "Client connections nginx accepted.", value=accepted)
        yield CounterMetricFamily("goodeye_nginx_connections_handled", "Client connections nginx handled.", value=handled)
        yield CounterMetricFamily("goodeye_nginx_http_requests", "Client requests nginx answered (fast path included).", value=requests)


def is_allowed(address, allowed):
    """Whether an address lies in one of the GOODEYE_METRICS_ALLOW networks."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in allowed)


def render(settings):
    """The Prometheus text of every process's counts plus the usage and nginx series."""
    registry = CollectorRegistry()
    # prometheus-client's own variable: set by goodeye/stack.py for every process it starts.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(_ProcessLocal())
    registry.register(UsageCollector())
    registry.register(NginxCollector(nginx_status_socket(settings)))
    return generate_latest(registry)


class _ProcessLocal:
    """This process's own metrics, when no multiprocess directory is set (one process serves)."""

    def collect(self):
        return REGISTRY.collect()
