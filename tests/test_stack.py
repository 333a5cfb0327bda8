"""How the parts of a running stack hold together: nginx's configuration and its kept connections to gunicorn."""

import json
import os
import subprocess
import time

import pytest
import requests

from goodeye.config import load_settings
from goodeye.http import v1_envelope
from goodeye.stack import NGINX_ERRORS, UPSTREAM_KEEPALIVE_SECONDS, find_nginx, render_nginx_config
from tests.factories import png

# gunicorn's own default keep-alive; an idle connection it would have closed by now must still be open.
GUNICORN_DEFAULT_KEEPALIVE_SECONDS = 2
UNIX_SOCKET_CONNECTED = "03"


def _connections_to(socket_path):
    """The number of accepted, connected sockets on a listening unix socket path."""
    with open("/proc/net/unix") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(1 for row in rows if len(row) == 8 and row[7] == socket_path and row[5] == UNIX_SOCKET_CONNECTED)


def test_nginx_not_gunicorn_closes_idle_upstream_connections(plain_stack):
    socket_path = os.path.join(plain_stack.settings.run_dir, "gunicorn.sock")
    owner = plain_stack.new_owner()
    assert requests.get(f"{plain_stack.url}/v1/images", headers=owner.headers).status_code == 200
    assert _connections_to(socket_path) >= 1

    time.sleep(GUNICORN_DEFAULT_KEEPALIVE_SECONDS * 2)
    assert GUNICORN_DEFAULT_KEEPALIVE_SECONDS * 2 < UPSTREAM_KEEPALIVE_SECONDS
    # Still open: had gunicorn closed it, a PATCH nginx sent on it at that moment would be a 502.
    assert _connections_to(socket_path) >= 1
    answer = requests.post(f"{plain_stack.url}/v1/images", headers=owner.headers, files={"file": ("k.png", png())})
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize("mode", [
    {},
    {"GOODEYE_ACCEL": "off"},
    {"GOODEYE_STORAGE": "s3", "GOODEYE_S3_BUCKET": "b", "GOODEYE_S3_ENDPOINT_URL": "http://127.0.0.1:9",
     "GOODEYE_TRUSTED_PROXIES": "127.0.0.2,10.0.0.0/8"},
], ids=["fast-path", "accel-off", "s3-behind-proxies"])
def test_every_mode_renders_a_configuration_nginx_accepts(tmp_path, mode):
    settings = load_settings({"GOODEYE_DATA_DIR": str(tmp_path), "GOODEYE_PORT": "1", **mode})
    os.makedirs(settings.run_dir)
    config = render_nginx_config(settings)
    conf = tmp_path / "nginx.conf"
    conf.write_text(config)
    checked = subprocess.run([find_nginx(), "-t", "-e", str(tmp_path / "error.log"), "-c", str(conf)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    # Laid out by its braces, whatever the template's macros and includes left.
    assert config.splitlines()[-1] == "}" and "\n\n\n" not in config
    # nginx's own error pages carry the app's envelopes of the same errors.
    for status, error in NGINX_ERRORS.items():
        assert f"return {status} '{json.dumps(v1_envelope(error), separators=(',', ':'))}\\n';" in config
