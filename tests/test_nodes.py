"""A node's follower and the changes that wait for it, driven in-process on SQLite and moto's S3 server.

The follower runs in the test's thread, one poll at a time, so what a change
waits for happens exactly when the test says.
"""

import os
import threading
from datetime import timedelta

import pytest

from goodeye import create_app
from goodeye.config import load_settings
from goodeye.context import current_context
from goodeye.db import using
from goodeye.identity.service import create_org, create_project
from goodeye.images import service
from goodeye.images.requests import ImageChanges
from goodeye.images.service import Placement
from goodeye.migrations import migrate
from goodeye.models import Image, LinkChange, ServingNode, utcnow
from goodeye.serving import nodes
from goodeye.serving.check import ServableImage
from goodeye.serving.nodes import Follower, announce
from tests.conftest import s3_env
from tests.test_images_service import picture


@pytest.fixture()
def s3_ctx(tmp_path, s3_server):
    """A Context on SQLite and a fresh bucket, with nginx's fast path (so it keeps copies)."""
    app = create_app(load_settings({"GOODEYE_DATA_DIR": str(tmp_path), **s3_env(s3_server)}))
    with app.app_context():
        migrate()
        yield current_context()


@pytest.fixture()
def project_id(s3_ctx):
    create_org("acme")
    return create_project("acme/site")[0].id


@pytest.fixture()
def follower(s3_ctx):
    """A follower that has polled once (its lease is held), not yet running on its own."""
    follower = Follower(s3_ctx, "node-a")
    follower.poll()
    yield follower
    follower.downloads.shutdown(wait=True)


def upload(ctx, project_id, color, visibility="public"):
    return service.create_image(ctx, project_id, picture(color=color), Placement(visibility=visibility))


def copy_path(ctx, image):
    """Where the image's copy would be, under the name its row gives now."""
    return os.path.join(ctx.links.root, ctx.links.relative_path(ServableImage.from_image(reloaded(image))))


def reloaded(image):
    return Image.get(Image.pk == image.pk)


def copies(ctx):
    """Every file under the copies' directory (temporary downloads included)."""
    return sorted(name for _directory, _subdirs, names in os.walk(ctx.links.root) for name in names)


def finish_downloads(follower):
    for future in list(follower.pending.values()):
        future.result(timeout=30)


def copied(follower, *images):
    """Ask for copies of the images, let the downloads finish and the next poll place them."""
    for image in images:
        follower.copies.want(image)
    follower.poll()
    finish_downloads(follower)
    follower.poll()


def test_a_wanted_public_image_is_copied_under_its_link_name_and_a_private_one_is_not(s3_ctx, project_id, follower):
    public = upload(s3_ctx, project_id, (200, 30, 30))
    private = upload(s3_ctx, project_id, (30, 200, 30), visibility="private")
    copied(follower, public, private)
    with open(copy_path(s3_ctx, public), "rb") as handle:
        assert handle.read() == picture(color=(200, 30, 30))
    assert not os.path.exists(copy_path(s3_ctx, private))
    assert len(copies(s3_ctx)) == 1
    node = ServingNode.get(ServingNode.name == "node-a")
    assert node.lease_until > utcnow() and node.followed_seq == 0


def test_a_change_answers_only_once_the_follower_has_dropped_the_copy(s3_ctx, project_id, follower):
    image = upload(s3_ctx, project_id, (200, 30, 30))
    copied(follower, image)
    path = copy_path(s3_ctx, image)
    assert os.path.exists(path)
    seen_at_return = []

    def make_private():
        with using(s3_ctx.database):
            service.update_image(s3_ctx, project_id, image.id, ImageChanges(visibility="private"))
            seen_at_return.append(os.path.exists(path))

    change = threading.Thread(target=make_private)
    change.start()
    wait_for(lambda: LinkChange.select().where(LinkChange.token == image.token).exists())
    # Committed and announced, but this node has not polled since: the change is still waiting.
    change.join(timeout=0.3)
    assert change.is_alive()
    while change.is_alive():
        follower.poll()
        change.join(timeout=0.01)
    assert seen_at_return == [False]


def wait_for(condition, attempts=3000):
    for _ in range(attempts):
        if condition():
            return
        threading.Event().wait(0.01)
    raise AssertionError("the condition never held")


@pytest.mark.parametrize("change", ["private", "new bytes", "deleted"])
def test_a_copy_downloaded_before_a_change_is_never_placed(s3_ctx, project_id, follower, change):
    image = upload(s3_ctx, project_id, (200, 30, 30))
    follower.copies.want(image)
    follower.poll()
    finish_downloads(follower)
    # Committed by another node, whose announcement this node has not read yet.
    if change == "private":
        Image.update(visibility="private").where(Image.pk == image.pk).execute()
    elif change == "new bytes":
        Image.update(sha256="0" * 64).where(Image.pk == image.pk).execute()
    else:
        Image.delete().where(Image.pk == image.pk).execute()
    follower.poll()
    assert copies(s3_ctx) == []


def test_nodes_whose_lease_ran_out_are_not_waited_for(s3_ctx, project_id, monkeypatch):
    ServingNode.create(name="gone", followed_seq=0, lease_until=utcnow() - timedelta(seconds=1))
    monkeypatch.setattr(nodes.time, "sleep", lambda _seconds: pytest.fail("waited for a node without a lease"))
    image = upload(s3_ctx, project_id, (200, 30, 30))
    announce(s3_ctx, [image.token])
    assert [row.seq for row in LinkChange.select().where(LinkChange.token == image.token)] == [1]


def test_a_follower_past_its_lease_drops_every_copy_and_places_none(s3_ctx, project_id, follower):
    first, second = upload(s3_ctx, project_id, (200, 30, 30)), upload(s3_ctx, project_id, (30, 30, 200))
    copied(follower, first)
    assert len(copies(s3_ctx)) == 1
    follower.copies.want(second)
    follower.poll()
    finish_downloads(follower)
    with follower.lock:
        follower.serve_until = 0.0  # as if no poll had reached the database for a lease
    watchdog = threading.Thread(target=follower._watchdog)
    watchdog.start()
    wait_for(lambda: copies(s3_ctx) == [])
    follower.stopping.set()
    watchdog.join()
    follower._place_downloads()
    assert copies(s3_ctx) == []


def test_copies_beyond_the_size_cap_go_oldest_first(s3_ctx, project_id, follower):
    images = [upload(s3_ctx, project_id, (40 * i, 30, 30)) for i in range(3)]
    follower.max_bytes = images[1].size_bytes + images[2].size_bytes
    for image in images:
        copied(follower, image)
    assert [os.path.exists(copy_path(s3_ctx, image)) for image in images] == [False, True, True]


def test_a_stopped_follower_leaves_no_copy_and_no_lease(s3_ctx, project_id):
    image = upload(s3_ctx, project_id, (200, 30, 30))
    follower = Follower(s3_ctx, "node-b")

    def run():
        with using(s3_ctx.database):
            follower.run()

    running = threading.Thread(target=run)
    running.start()
    follower.copies.want(image)
    wait_for(lambda: os.path.exists(copy_path(s3_ctx, image)))
    assert ServingNode.select().where(ServingNode.name == "node-b").exists()
    follower.stopping.set()
    running.join(timeout=30)
    assert not running.is_alive()
    assert copies(s3_ctx) == [] and not ServingNode.select().where(ServingNode.name == "node-b").exists()


def test_a_change_is_announced_only_after_its_commit(s3_ctx, project_id):
    image = upload(s3_ctx, project_id, (200, 30, 30))
    with pytest.raises(RuntimeError, match="after the change's commit"):
        with s3_ctx.database.atomic():
            announce(s3_ctx, [image.token])
    assert not LinkChange.select().exists()


def test_changes_are_numbered_in_the_order_they_commit(s3_ctx, project_id):
    images = [upload(s3_ctx, project_id, (40 * i, 30, 30)) for i in range(3)]
    for image in images:
        announce(s3_ctx, [image.token, image.token])
    assert [(row.seq, row.token) for row in LinkChange.select().order_by(LinkChange.seq)] == [
        (number, image.token) for number, image in enumerate(images, start=1)
    ]


@pytest.mark.parametrize("size,expected", [("1g", 1024**3), ("500m", 500 * 1024**2), ("64k", 64 * 1024), ("4096", 4096)])
def test_the_copies_cap_reads_nginx_size_notation(size, expected):
    assert load_settings({"GOODEYE_S3_CACHE_MAX_SIZE": size}).s3_cache_max_bytes == expected


def test_only_s3_nodes_behind_nginx_keep_copies():
    kept = {
        (storage, accel): load_settings({"GOODEYE_STORAGE": storage, "GOODEYE_ACCEL": accel, "GOODEYE_S3_BUCKET": "b"}).keeps_node_copies
        for storage in ("local", "s3")
        for accel in ("nginx", "off")
    }
    assert kept == {("local", "nginx"): False, ("local", "off"): False, ("s3", "nginx"): True, ("s3", "off"): False}
