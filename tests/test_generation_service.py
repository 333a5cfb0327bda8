"""generate_and_host, the entry point live URLs share, called directly on a SQLite app."""

import json

import pytest

from goodeye import create_app
from goodeye.config import ConfigError, load_settings
from goodeye.context import current_context
from goodeye.errors import GenerationFailed, GeneratorNotFound, InvalidRequest
from goodeye.generation.requests import generation_request, hosting
from goodeye.generation.service import GenerationResult, anonymous_project_id, generate_and_host
from goodeye.identity.service import create_org, create_project
from goodeye.images.service import image_url
from goodeye.migrations import migrate
from goodeye.models import Generation, Image, Project
from tests.fake_openai import FAILING_MESSAGE, FakeOpenAI


@pytest.fixture()
def fake():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture()
def ctx(tmp_path, fake):
    settings = load_settings(
        {
            "GOODEYE_DATA_DIR": str(tmp_path),
            "GOODEYE_OPENAI_BASE_URL": fake.base_url,
            "GOODEYE_OPENAI_API_KEY": fake.api_key,
            "GOODEYE_FETCH_ALLOWLIST": fake.allowlist_entry,
        }
    )
    app = create_app(settings)
    with app.app_context():
        migrate()
        yield current_context()


@pytest.fixture()
def project(ctx):
    create_org("acme")
    return create_project("acme/site")[0]


def _generate(ctx, *, generator_id, project_id, visibility, ttl_seconds=None, client_ip=None, **params):
    """generate_and_host with its arguments read as a request's are: the generator looked up, every value checked."""
    request = generation_request(ctx.generators.get(generator_id), **params)
    return generate_and_host(ctx, request, project_id=project_id, placement=hosting(visibility, ttl_seconds), client_ip=client_ip)


def test_generate_and_host_returns_aligned_hosted_images(ctx, project):
    result = _generate(
        ctx, generator_id="builtin", prompt="a lake at dawn", n=2, seed=5, project_id=project.id,
        visibility="public", ttl_seconds=60, client_ip="203.0.113.9",
    )
    assert isinstance(result, GenerationResult)
    assert [image.project_id for image in result.hosted] == [project.id, project.id]
    assert result.image_urls == [image_url(ctx.settings, image) for image in result.hosted]
    assert all(image.visibility == "public" and image.expires_at is not None for image in result.hosted)
    assert all(image.source == "generated" for image in result.hosted)
    assert json.loads(result.hosted[1].generation_params)["index"] == 1
    row = Generation.get(Generation.id == result.generation.id)
    assert (row.status, row.client_ip, row.project_id) == ("succeeded", "203.0.113.9", project.id)


def test_provider_failure_raises_and_keeps_a_failed_row_only(ctx, project, fake):
    fake.mode = "failing"
    with pytest.raises(GenerationFailed) as excinfo:
        _generate(ctx, generator_id="openai", prompt="x", project_id=project.id, visibility="private")
    assert FAILING_MESSAGE in excinfo.value.message
    assert Image.select().count() == 0
    assert [(g.status, g.error) for g in Generation.select()] == [("failed", excinfo.value.message)]


@pytest.mark.parametrize(
    "changes, error",
    [
        ({"generator_id": "nope"}, GeneratorNotFound),
        ({"visibility": "secret"}, InvalidRequest),
        ({"ttl_seconds": 0}, InvalidRequest),
        ({"n": 9}, InvalidRequest),
        ({"template": "baroque"}, InvalidRequest),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(ctx, project, changes, error):
    arguments = {"generator_id": "builtin", "prompt": "x", "project_id": project.id, "visibility": "private", **changes}
    with pytest.raises(error):
        _generate(ctx, **arguments)
    assert Generation.select().count() == 0 and Image.select().count() == 0


def test_the_anonymous_project_is_made_once_without_live_scopes(ctx):
    first = anonymous_project_id()
    assert anonymous_project_id() == first
    project = Project.get_by_id(first)
    assert (project.org.slug, project.slug, project.allow_new_live_scopes) == ("goodeye-system", "anonymous", False)


def test_a_bad_allowlist_entry_stops_the_app_at_start(tmp_path):
    settings = load_settings({"GOODEYE_DATA_DIR": str(tmp_path), "GOODEYE_FETCH_ALLOWLIST": "https://x.example/path"})
    with pytest.raises(ConfigError, match="GOODEYE_FETCH_ALLOWLIST"):
        create_app(settings)
