"""Helpers shared by the live-URL, CDN and scope tests: stacks with Redis limits, clients from chosen addresses."""

import io
import random
import secrets
from urllib.parse import urlencode

import requests
from PIL import Image
from requests.adapters import HTTPAdapter

from tests.conftest import start_stack

REDIS_URI = "redis://127.0.0.1:6379/5"


def start_live_stack(stack_root, mysql_databases, database_kind, **env):
    """A stack with Redis limits under a key prefix of its own, so earlier runs' counters never apply."""
    env.setdefault("GOODEYE_RATELIMIT_KEY_PREFIX", f"test-live-{secrets.token_hex(6)}")
    return start_stack(stack_root, mysql_databases, database_kind, GOODEYE_RATELIMIT_STORAGE_URI=REDIS_URI, **env)


class SourceAddressAdapter(HTTPAdapter):
    """Connects from a given local address; requests has no option for it, urllib3 does."""

    def __init__(self, source_address, **kwargs):
        self.source_address = source_address
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source_address, 0)
        super().init_poolmanager(*args, **kwargs)


def random_loopback():
    """A loopback address no other test is likely to use (nginx sees it as the client's)."""
    return f"127.{random.randrange(1, 255)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def client(address=None):
    """A requests session connecting from `address` (default: a fresh random loopback address)."""
    session = requests.Session()
    session.address = address or random_loopback()
    session.mount("http://", SourceAddressAdapter(session.address))
    return session


def live_url(stack, project, scope, prompt, **params):
    """The live URL of a prompt in a scope of `org/project`."""
    return f"{stack.url}/cdn/{project}/live/{scope}?{urlencode({'prompt': prompt, **params})}"


def live_get(stack, project, scope, prompt, session=None, **params):
    """GET a live URL from a fresh address (or with `session`)."""
    if session is not None:
        return session.get(live_url(stack, project, scope, prompt, **params))
    with client() as fresh:
        return fresh.get(live_url(stack, project, scope, prompt, **params))


def error_code(response):
    """The code of a `/cdn` or `/api/v1` error envelope."""
    assert response.headers["Content-Type"].startswith("application/json"), (response.status_code, response.headers)
    body = response.json()
    assert body["success"] is False
    return body["error"]["code"]


def decoded_size(data):
    """(width, height) of image bytes, decoding them for real."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.size


def unique(text):
    """`text` with a random suffix, so prompts and scopes never collide between tests or runs."""
    return f"{text} {secrets.token_hex(4)}"


def new_scope_slug():
    return f"scope-{secrets.token_hex(5)}"


def api(stack, owner, method, path, **kwargs):
    """An `/api/v1` call with the owner's key."""
    return requests.request(method, f"{stack.url}/api/v1{path}", headers=owner.headers, **kwargs)


def scope_of(stack, owner, slug):
    """The scope record, asserting 200."""
    response = api(stack, owner, "GET", f"/live/scopes/{slug}")
    assert response.status_code == 200, response.text
    return response.json()["data"]


def generated_images(stack, owner):
    """The owner's generated images (up to 100)."""
    response = requests.get(f"{stack.url}/v1/images?limit=100&source=generated", headers=owner.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]
