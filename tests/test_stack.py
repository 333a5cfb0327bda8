"""How the parts of a running stack hold together: nginx's kept connections to gunicorn."""

import os
import time

import requests

from goodeye.stack import UPSTREAM_KEEPALIVE_SECONDS
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
