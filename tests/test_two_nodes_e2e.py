"""Two nodes on one database and one S3 bucket, as a deployment of several nodes runs: a change
made through one node is refused or served by the other on its very next request, whatever
that node kept (nginx's cache of S3 objects, a decision, a pooled connection)."""

import hashlib
import json
import os
import time
from urllib.parse import urlsplit

import pytest
import requests

from tests import factories
from tests.conftest import s3_env, start_stack
from tests.test_images_e2e import error_code, uploaded
from tests.test_kept_decisions_e2e import last_modified, next_second


@pytest.fixture(scope="module")
def two_nodes(stack_root, mysql_databases, database_kind, s3_server):
    """(node A, node B): two stacks on one database and one bucket."""
    bucket = s3_env(s3_server)
    first = start_stack(stack_root, mysql_databases, database_kind, **bucket)
    second = start_stack(stack_root, mysql_databases, database_kind, database_url=first.settings.database, **bucket)
    yield first, second
    second.stack.stop()
    first.stack.stop()


def on(node, record):
    """The record's serving URL on `node` (each node has its own origin)."""
    return node.url + urlsplit(record["url"]).path


def test_private_new_bytes_and_delete_through_one_node_reach_the_others_next_request(two_nodes, http):
    node_a, node_b = two_nodes
    owner = node_a.new_owner()
    first, second = factories.png(color=(200, 30, 30)), factories.png(color=(30, 200, 30))
    record = uploaded(node_b, owner, first, visibility="public")
    for _ in range(3):
        served = http.get(on(node_a, record))
        assert served.status_code == 200 and served.content == first

    def change(method, path, **kwargs):
        response = requests.request(method, f"{node_b.url}{path}", headers=owner.headers, **kwargs)
        assert response.status_code in (200, 204), response.text

    change("PATCH", f"/v1/images/{record['id']}", json={"visibility": "private"})
    refused = http.get(on(node_a, record))
    assert refused.status_code == 401 and error_code(refused) == "auth_required"

    change("PATCH", f"/v1/images/{record['id']}", json={"visibility": "public"})
    assert http.get(on(node_a, record)).content == first

    change("PUT", f"/v1/images/{record['id']}/file", files={"file": ("new.png", second, "application/octet-stream")})
    renewed = http.get(on(node_a, record))
    assert renewed.content == second and renewed.headers["ETag"] == f'"{hashlib.sha256(second).hexdigest()}"'

    change("DELETE", f"/v1/images/{record['id']}")
    gone = http.get(on(node_a, record))
    assert gone.status_code == 404 and error_code(gone) == "image_not_found"


def test_a_signing_key_rotated_through_one_node_is_refused_by_the_other_at_once(two_nodes, http):
    node_a, node_b = two_nodes
    owner = node_a.new_owner()
    record = uploaded(node_b, owner, factories.png(color=(30, 30, 200)))
    signed = requests.post(f"{node_b.url}/v1/images/{record['id']}/signed-url", headers=owner.headers, json={"expires_in": 600})
    assert signed.status_code == 200, signed.text
    url = signed.json()["url"].replace(node_b.url, node_a.url)
    assert http.get(url).status_code == 200 and http.get(url).status_code == 200
    assert requests.post(f"{node_b.url}/v1/signing-key/rotate", headers=owner.headers).status_code == 200
    refused = http.get(url)
    assert refused.status_code == 403 and error_code(refused) == "invalid_signature"


def access_line(node, response):
    """nginx's access-log line of `response` on `node` (found by its request id)."""
    path = os.path.join(node.settings.run_dir, "nginx-access.log")
    request_id = response.headers["X-Request-Id"]
    for _ in range(200):
        with open(path) as handle:
            for line in handle:
                if request_id in line:
                    return json.loads(line)
        time.sleep(0.01)
    raise AssertionError(f"no access-log line for {request_id}")


def served_from_copy(node, record, http):
    """GET the record on `node` until nginx serves it from the node's copy without asking the app; that response.

    The first requests go to the app, which asks the node's follower for a copy.
    """
    for _ in range(500):
        response = http.get(on(node, record))
        assert response.status_code == 200, response.text
        if access_line(node, response)["upstream_time"] == "":
            return response
        time.sleep(0.01)
    raise AssertionError("nginx never served the image from the node's copy")


@pytest.mark.parametrize("change", ["private", "delete", "new bytes", "filename"])
def test_a_change_through_one_node_reaches_the_copy_another_node_serves_alone(two_nodes, http, change):
    node_a, node_b = two_nodes
    owner = node_a.new_owner()
    first, second = factories.png(color=(20, 120, 220)), factories.png(color=(220, 120, 20))
    record = uploaded(node_b, owner, first, visibility="public")
    alone = served_from_copy(node_a, record, http)
    from_app = requests.get(on(node_b, record), headers=owner.headers)
    assert alone.content == first
    for name in ("ETag", "Last-Modified", "Cache-Control", "Content-Type", "X-Image-Id", "X-Content-Type-Options"):
        assert alone.headers[name] == from_app.headers[name], name
    assert copies_of(node_a, record) == 1

    image = f"{node_b.url}/v1/images/{record['id']}"
    if change == "private":
        sent = requests.patch(image, headers=owner.headers, json={"visibility": "private"})
    elif change == "delete":
        sent = requests.delete(image, headers=owner.headers)
    elif change == "new bytes":
        sent = requests.put(f"{image}/file", headers=owner.headers, files={"file": ("new.png", second, "application/octet-stream")})
    else:
        next_second()
        sent = requests.patch(image, headers=owner.headers, json={"filename": "renamed.png"})
    assert sent.status_code in (200, 204), sent.text
    assert copies_of(node_a, record) == 0

    answer = http.get(on(node_a, record))
    if change == "private":
        assert answer.status_code == 401 and error_code(answer) == "auth_required"
    elif change == "delete":
        assert answer.status_code == 404 and error_code(answer) == "image_not_found"
    elif change == "new bytes":
        assert answer.content == second and answer.headers["ETag"] == f'"{hashlib.sha256(second).hexdigest()}"'
    else:
        assert answer.content == first
        assert answer.headers["Last-Modified"] == last_modified(sent.json()) != alone.headers["Last-Modified"]


def copies_of(node, record):
    """How many copies of the record's image `node` keeps."""
    try:
        names = os.listdir(os.path.join(node.settings.link_dir, record["token"][:2]))
    except FileNotFoundError:
        return 0
    return [name.split("~")[0] for name in names].count(record["token"])
