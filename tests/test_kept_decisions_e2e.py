"""Decisions nginx keeps for an hour (an unexpiring public image by token or filename) never serve what changed.

Every change of what a kept decision's headers say renames or removes the image's link
(goodeye/serving/links.py), so the next request finds the link gone and asks again.
"""

import os
import time
from datetime import datetime, timezone
from email.utils import format_datetime

import requests

from goodeye import create_app
from goodeye.serving.decide import KEEP_SECONDS, LASTING_KEEP_SECONDS
from goodeye.stack import Stack
from tests.conftest import start_stack
from tests.test_cdn_e2e import upload


def patch(stack, owner, record, **changes):
    response = requests.patch(f"{stack.url}/v1/images/{record['id']}", headers=owner.headers, json=changes)
    assert response.status_code == 200, response.text
    return response.json()


def last_modified(record):
    """The Last-Modified an image record's updated_at gives (whole seconds)."""
    moment = datetime.fromisoformat(record["updated_at"].replace("Z", "+00:00")).astimezone(timezone.utc)
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


def next_second():
    """Wait for the wall clock's next whole second, so a change made now has a later Last-Modified."""
    start = int(time.time())
    while int(time.time()) == start:
        time.sleep(0.01)


_APPS = {}


def decision(stack, path):
    """The check's decision for an anonymous GET of `path`, asked of the stack's app in-process as nginx asks it."""
    app = _APPS.get(stack.url) or _APPS.setdefault(stack.url, create_app(stack.settings))
    kind, _, rest = path.removeprefix("/").partition("/")
    if kind == "v1":
        ask = f"/_goodeye/decide/v1/{rest.removeprefix('i/').partition('.')[0]}"
    else:
        ask = "/_goodeye/decide/img/" + rest.replace("/img/", "/", 1)
    return app.test_client().get(ask)


def test_a_public_image_by_token_or_filename_is_kept_an_hour_and_an_alias_or_an_expiring_one_not(plain_stack):
    owner = plain_stack.new_owner()
    record = upload(plain_stack, owner, filename="kept.png", visibility="public", alias="@kept")
    expiring = upload(plain_stack, owner, filename="brief.png", visibility="public", ttl_seconds=600)
    kept = {
        f"/v1/i/{record['token']}.png": LASTING_KEEP_SECONDS,
        f"/cdn/{owner.project}/img/kept.png": LASTING_KEEP_SECONDS,
        f"/cdn/{owner.project}/img/@kept": 0,
        f"/v1/i/{expiring['token']}.png": KEEP_SECONDS,
        f"/cdn/{owner.project}/img/brief.png": KEEP_SECONDS,
    }
    for path, seconds in kept.items():
        answer = decision(plain_stack, path)
        assert (answer.status_code, answer.headers["X-Accel-Expires"]) == (204, str(seconds)), path


def test_a_renamed_file_is_gone_under_its_old_name_on_the_next_request(plain_stack, http):
    owner = plain_stack.new_owner()
    record = upload(plain_stack, owner, filename="before.png", visibility="public")
    old_url = f"{plain_stack.url}/cdn/{owner.project}/img/before.png"
    assert http.get(old_url).status_code == 200
    assert http.get(old_url).status_code == 200  # served after the kept decision
    patch(plain_stack, owner, record, filename="after.png")
    assert http.get(old_url).status_code == 404
    assert http.get(f"{plain_stack.url}/cdn/{owner.project}/img/after.png").headers["X-Image-Id"] == record["id"]


def test_a_change_of_metadata_shows_in_last_modified_on_the_next_request(plain_stack, http):
    owner = plain_stack.new_owner()
    holder = upload(plain_stack, owner, filename="holder.png", visibility="public", alias="@hero")
    taker = upload(plain_stack, owner, filename="taker.png", visibility="public")
    urls = {record["id"]: f"{plain_stack.url}/v1/i/{record['token']}.png" for record in (holder, taker)}
    for record in (holder, taker):
        for _kept in range(2):
            assert http.get(urls[record["id"]]).headers["Last-Modified"] == last_modified(record)
    next_second()
    # The alias moves: the taker changes, and so does the holder it is taken from.
    taker = patch(plain_stack, owner, taker, alias="@hero")
    holder = requests.get(f"{plain_stack.url}/v1/images/{holder['id']}", headers=owner.headers).json()
    for record in (holder, taker):
        served = http.get(urls[record["id"]])
        assert served.status_code == 200 and served.headers["Last-Modified"] == last_modified(record), record["id"]


def test_kept_decisions_start_afresh_with_the_stack(stack_root, mysql_databases, database_kind, http):
    running = start_stack(stack_root, mysql_databases, database_kind, GOODEYE_PUBLIC_MAX_AGE="600")
    try:
        owner = running.new_owner()
        record = upload(running, owner, visibility="public")
        for _kept in range(2):
            assert http.get(record["url"]).headers["Cache-Control"] == "public, max-age=600"
        running.stack.stop()
        # The same data dir with another setting: a decision kept on disk would still say 600.
        running.stack = Stack({**running.env, "GOODEYE_PUBLIC_MAX_AGE": "300"}, with_sweeper=False)
        running.stack.start()
        assert requests.get(record["url"]).headers["Cache-Control"] == "public, max-age=300"
    finally:
        running.stack.stop()


def test_a_signed_urls_first_use_is_not_kept_so_its_second_asks_again(plain_stack, http):
    owner = plain_stack.new_owner()
    record = upload(plain_stack, owner, visibility="private")
    signed = requests.post(f"{plain_stack.url}/v1/images/{record['id']}/signed-url", headers=owner.headers, json={"expires_in": 600})
    assert signed.status_code == 200, signed.text
    for _ in range(2):
        assert http.get(signed.json()["url"]).status_code == 200
    # Pages often sign anew for every view: nginx writes a signed URL's decision only from its second use.
    wait_for_decide_asks(plain_stack, record["token"], 2)


def wait_for_decide_asks(stack, token, count):
    """Wait (bounded) until the serving pool's log shows `count` decisions asked for the token."""
    path = os.path.join(stack.settings.run_dir, "gunicorn-serve.log")
    for _ in range(500):
        with open(path) as handle:
            asked = sum(f"/_goodeye/decide/v1/{token}" in line for line in handle)
        if asked >= count:
            return
        time.sleep(0.01)
    raise AssertionError(f"{asked} decisions asked for {token}, expected {count}")
