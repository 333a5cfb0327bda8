"""Live URLs and scopes called as services on a SQLite app, so a test can step in between two
statements of a transaction (a commit another request makes meanwhile, a deadlock) deterministically."""

import pytest
from peewee import OperationalError

from goodeye import create_app
from goodeye.config import load_settings
from goodeye.context import current_context
from goodeye.identity.service import create_org, create_project
from goodeye.live import scopes
from goodeye.live import service as live
from goodeye.migrations import migrate
from goodeye.models import Image, LiveScope

SCOPE = "hero"


@pytest.fixture()
def ctx(tmp_path):
    app = create_app(load_settings({"GOODEYE_DATA_DIR": str(tmp_path)}))
    with app.app_context():
        migrate()
        yield current_context()


@pytest.fixture()
def project_id(ctx):
    create_org("acme")
    return create_project("acme/site")[0].id


def _live_image(ctx, project_id, prompt="a lighthouse"):
    outcome = live.serve_live(ctx, project_id, True, SCOPE, live.LiveRequest(prompt), "203.0.113.7")
    assert outcome.cache_status == "MISS"
    return Image.get(Image.id == outcome.image.id)


def test_scope_delete_keeps_an_image_given_an_alias_after_it_looked(ctx, project_id, monkeypatch):
    image = _live_image(ctx, project_id)
    remove_image_rows = scopes.remove_image_rows

    def alias_given_meanwhile(images, condition=None):
        # PATCH /v1/images/<id> {"alias": "@logo"} commits between the scope delete's SELECT and its DELETE.
        Image.update(alias="logo").where(Image.pk == image.pk).execute()
        return remove_image_rows(images, condition)

    monkeypatch.setattr(scopes, "remove_image_rows", alias_given_meanwhile)
    assert scopes.delete_scope(ctx, project_id, SCOPE) == (0, 1)
    kept = Image.get_or_none(Image.pk == image.pk)
    assert kept is not None and (kept.alias, kept.live_scope_id) == ("logo", None)
    assert ctx.storage.exists(kept.sha256)
