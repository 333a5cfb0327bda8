"""S3 blob storage against a real S3 endpoint (moto's server): the store,
nginx streaming and caching S3 objects, and `goodeye admin storage migrate`."""

import hashlib
import json
import os
import secrets
import socket

import pytest
import requests

from goodeye.config import ConfigError
from goodeye.storage import StorageUnavailable
from goodeye.storage.s3 import MULTIPART_BYTES, S3Storage
from tests import factories
from tests.conftest import s3_env, start_stack
from tests.test_images_e2e import error_code, uploaded


def sha(data):
    return hashlib.sha256(data).hexdigest()


def object_key(sha256, prefix=""):
    return f"{prefix}{sha256[:2]}/{sha256[2:4]}/{sha256}"


@pytest.fixture()
def bucket(s3_server):
    return s3_server.create_bucket(f"unit-{secrets.token_hex(6)}")


def make_store(s3_server, bucket, **options):
    return S3Storage(bucket, endpoint_url=s3_server.endpoint_url, region="us-east-1", **options)


# --- the store --------------------------------------------------------------


def test_blobs_round_trip_under_content_addressed_keys_with_their_content_type(s3_server, bucket):
    store = make_store(s3_server, bucket, prefix="blobs/")
    data = factories.png()
    name = sha(data)
    assert not store.exists(name)
    store.put(name, data, "image/png")
    store.put(name, data, "image/png")  # idempotent
    head = s3_server.client().head_object(Bucket=bucket, Key=object_key(name, "blobs/"))
    assert head["ContentType"] == "image/png" and head["ContentLength"] == len(data)
    assert store.exists(name)
    with store.open(name) as stream:
        assert stream.read() == data
    assert [blob for blob, _modified in store.iter_blobs()] == [name]
    store.delete(name)
    store.delete(name)  # already gone is not an error
    assert not store.exists(name)
    with pytest.raises(FileNotFoundError):
        store.open(name)


def test_large_bodies_are_uploaded_in_parts(s3_server, bucket):
    store = make_store(s3_server, bucket)
    data = os.urandom(MULTIPART_BYTES + 1024)
    store.put(sha(data), data, "image/jpeg")
    head = s3_server.client().head_object(Bucket=bucket, Key=object_key(sha(data)))
    assert head["ETag"].endswith('-2"'), head["ETag"]  # a multipart ETag names its part count
    assert head["ContentType"] == "image/jpeg"
    with store.open(sha(data)) as stream:
        assert stream.read() == data


def test_only_keys_of_our_layout_are_listed(s3_server, bucket):
    store = make_store(s3_server, bucket, prefix="g/")
    data = factories.gif()
    store.put(sha(data), data, "image/gif")
    client = s3_server.client()
    for foreign in ("g/readme.txt", f"g/00/00/{sha(data)}", f"other/{object_key(sha(data))}", "g/ab/cd/abcd"):
        client.put_object(Bucket=bucket, Key=foreign, Body=b"not ours")
    assert [blob for blob, _modified in store.iter_blobs()] == [sha(data)]


def test_vendor_errors_stop_at_the_boundary(s3_server, bucket):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    unreachable = S3Storage(bucket, endpoint_url=f"http://127.0.0.1:{closed_port}", timeout_seconds=1)
    no_bucket = make_store(s3_server, f"missing-{secrets.token_hex(4)}")
    for store in (unreachable, no_bucket):
        with pytest.raises(StorageUnavailable):
            store.put("ab" * 32, b"x", "image/png")
        with pytest.raises(StorageUnavailable):
            store.check()
        with pytest.raises(StorageUnavailable):
            list(store.iter_blobs())
    for call in (unreachable.open, unreachable.exists, unreachable.delete):
        with pytest.raises(StorageUnavailable):
            call("ab" * 32)
    with pytest.raises(ConfigError):
        S3Storage("")
    with pytest.raises(ConfigError):
        S3Storage(bucket, prefix="a b/")


def test_accel_target_is_a_presigned_url_split_for_nginx(s3_server, bucket):
    store = make_store(s3_server, bucket)
    data = factories.png()
    store.put(sha(data), data, "image/png")
    target = store.accel_target(sha(data))
    assert target.startswith(f"s3/http/127.0.0.1:{s3_server.port}/{bucket}/{object_key(sha(data))}?")
    assert "X-Amz-Signature=" in target
    assert store.accel_target(sha(data)) == target  # signed once per window, not per request
    scheme, host_and_path = target[len("s3/"):].split("/", 1)
    assert requests.get(f"{scheme}://{host_and_path}").content == data


# --- serving: the client sees the same thing whatever the store ------------

SERVED_HEADERS = {
    "server", "date", "content-type", "content-length", "connection", "cache-control", "etag",
    "last-modified", "accept-ranges", "x-content-type-options", "x-image-id", "x-request-id",
}


def test_served_headers_do_not_depend_on_the_store(stack, owner, http):
    record = uploaded(stack, owner, factories.png(), visibility="public")
    response = http.get(record["url"])
    assert response.status_code == 200
    names = {name.lower() for name in response.headers}
    assert not {name for name in names if name.startswith(("x-amz", "x-minio"))}
    assert names == SERVED_HEADERS
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["Cache-Control"] == f"public, max-age={stack.settings.public_max_age}"


@pytest.fixture(scope="module")
def nginx_s3(stack_root, mysql_databases, database_kind, s3_server):
    running = start_stack(stack_root, mysql_databases, database_kind, GOODEYE_ACCEL="nginx", **s3_env(s3_server))
    yield running
    running.stack.stop()


def _object_gets(s3_server, sha256):
    return [entry for entry in s3_server.requests_for(sha256) if entry[0] == "GET"]


def test_repeat_reads_are_served_from_nginx_cache(nginx_s3, s3_server, http):
    owner = nginx_s3.new_owner()
    data = factories.png((120, 90))
    record = uploaded(nginx_s3, owner, data)
    first = http.get(record["url"], headers={**owner.headers, "Range": "bytes=5-14"})
    assert first.status_code == 206 and first.content == data[5:15]
    assert first.headers["Cache-Control"] == "private, no-store"
    full = http.get(record["url"], headers=owner.headers)
    assert full.status_code == 200 and full.content == data
    head = http.head(record["url"], headers=owner.headers)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(data)
    not_modified = http.get(record["url"], headers={**owner.headers, "If-None-Match": full.headers["ETag"]})
    assert not_modified.status_code == 304
    assert http.get(record["url"]).status_code == 401  # the check still runs before the cache
    assert len(_object_gets(s3_server, record["sha256"])) == 1


def test_object_missing_from_the_bucket_is_json_404(nginx_s3, s3_server, http):
    owner = nginx_s3.new_owner()
    record = uploaded(nginx_s3, owner, factories.png((33, 17)), visibility="public")
    s3_server.client().delete_object(Bucket=nginx_s3.settings.s3_bucket, Key=object_key(record["sha256"]))
    response = http.get(record["url"])
    assert response.status_code == 404 and error_code(response) == "image_not_found"
    assert not [name for name in response.headers if name.lower().startswith("x-amz")]


@pytest.mark.parametrize("status", [403, 500, 503])
def test_store_errors_through_nginx_are_json_503(nginx_s3, s3_server, http, status):
    owner = nginx_s3.new_owner()
    record = uploaded(nginx_s3, owner, factories.png(), visibility="public")
    s3_server.failing_gets[record["sha256"]] = status
    try:
        response = http.get(record["url"])
    finally:
        del s3_server.failing_gets[record["sha256"]]
    assert response.status_code == 503 and error_code(response) == "service_unavailable"
    assert sha(http.get(record["url"]).content) == record["sha256"]  # errors are not cached


# --- goodeye admin storage migrate --------------------------------------------


@pytest.fixture(scope="module")
def local_stack(stack_root, mysql_databases, database_kind, s3_server):
    """A stack on local storage whose settings also name a bucket to migrate into."""
    env = {**s3_env(s3_server), "GOODEYE_STORAGE": "local"}
    running = start_stack(stack_root, mysql_databases, database_kind, GOODEYE_ACCEL="nginx", **env)
    yield running
    running.stack.stop()


def migrate(stack, *args):
    result = stack.admin("storage", "migrate", *args, "--json")
    return result.exit_code, json.loads(result.stdout)


def test_migrate_to_s3_resumes_verifies_and_switches_over(local_stack, s3_server, stack_root, mysql_databases, database_kind, http):
    owner = local_stack.new_owner()
    images = [uploaded(local_stack, owner, maker(), visibility="public") for maker in (factories.png, factories.jpeg, factories.webp)]
    bucket = local_stack.settings.s3_bucket
    client = s3_server.client()
    # An earlier, interrupted run copied one blob and left damaged bytes under another's key.
    done, damaged = images[0], images[1]
    client.put_object(Bucket=bucket, Key=object_key(done["sha256"]), Body=http.get(done["url"]).content, ContentType="image/png")
    client.put_object(Bucket=bucket, Key=object_key(damaged["sha256"]), Body=b"half a blob")

    code, report = migrate(local_stack, "--to", "s3")
    assert code == 0, report
    assert (report["copied"], report["present"], report["missing"], report["corrupt"]) == (2, 1, [], [])
    for record in images:
        stored = client.get_object(Bucket=bucket, Key=object_key(record["sha256"]))
        assert sha(stored["Body"].read()) == record["sha256"]
        assert stored["ContentType"] == record["content_type"]
        assert http.get(record["url"]).status_code == 200  # still serving from local
    assert migrate(local_stack, "--to", "s3") == (0, {**report, "copied": 0, "present": 3})

    # Switch-over: a node on the same database with GOODEYE_STORAGE=s3 serves every image.
    switched = start_stack(
        stack_root, mysql_databases, database_kind, GOODEYE_ACCEL="nginx",
        **{**s3_env(s3_server), "GOODEYE_S3_BUCKET": bucket, "GOODEYE_DATABASE_URL": local_stack.settings.database},
    )
    try:
        for record in images:
            path = record["url"].split("/v1/i/", 1)[1]
            response = http.get(f"{switched.url}/v1/i/{path}")
            assert response.status_code == 200 and sha(response.content) == record["sha256"]
        # ... and back: into that node's (empty) local directory.
        code, back = migrate(switched, "--to", "local")
        assert code == 0 and (back["copied"], back["present"], back["corrupt"]) == (3, 0, [])
        for record in images:
            path = os.path.join(switched.settings.blob_dir, record["sha256"][:2], record["sha256"][2:4], record["sha256"])
            with open(path, "rb") as handle:
                assert sha(handle.read()) == record["sha256"]
    finally:
        switched.stack.stop()


def test_migrate_reports_a_referenced_blob_missing_from_the_source(local_stack, s3_server):
    owner = local_stack.new_owner()
    record = uploaded(local_stack, owner, factories.png((61, 7)))
    local_stack.storage.delete(record["sha256"])
    code, report = migrate(local_stack, "--to", "s3")
    assert code == 1 and report["missing"] == [record["sha256"]] and not report["ok"]
    result = local_stack.admin("storage", "migrate", "--from", "local", "--to", "local")
    assert result.exit_code != 0 and "nothing to copy" in result.stderr
