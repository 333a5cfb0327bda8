"""Live URLs and scopes called as services on a SQLite app, so a test can step in between two
statements of a transaction (a commit another request makes meanwhile, a deadlock) deterministically."""

import pytest
from peewee import OperationalError

from goodeye import create_app
from goodeye.config import load_settings
from goodeye.context import current_context
from goodeye.errors import RateLimited
from goodeye.identity.service import create_org, create_project
from goodeye.live import scopes
from goodeye.live import service as live
from goodeye.migrations import migrate
from goodeye.models import Image, LiveScope, Project

SCOPE = "hero"


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


def _deadlock_once(monkeypatch, owner, name, *, before_call=False):
    """Make the first call of `owner.name` fail as MySQL does when it rolls a transaction back (1213);
    after doing its work unless `before_call`. The calls made, in a list."""
    original = getattr(owner, name)
    calls = []

    def flaky(*args, **kwargs):
        calls.append(name)
        result = None if before_call and len(calls) == 1 else original(*args, **kwargs)
        if len(calls) == 1:
            raise OperationalError(1213, "Deadlock found when trying to get lock; try restarting transaction")
        return result

    monkeypatch.setattr(owner, name, flaky)
    return calls


def test_a_live_miss_whose_transaction_deadlocks_runs_it_again(ctx, project_id, monkeypatch):
    calls = _deadlock_once(monkeypatch, live, "update_image_rows")
    image = _live_image(ctx, project_id)
    assert len(calls) == 2
    assert image.live_scope_id == LiveScope.get(LiveScope.slug == SCOPE).id


def test_a_regeneration_whose_transaction_deadlocks_runs_it_again(ctx, project_id, monkeypatch):
    image = _live_image(ctx, project_id)
    calls = _deadlock_once(monkeypatch, scopes, "swap_image_bytes")
    assert scopes.regenerate(ctx, project_id, SCOPE) == [image.id]
    assert len(calls) == 2
    regenerated = Image.get(Image.pk == image.pk)
    assert regenerated.sha256 != image.sha256 and Image.select().count() == 1


@pytest.mark.parametrize("storage", ["database://", "memory://"])
def test_a_new_scope_whose_transaction_deadlocks_charges_its_client_once(tmp_path, storage, monkeypatch):
    settings = load_settings(
        {"GOODEYE_DATA_DIR": str(tmp_path), "GOODEYE_RATELIMIT_STORAGE_URI": storage, "GOODEYE_WORKERS": "1"}
    )
    with create_app(settings).app_context():
        migrate()
        ctx = current_context()
        create_org("acme")
        project_id = create_project("acme/site")[0].id
        calls = _deadlock_once(monkeypatch, live, "new_id", before_call=True)
        image = _live_image(ctx, project_id)
        assert len(calls) == 2 and image.live_scope_id == LiveScope.get(LiveScope.slug == SCOPE).id
        limit, counter = live._client_limit(ctx, project_id, "203.0.113.7")
        state = ctx.limiter.peek(limit, *counter)
        assert state.limit - state.remaining == 1


def test_a_client_past_its_limit_is_refused_alike_for_a_known_scope_and_a_new_one(ctx, project_id):
    Project.update(live_generations_per_ip_per_hour=1).where(Project.id == project_id).execute()
    _live_image(ctx, project_id)
    refusals = []
    for slug in (SCOPE, "new-scope"):  # tested before the budget is taken; taken with the new scope
        with pytest.raises(RateLimited) as refused:
            live.serve_live(ctx, project_id, True, slug, live.LiveRequest("another prompt"), "203.0.113.7")
        refusals.append((refused.value.code, refused.value.message, sorted(refused.value.headers)))
    assert refusals[0] == refusals[1]
    assert refusals[0][:2] == ("IP_RATE_LIMIT_EXCEEDED", "At most 1/hour new live images per client address.")
    assert "Retry-After" in refusals[0][2]
    assert LiveScope.get_or_none(LiveScope.slug == "new-scope") is None
