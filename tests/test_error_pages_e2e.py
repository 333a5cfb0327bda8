"""HTML never reaches a client: every error nginx answers itself is JSON in the path's envelope."""

import os
import socket
import subprocess
import tempfile
import threading

import pytest
import requests

from goodeye.config import load_settings
from goodeye.stack import find_nginx, render_nginx_config
from tests import factories
from tests.conftest import free_port

IMAGE_HEADERS = ("X-Image-Id", "X-Cache-Status", "X-Scope", "ETag", "Last-Modified")


def _upload(stack, owner, **fields):
    response = requests.post(
        f"{stack.url}/v1/images", headers=owner.headers, files={"file": ("range.png", factories.png(), "image/png")}, data=fields
    )
    assert response.status_code == 201, response.text
    return response.json()


def _assert_json_error(response, status, code):
    assert response.status_code == status, (response.status_code, response.headers, response.text[:200])
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    assert response.json()["error"]["code"] == code
    return response


@pytest.mark.parametrize("visibility", ["public", "private"])
def test_a_range_past_the_end_is_a_json_416_without_image_headers(stack, owner, visibility):
    record = _upload(stack, owner, visibility=visibility, filename=f"range-{visibility}.png")
    past_the_end = {"Range": f"bytes={record['size_bytes'] + 100}-"}
    headers = {**past_the_end, **(owner.headers if visibility == "private" else {})}
    urls = [(record["url"], "range_not_satisfiable")]
    if visibility == "public":
        urls.append((f"{stack.url}/cdn/{owner.project}/img/range-public.png", "RANGE_NOT_SATISFIABLE"))
    for url, code in urls:
        # Twice: the second asks nginx's kept decision on the fast path.
        for _ in range(2):
            response = _assert_json_error(requests.get(url, headers=headers), 416, code)
            assert not set(IMAGE_HEADERS) & set(response.headers), response.headers


def _raw(stack, request_bytes):
    with socket.create_connection((stack.settings.listen_host, stack.settings.port), timeout=10) as conn:
        conn.sendall(request_bytes)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), head.decode("latin-1"), body


def test_nginx_405_and_413_are_json(plain_stack):
    status, head, body = _raw(plain_stack, b"TRACE /v1/images HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 405 and "application/json" in head and b'"method_not_allowed"' in body
    # A Content-Length over nginx's body limit is refused before any byte of the body is read.
    too_big = plain_stack.settings.max_upload_bytes * 2
    request = f"POST /cdn/x/y/img/z HTTP/1.1\r\nHost: x\r\nContent-Length: {too_big}\r\nConnection: close\r\n\r\n"
    status, head, body = _raw(plain_stack, request.encode())
    assert status == 413 and "application/json" in head and b'"IMAGE_TOO_LARGE"' in body


class HangingApp:
    """A unix socket where gunicorn would be, that accepts requests and never answers them."""

    def __init__(self, path):
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(path)
        self.server.listen(64)
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.held.append(self.server.accept()[0])
            except OSError:
                return

    def close(self):
        self.server.close()
        for conn in self.held:
            conn.close()


@pytest.fixture()
def nginx_before_a_hanging_app():
    """The stack's own nginx configuration, with a 1 s upstream timeout, before a HangingApp."""
    data_dir = tempfile.mkdtemp(prefix="hanging-")
    settings = load_settings({"GOODEYE_DATA_DIR": data_dir, "GOODEYE_PORT": str(free_port())})
    os.makedirs(settings.run_dir)
    config = render_nginx_config(settings)
    timeout = f"proxy_read_timeout {max(60, settings.openai_timeout_seconds + 30)}s;"
    assert timeout in config
    conf = os.path.join(settings.run_dir, "nginx.conf")
    with open(conf, "w") as handle:
        handle.write(config.replace(timeout, "proxy_read_timeout 1s;"))
    app = HangingApp(os.path.join(settings.run_dir, "gunicorn.sock"))
    nginx = subprocess.Popen([find_nginx(), "-e", os.path.join(settings.run_dir, "error.log"), "-c", conf], start_new_session=True)
    base = f"http://127.0.0.1:{settings.port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", settings.port), timeout=1).close()
            break
        except OSError:
            threading.Event().wait(0.05)
    yield base, app, settings
    nginx.terminate()
    nginx.wait(timeout=10)
    app.close()


@pytest.mark.slow
def test_an_app_that_times_out_or_is_gone_is_a_json_504_or_502(nginx_before_a_hanging_app):
    base, app, settings = nginx_before_a_hanging_app
    token = "A" * 32
    _assert_json_error(requests.get(f"{base}/v1/images"), 504, "service_unavailable")
    _assert_json_error(requests.get(f"{base}/api/v1/project"), 504, "SERVICE_UNAVAILABLE")
    app.close()
    os.unlink(os.path.join(settings.run_dir, "gunicorn.sock"))
    _assert_json_error(requests.get(f"{base}/v1/images"), 502, "service_unavailable")
    _assert_json_error(requests.get(f"{base}/api/v1/project"), 502, "SERVICE_UNAVAILABLE")
    # The fast path's check cannot reach the app either: still JSON, never nginx's HTML.
    for path in (f"/v1/i/{token}", "/cdn/o/p/img/x.png", "/cdn/o/p/live/s?prompt=x"):
        response = requests.get(f"{base}{path}")
        assert response.status_code >= 500 and response.headers["Content-Type"].startswith("application/json"), response.text
