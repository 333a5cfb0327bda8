"""What operators watch, end to end: `/metrics` merged across three gunicorn workers (and across a
worker restart), open only to GOODEYE_METRICS_ALLOW; one request id in the response, nginx's
access log and the app's log line; JSON log lines."""

import http.client
import json
import os
import re
import signal
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests import factories
from tests.conftest import start_stack

REQUEST_ID = re.compile(r"^[0-9a-f]{32}\Z")


@pytest.fixture(scope="module")
def ops_stack(stack_root, mysql_databases, database_kind):
    """Three workers; /metrics for 127.0.0.1 only, so 127.0.0.2 is a stranger on the same machine."""
    running = start_stack(
        stack_root, mysql_databases, database_kind, GOODEYE_WORKERS="3", GOODEYE_METRICS_ALLOW="127.0.0.1",
        GOODEYE_LOG_FORMAT="json",
    )
    yield running
    running.stack.stop()


def _get_from(source, url_base, path, headers=None):
    """GET through a connection from a chosen loopback source address: (status, headers, body)."""
    host, port = url_base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(source, 0))
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def _scrape(stack):
    status, headers, body = _get_from("127.0.0.1", stack.url, "/metrics")
    assert status == 200, body
    assert headers["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0)


def _worker_pids(master_pid):
    with open(f"/proc/{master_pid}/task/{master_pid}/children") as handle:
        return {int(pid) for pid in handle.read().split()}


def _wait_for_workers(master_pid, done, failure):
    """The master's worker pids once `done(pids)` holds (within 30 s)."""
    deadline = time.monotonic() + 30
    while not done(pids := _worker_pids(master_pid)):
        assert time.monotonic() < deadline, failure
        time.sleep(0.1)
    return pids


def _send_mix(stack, owner, session):
    """A known mix of requests; returns what each family/status should have counted."""
    uploads = [session.post(f"{stack.url}/v1/images", headers=owner.headers, files={"file": ("m.png", factories.png())})
               for _ in range(3)]
    assert [answer.status_code for answer in uploads] == [201] * 3
    for _ in range(2):
        assert session.get(f"{stack.url}/v1/images/img_nope", headers=owner.headers).status_code == 404
    assert session.get(f"{stack.url}/v1/images", headers=owner.headers).status_code == 200
    assert session.post(f"{stack.url}/v1/images", files={"file": ("m.png", factories.png())}).status_code == 401
    # Private: always answered by the app's check, then streamed by nginx.
    assert session.get(uploads[0].json()["url"], headers=owner.headers).status_code == 200
    return sum(answer.json()["size_bytes"] for answer in uploads)


def test_metrics_count_every_request_across_workers_and_a_restart(ops_stack):
    owner = ops_stack.new_owner()
    master = ops_stack.stack.processes["gunicorn"].pid
    # The stack is ready when one worker answers; gunicorn may still be forking the others.
    before = _wait_for_workers(master, lambda pids: len(pids) == 3, "gunicorn did not start its three workers")
    start = _scrape(ops_stack)
    with requests.Session() as session:
        stored_bytes = _send_mix(ops_stack, owner, session)

    # HUP: gunicorn replaces every worker. The old workers' counts must stay in the totals.
    os.kill(master, signal.SIGHUP)
    _wait_for_workers(master, lambda pids: len(pids) == 3 and not pids & before, "gunicorn did not replace its workers")
    with requests.Session() as session:
        stored_bytes += _send_mix(ops_stack, owner, session)

    samples = _scrape(ops_stack)

    def sent(name, **labels):
        return _value(samples, name, **labels) - _value(start, name, **labels)

    assert sent("goodeye_http_requests_total", family="v1", status="201") == 6
    assert sent("goodeye_http_requests_total", family="v1", status="404") == 4
    assert sent("goodeye_http_requests_total", family="v1", status="401") == 2
    assert sent("goodeye_http_requests_total", family="v1", status="200") == 2
    assert sent("goodeye_http_requests_total", family="serve", status="200") == 2
    assert sent("goodeye_http_request_duration_seconds_count", family="v1") == 14
    assert sent("goodeye_images_stored_total", source="upload") == 6
    assert sent("goodeye_images_stored_bytes_total", source="upload") == stored_bytes
    assert sent("goodeye_stored_images") == 6
    assert sent("goodeye_stored_bytes") == stored_bytes
    assert sent("goodeye_limit_refusals_total", code="QUOTA_EXCEEDED") == 0
    v1_total = sum(value for (name, labels), value in samples.items()
                   if name == "goodeye_http_requests_total" and ("family", "v1") in labels)
    # nginx's own counts sit on the same page, and saw at least what the app saw.
    assert _value(samples, "goodeye_nginx_http_requests_total") >= v1_total + 2
    assert _value(samples, "goodeye_nginx_connections_active") >= 1
    # Bounded labels: no path, token or address anywhere.
    pairs = {pair for (_name, labels) in samples for pair in labels}
    assert {key for key, _value in pairs} <= {"family", "status", "source", "generator", "outcome", "cache", "format", "code", "kind", "le"}
    assert not [value for _key, value in pairs if "/" in value or re.fullmatch(r"[0-9a-f:.]*[:.][0-9a-f:.]*[:.][0-9a-f:.]*", value)]
    metric_dir = os.path.join(ops_stack.settings.run_dir, "metrics")
    writers = {int(match.group(1)) for name in os.listdir(metric_dir) if (match := re.search(r"_(\d+)\.db$", name))}
    assert writers & before and writers - before, "the counts come from both generations of workers"


def test_a_refusal_by_quota_is_counted(ops_stack):
    owner = ops_stack.new_owner()
    assert ops_stack.admin("project", "update", owner.project, "--max-images", "1").exit_code == 0
    before = _value(_scrape(ops_stack), "goodeye_limit_refusals_total", code="QUOTA_EXCEEDED")
    for expected in (201, 403, 403):
        answer = requests.post(f"{ops_stack.url}/v1/images", headers=owner.headers, files={"file": ("q.png", factories.png())})
        assert answer.status_code == expected
    assert _value(_scrape(ops_stack), "goodeye_limit_refusals_total", code="QUOTA_EXCEEDED") == before + 2


def test_metrics_are_a_404_for_an_address_not_allowed(ops_stack):
    status, headers, body = _get_from("127.0.0.2", ops_stack.url, "/metrics")
    assert status == 404
    assert json.loads(body) == {"error": {"code": "not_found", "message": "No such endpoint."}}
    assert REQUEST_ID.match(headers["X-Request-Id"])
    # A forwarding header from the stranger changes nothing.
    status, _headers, _body = _get_from("127.0.0.2", ops_stack.url, "/metrics", {"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"})
    assert status == 404


def _log_lines(path, request_id, deadline_seconds=10):
    """The JSON lines of a log file that carry this request id (nginx writes its line once the response is sent)."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        with open(path) as handle:
            found = [json.loads(line) for line in handle if request_id in line and line.startswith("{")]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_one_request_id_in_the_response_nginxs_log_and_the_apps_log(ops_stack):
    owner = ops_stack.new_owner()
    sent = "client-chosen-id-0123456789abcdef"
    answer = requests.get(f"{ops_stack.url}/v1/images", headers={**owner.headers, "X-Request-Id": sent})
    assert answer.status_code == 200
    request_id = answer.headers["X-Request-Id"]
    assert REQUEST_ID.match(request_id) and request_id != sent
    assert answer.raw.headers.getlist("X-Request-Id") == [request_id]

    run_dir = ops_stack.settings.run_dir
    [nginx_line] = _log_lines(os.path.join(run_dir, "nginx-access.log"), request_id)
    assert (nginx_line["uri"], nginx_line["status"], nginx_line["method"]) == ("/v1/images", 200, "GET")
    [app_line] = _log_lines(os.path.join(run_dir, "gunicorn.log"), request_id)
    assert app_line["logger"] == "goodeye.request"
    assert (app_line["path"], app_line["status"], app_line["family"]) == ("/v1/images", 200, "v1")
    # The client's id is in neither log.
    for name in ("nginx-access.log", "gunicorn.log"):
        with open(os.path.join(run_dir, name)) as handle:
            assert sent not in handle.read()


@pytest.mark.parametrize(
    "request_kwargs,status",
    [
        ({"method": "GET", "path": "/v1/images/img_nope", "auth": True}, 404),  # the app's error
        ({"method": "GET", "path": "/v1/i/" + "A" * 32 + ".png", "auth": False}, 404),  # nginx's fast path, then the app
        ({"method": "GET", "path": "/v1/images?q=" + "x" * 9000, "auth": False}, 414),  # nginx's own error page
        ({"method": "GET", "path": "/healthz", "auth": False}, 200),
        ({"method": "GET", "path": "/", "auth": False}, 200),  # the console's page, a file nginx serves
    ],
)
def test_every_response_carries_one_request_id(ops_stack, request_kwargs, status):
    owner = ops_stack.new_owner()
    headers = owner.headers if request_kwargs["auth"] else {}
    answer = requests.request(request_kwargs["method"], ops_stack.url + request_kwargs["path"], headers=headers)
    assert answer.status_code == status
    assert len(answer.raw.headers.getlist("X-Request-Id")) == 1
    assert REQUEST_ID.match(answer.headers["X-Request-Id"])


def test_a_blob_streamed_by_nginx_carries_the_request_id(ops_stack):
    owner = ops_stack.new_owner()
    record = requests.post(f"{ops_stack.url}/v1/images", headers=owner.headers,
                           files={"file": ("p.png", factories.png())}, data={"visibility": "public"}).json()
    for headers in (owner.headers, {}):
        answer = requests.get(record["url"], headers=headers)
        assert answer.status_code == 200
        assert answer.raw.headers.getlist("X-Request-Id") and REQUEST_ID.match(answer.headers["X-Request-Id"])
