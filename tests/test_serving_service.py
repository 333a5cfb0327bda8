"""The serving checks called as services on a SQLite app: signed URLs, who may have an image's bytes, nginx's decisions."""

import os
import re
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import SimpleNamespace
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from flask import current_app
from werkzeug.datastructures import MultiDict

from goodeye.errors import AuthRequired, ImageNotFound, InvalidApiKey, InvalidRequest, InvalidSignature, SignatureExpired
from goodeye.identity.service import create_key, create_org, create_project, revoke_key
from goodeye.images.requests import ImageChanges
from goodeye.images.service import Placement, create_image, delete_image, image_url, sign_image_url, update_image
from goodeye.models import Image, SigningKey, utcnow
from goodeye.serving import check, decide, signing, views
from goodeye.serving.check import ServableImage, cache_control, find_by_token, find_for_request, find_signed
from goodeye.serving.tokens import TokenSigner
from tests import factories


@dataclass(frozen=True)
class Owner:
    """A project and a key of it."""

    project_id: int
    key: str
    key_id: str


def new_owner(org_slug):
    """A fresh org with one project and a key of that project."""
    create_org(org_slug)
    project = create_project(f"{org_slug}/site")[0]
    key_row, key = create_key(project)
    return Owner(project.id, key, key_row.id)


@pytest.fixture()
def owner(ctx):
    return new_owner("acme")


@pytest.fixture()
def other_owner(ctx):
    return new_owner("rival")


def upload(ctx, owner, visibility="private", ttl_seconds=None):
    """A new PNG image of the owner's project."""
    return create_image(ctx, owner.project_id, factories.png(), Placement(visibility=visibility, ttl_seconds=ttl_seconds))


def sign(ctx, owner, image, expires_in=600, variant=()):
    """A signed serving URL of the owner's image, as `POST /v1/images/{id}/signed-url` makes it."""
    return sign_image_url(ctx, owner.project_id, image.id, expires_in, tuple(variant))[0]


def query_pairs(url):
    """The URL's query as (name, value) pairs, in order."""
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def check_signed(ctx, token, pairs):
    """The image a signed URL of `token` with this query serves, parsed and checked as the serving view does."""
    return find_signed(ctx.tokens, token, signing.parse_signed_query(MultiDict(pairs)))


def flip(text, at=5):
    """`text` with one character changed."""
    return text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1:]


def set_expiry(image, expires_at):
    """Write an image's expiry straight to its row."""
    Image.update(expires_at=expires_at).where(Image.pk == image.pk).execute()


def decide_for(token, pairs=()):
    """nginx's decision (`/_goodeye/decide/v1/{token}`) for an anonymous request with this query."""
    with current_app.test_request_context(f"/_goodeye/decide/v1/{token}?{urlencode(list(pairs))}"):
        return views.decide_v1(token)


def refusals(call, cases, expected):
    """The cases (name -> arguments) for which `call` does not raise `expected`, with what it did instead."""
    wrong = {}
    for name, arguments in cases.items():
        try:
            outcome = call(*arguments)
        except expected:
            continue
        except Exception as error:  # noqa: BLE001 - reported below, with the case that raised it
            outcome = error
        wrong[name] = outcome
    return wrong


def max_age(cache_control_value):
    """The max-age of a Cache-Control value."""
    match = re.fullmatch(r"(?:public|private), max-age=(\d+)", cache_control_value)
    assert match, cache_control_value
    return int(match.group(1))


# --- signing: the URL and its query ------------------------------------------


def test_a_signed_url_names_expires_then_signature_and_serves_the_private_image(ctx, owner):
    image = upload(ctx, owner)
    url = sign(ctx, owner, image, expires_in=600)
    pairs = query_pairs(url)
    assert [name for name, _ in pairs] == ["expires", "signature"]
    assert url.startswith(image_url(ctx.settings, image) + "?")
    assert abs(int(pairs[0][1]) - (time.time() + 600)) <= 2
    assert len(pairs[1][1]) == 22  # 128 bits, base64url without padding
    served = check_signed(ctx, image.token, pairs)
    assert (served.id, served.visibility) == (image.id, "private")
    # What nginx serves a kept decision of this URL from.
    assert ctx.links.has(image.token, signed=True) and not ctx.links.has(image.token)


def test_a_signed_variant_url_names_its_parameters_in_order_and_covers_them(ctx, owner):
    image = upload(ctx, owner)
    url = sign(ctx, owner, image, variant=[("w", "640"), ("fm", "webp")])
    pairs = query_pairs(url)
    assert [name for name, _ in pairs] == ["w", "fm", "expires", "signature"]
    assert signing.parse_signed_query(MultiDict(pairs)).variant == (("w", "640"), ("fm", "webp"))
    assert check_signed(ctx, image.token, pairs).id == image.id
    with pytest.raises(InvalidSignature):
        check_signed(ctx, image.token, [("w", "256"), *pairs[1:]])
    with pytest.raises(InvalidSignature):
        check_signed(ctx, image.token, pairs[1:])


TAMPERED_QUERIES = {
    "one character changed": lambda e, s: [("expires", e), ("signature", flip(s))],
    "cut short": lambda e, s: [("expires", e), ("signature", s[:-3])],
    "empty": lambda e, s: [("expires", e), ("signature", "")],
    "not ASCII": lambda e, s: [("expires", e), ("signature", s[:-1] + "é")],
    "no signature": lambda e, s: [("expires", e)],
    "no expires": lambda e, s: [("signature", s)],
    "signature repeated": lambda e, s: [("expires", e), ("signature", s), ("signature", s)],
    "expires repeated": lambda e, s: [("expires", e), ("expires", e), ("signature", s)],
    "a variant parameter added": lambda e, s: [("w", "640"), ("expires", e), ("signature", s)],
    "a cache buster added": lambda e, s: [("expires", e), ("signature", s), ("v", "3")],
    "expires one second later": lambda e, s: [("expires", str(int(e) + 1)), ("signature", s)],
    "expires moved into the past": lambda e, s: [("expires", "1000000000"), ("signature", s)],
    "expires with a leading zero": lambda e, s: [("expires", "0" + e), ("signature", s)],
}


def test_a_tampered_signed_query_is_an_invalid_signature(ctx, owner):
    image = upload(ctx, owner)
    expires, signature = (value for _, value in query_pairs(sign(ctx, owner, image)))
    assert check_signed(ctx, image.token, [("expires", expires), ("signature", signature)]).id == image.id
    cases = {name: (tamper(expires, signature),) for name, tamper in TAMPERED_QUERIES.items()}
    assert refusals(lambda pairs: check_signed(ctx, image.token, pairs), cases, InvalidSignature) == {}


def test_an_expires_that_is_not_whole_unix_seconds_is_an_invalid_request():
    def parse(expires):
        return signing.parse_signed_query(MultiDict([("expires", expires), ("signature", "A" * 22)]))

    cases = {repr(expires): (expires,) for expires in ("soon", "-5", "9" * 400, "", "12.5", " 123", "１２３", "9" * 13)}
    assert refusals(parse, cases, InvalidRequest) == {}
    # Twelve digits are the most it takes; they parse to the number written.
    assert signing.parse_signed_query(MultiDict([("expires", "9" * 12), ("signature", "A")])).expires == 10**12 - 1


def test_a_genuine_signature_past_its_expiry_is_expired_not_invalid(ctx, owner):
    image = upload(ctx, owner)
    past = str(int(time.time()) - 10)
    signature = signing.compute_signature(signing.project_secret(owner.project_id), image.token, (), past)
    with pytest.raises(SignatureExpired) as refused:
        check_signed(ctx, image.token, [("expires", past), ("signature", signature)])
    assert refused.value.status == 403
    # A forged signature is refused as such, whatever its expiry.
    with pytest.raises(InvalidSignature):
        check_signed(ctx, image.token, [("expires", past), ("signature", flip(signature))])


def test_a_signed_url_stops_exactly_at_expires(ctx, owner, monkeypatch):
    image = upload(ctx, owner)
    pairs = query_pairs(sign(ctx, owner, image, expires_in=60))
    expires = int(pairs[0][1])
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: expires - 0.001))
    assert check_signed(ctx, image.token, pairs).id == image.id
    monkeypatch.setattr(signing, "time", SimpleNamespace(time=lambda: float(expires)))
    with pytest.raises(SignatureExpired):
        check_signed(ctx, image.token, pairs)


def test_one_projects_signature_does_not_open_another_projects_image(ctx, owner, other_owner):
    mine = upload(ctx, owner)
    theirs = upload(ctx, other_owner)
    sign(ctx, other_owner, theirs)  # the other project has a signing key of its own
    pairs = query_pairs(sign(ctx, owner, mine))
    with pytest.raises(InvalidSignature):
        check_signed(ctx, theirs.token, pairs)
    expires = str(int(time.time()) + 600)
    signed_with_my_key = signing.compute_signature(signing.project_secret(owner.project_id), theirs.token, (), expires)
    with pytest.raises(InvalidSignature):
        check_signed(ctx, theirs.token, [("expires", expires), ("signature", signed_with_my_key)])


def test_a_project_that_never_signed_accepts_no_signature(ctx, owner, other_owner):
    image = upload(ctx, other_owner)
    assert SigningKey.get_or_none(SigningKey.project == other_owner.project_id) is None
    expires = str(int(time.time()) + 600)
    forged = signing.compute_signature(signing.project_secret(owner.project_id), image.token, (), expires)
    with pytest.raises(InvalidSignature):
        check_signed(ctx, image.token, [("expires", expires), ("signature", forged)])
    # Without a secret there is nothing to compare against: not even an empty signature matches.
    with pytest.raises(InvalidSignature):
        signing.verify(None, image.token, signing.SignedQuery((), int(expires), expires, ""))


def test_rotating_the_signing_key_refuses_earlier_urls_at_the_next_check(ctx, owner):
    image = upload(ctx, owner)
    old_pairs = query_pairs(sign(ctx, owner, image))
    old_secret = signing.project_secret(owner.project_id)
    assert check_signed(ctx, image.token, old_pairs).id == image.id
    rotated_at = signing.rotate_secret(owner.project_id)
    row = SigningKey.get(SigningKey.project == owner.project_id)
    assert row.secret != old_secret and row.rotated_at == rotated_at
    with pytest.raises(InvalidSignature):
        check_signed(ctx, image.token, old_pairs)
    assert check_signed(ctx, image.token, query_pairs(sign(ctx, owner, image))).id == image.id


def test_a_project_keeps_one_secret_until_rotated(ctx, owner, other_owner):
    first = signing.project_secret(owner.project_id)
    assert signing.project_secret(owner.project_id) == first and len(first) == 64
    assert signing.project_secret(other_owner.project_id) != first
    assert SigningKey.select().count() == 2


def test_visibility_changes_do_not_touch_a_signed_url(ctx, owner):
    image = upload(ctx, owner)
    pairs = query_pairs(sign(ctx, owner, image))
    for visibility in ("public", "private"):
        update_image(ctx, owner.project_id, image.id, ImageChanges(visibility=visibility))
        served = check_signed(ctx, image.token, pairs)
        assert (served.id, served.visibility) == (image.id, visibility)


def test_signed_cache_control_is_bounded_by_the_signature_and_by_the_ttl(ctx, owner):
    now = datetime(2026, 6, 1, 12, 0, 0)
    epoch_now = int((now - datetime(1970, 1, 1)).total_seconds())
    permanent = ServableImage.from_image(upload(ctx, owner))
    assert signing.signed_cache_control(permanent, epoch_now + 50, now) == "private, max-age=50"
    short_ttl = replace(permanent, expires_at=now + timedelta(seconds=100))
    assert signing.signed_cache_control(short_ttl, epoch_now + 3600, now) == "private, max-age=100"
    assert signing.signed_cache_control(short_ttl, epoch_now + 30, now) == "private, max-age=30"
    assert signing.signed_cache_control(short_ttl, epoch_now - 5, now) == "private, max-age=0"
    gone = replace(permanent, expires_at=now - timedelta(seconds=1))
    assert signing.signed_cache_control(gone, epoch_now + 3600, now) == "private, max-age=0"


BAD_SIGNING_REQUESTS = [
    {"expires_in": 0}, {"expires_in": 604801}, {"expires_in": "60"}, {"expires_in": True}, {"expires_in": 1.5},
    {"expires_in": None}, {"w": 0}, {"w": 8193}, {"w": "640"}, {"h": False}, {"fit": "stretch"}, {"fm": "bmp"},
    {"colour": "red"},
]


def test_a_bad_signing_request_is_an_invalid_request():
    cases = {repr(body): (body,) for body in BAD_SIGNING_REQUESTS}
    assert refusals(signing.parse_sign_request, cases, InvalidRequest) == {}


def test_a_signing_request_gives_an_hour_by_default_and_its_variant_in_url_order(ctx):
    assert signing.parse_sign_request({}) == (3600, ())
    assert signing.parse_sign_request({"expires_in": 1}) == (1, ())
    assert signing.parse_sign_request({"fm": "webp", "fit": "cover", "h": 200, "w": 640, "expires_in": 604800}) == (
        604800, (("w", "640"), ("h", "200"), ("fit", "cover"), ("fm", "webp")),
    )


def test_a_query_asks_for_the_signed_check_when_it_names_expires_or_signature():
    assert signing.is_signed(MultiDict([("expires", "1")])) and signing.is_signed(MultiDict([("signature", "")]))
    assert not signing.is_signed(MultiDict([("w", "640"), ("fm", "webp")]))


# --- check: who may have the bytes -------------------------------------------


def test_a_public_image_is_served_to_anyone(ctx, owner, other_owner):
    image = upload(ctx, owner, visibility="public")
    assert find_by_token(ctx.tokens, image.token).id == image.id
    assert find_for_request(ctx.tokens, image.token, None).id == image.id
    assert find_for_request(ctx.tokens, image.token, owner.key).id == image.id
    assert find_for_request(ctx.tokens, image.token, other_owner.key).id == image.id


def test_private_image_access_matrix(ctx, owner, other_owner):
    image = upload(ctx, owner)
    with pytest.raises(AuthRequired) as anonymous:
        find_for_request(ctx.tokens, image.token, None)
    assert anonymous.value.status == 401
    served = find_for_request(ctx.tokens, image.token, owner.key)
    assert (served.id, served.project_id, served.sha256) == (image.id, owner.project_id, image.sha256)
    # Another project's private image answers like a missing one.
    with pytest.raises(ImageNotFound):
        find_for_request(ctx.tokens, image.token, other_owner.key)


def test_a_bad_key_is_refused_never_taken_as_anonymous(ctx, owner):
    images = [upload(ctx, owner, visibility="public"), upload(ctx, owner)]
    assert [find_for_request(ctx.tokens, image.token, owner.key).id for image in images] == [image.id for image in images]
    revoke_key(owner.key_id)
    cases = {
        f"{image.visibility} image, {name}": (image.token, key)
        for image in images
        for name, key in (("unknown key", "good_live_" + "x" * 40), ("malformed", "not-a-key"), ("empty", ""), ("revoked", owner.key))
    }
    assert refusals(lambda token, key: find_for_request(ctx.tokens, token, key), cases, InvalidApiKey) == {}


def test_a_bad_key_is_refused_whatever_the_token(ctx):
    for token in (ctx.tokens.new_token(), "A" * 32, "../../etc/passwd"):
        with pytest.raises(InvalidApiKey):
            find_for_request(ctx.tokens, token, "good_live_" + "x" * 40)


FINDERS = {
    "anonymous": lambda ctx, owner, image, pairs: find_by_token(ctx.tokens, image.token),
    "with the owner's key": lambda ctx, owner, image, pairs: find_for_request(ctx.tokens, image.token, owner.key),
    "signed": lambda ctx, owner, image, pairs: check_signed(ctx, image.token, pairs),
}


@pytest.mark.parametrize("find", FINDERS.values(), ids=FINDERS.keys())
def test_an_image_expires_exactly_at_expires_at(ctx, owner, monkeypatch, find):
    image = upload(ctx, owner, visibility="public")
    pairs = query_pairs(sign(ctx, owner, image))
    expires_at = utcnow().replace(microsecond=0) + timedelta(hours=1)
    set_expiry(image, expires_at)
    monkeypatch.setattr(check, "utcnow", lambda: expires_at - timedelta(microseconds=1))
    served = find(ctx, owner, image, pairs)
    assert (served.id, served.expires_at) == (image.id, expires_at)
    monkeypatch.setattr(check, "utcnow", lambda: expires_at)
    with pytest.raises(ImageNotFound):
        find(ctx, owner, image, pairs)


@pytest.mark.parametrize("find", FINDERS.values(), ids=FINDERS.keys())
def test_a_deleted_image_is_not_found_and_loses_its_links(ctx, owner, other_owner, find):
    data = factories.png()
    image = create_image(ctx, owner.project_id, data, Placement(visibility="public"))
    # Another image with the same bytes keeps the blob: only the row and the links decide.
    create_image(ctx, other_owner.project_id, data, Placement(visibility="public"))
    pairs = query_pairs(sign(ctx, owner, image))
    assert find(ctx, owner, image, pairs).id == image.id
    delete_image(ctx, owner.project_id, image.id)
    with pytest.raises(ImageNotFound):
        find(ctx, owner, image, pairs)
    assert not ctx.links.has(image.token) and not ctx.links.has(image.token, signed=True)
    assert ctx.storage.exists(image.sha256)


def test_tokens_never_issued_here_are_refused_without_a_query(ctx, owner, monkeypatch):
    image = upload(ctx, owner, visibility="public")
    queried = []
    for prepared in (check._BY_TOKEN, check._WITH_SIGNING_KEY, check._WITH_KEY):
        monkeypatch.setattr(prepared, "one", lambda **values: queried.append(values))
    query = signing.SignedQuery((), int(time.time()) + 60, str(int(time.time()) + 60), "A" * 22)
    finders = {
        "anonymous": lambda token: find_by_token(ctx.tokens, token),
        "signed": lambda token: find_signed(ctx.tokens, token, query),
        "with a key": lambda token: find_for_request(ctx.tokens, token, owner.key),
    }
    tokens = [flip(image.token, at=31), flip(image.token, at=0), "A" * 32, "A" * 16, "A" * 300, "../../../etc/passwd", "", image.token + "\n"]
    cases = {f"{name} {token!r}": (find, token) for name, find in finders.items() for token in tokens}
    assert refusals(lambda find, token: find(token), cases, ImageNotFound) == {}
    assert queried == []


def test_a_token_is_genuine_to_every_node_of_the_deployment(ctx, owner):
    image = upload(ctx, owner)
    # Another node builds its own signer: the key comes from the shared database.
    assert TokenSigner().is_genuine(image.token) and TokenSigner().is_genuine(ctx.tokens.new_token())
    assert not TokenSigner().is_genuine(flip(image.token, at=0))


def test_cache_control_is_public_and_bounded_only_for_public_images(ctx, owner):
    now = datetime(2026, 6, 1, 12, 0, 0)
    private = ServableImage.from_image(upload(ctx, owner))
    assert cache_control(ctx.settings, private, now) == "private, no-store"
    public = replace(private, visibility="public")
    assert cache_control(ctx.settings, public, now) == f"public, max-age={ctx.settings.public_max_age}"
    assert ctx.settings.public_max_age > 120
    assert cache_control(ctx.settings, replace(public, expires_at=now + timedelta(seconds=120)), now) == "public, max-age=120"
    assert cache_control(ctx.settings, replace(public, expires_at=now - timedelta(seconds=5)), now) == "public, max-age=0"
    assert cache_control(ctx.settings, replace(private, expires_at=now + timedelta(seconds=120)), now) == "private, no-store"


# --- decide: what nginx may keep ---------------------------------------------


def link_time(moment):
    """A link name's time of the image's last change: epoch microseconds."""
    return int((moment - datetime(1970, 1, 1)).total_seconds()) * 1_000_000 + moment.microsecond


def test_a_granted_decision_names_the_images_link_and_headers_and_is_kept(ctx, owner):
    image = ServableImage.from_image(upload(ctx, owner, visibility="public"))
    response = decide.granted(ctx, image, lambda now: cache_control(ctx.settings, image, now))
    headers = response.headers
    assert response.status_code == 204 and headers["X-Accel-Expires"] == "1"
    link = headers["X-Goodeye-Link"]
    assert link == f"{image.token[:2]}/{image.token}~{image.sha256[:16]}~m{link_time(image.updated_at)}"
    assert os.path.exists(os.path.join(ctx.settings.link_dir, link))
    assert (headers["X-Goodeye-Image"], headers["X-Goodeye-Type"]) == (image.id, "image/png")
    assert headers["X-Goodeye-ETag"] == f'"{image.sha256}"'
    assert headers["X-Goodeye-Cache-Control"] == f"public, max-age={ctx.settings.public_max_age}"


def test_a_decision_is_not_kept_when_the_image_expires_within_the_window(ctx, owner, monkeypatch):
    now = datetime(2026, 6, 1, 12, 0, 0)
    monkeypatch.setattr(decide, "utcnow", lambda: now)
    uploaded = ServableImage.from_image(upload(ctx, owner, visibility="public"))
    for seconds_left, kept in ((1, False), (3, False), (3.000001, True), (10, True)):
        image = replace(uploaded, expires_at=now + timedelta(seconds=seconds_left))
        asked_at = []

        def cache_control_at(moment, image=image, asked_at=asked_at):
            asked_at.append(moment)
            return cache_control(ctx.settings, image, moment)

        response = decide.granted(ctx, image, cache_control_at)
        assert response.headers["X-Accel-Expires"] == ("1" if kept else "0"), seconds_left
        # A kept decision promises Cache-Control as of its oldest possible use.
        oldest_use = now + timedelta(seconds=decide.WORST_AGE_SECONDS) if kept else now
        assert asked_at == [oldest_use], seconds_left
        assert max_age(response.headers["X-Goodeye-Cache-Control"]) == int(seconds_left - (oldest_use - now).total_seconds())
        epoch = int((image.expires_at - datetime(1970, 1, 1)).total_seconds())
        assert response.headers["X-Goodeye-Link"].endswith(f"~{epoch}"), seconds_left


def test_a_granted_decision_may_name_another_link_or_the_signed_one_and_not_be_kept(ctx, owner):
    image = ServableImage.from_image(upload(ctx, owner, visibility="public"))
    def at(_now):
        return "private, max-age=60"

    signed = decide.granted(ctx, image, at, keep=False, signed=True)
    assert signed.headers["X-Goodeye-Link"] == f"signed/{image.token[:2]}/{image.token}~{image.sha256[:16]}~m{link_time(image.updated_at)}"
    assert signed.headers["X-Accel-Expires"] == "0" and signed.headers["X-Goodeye-Cache-Control"] == "private, max-age=60"
    variant = decide.granted(ctx, image, at, link="ab/variant-link", cache_status="HIT", scope="hero")
    assert variant.headers["X-Goodeye-Link"] == "ab/variant-link" and variant.headers["X-Accel-Expires"] == "1"
    assert (variant.headers["X-Goodeye-Cache-Status"], variant.headers["X-Goodeye-Scope"]) == ("HIT", "hero")


def test_refused_and_passed_decisions_say_their_status_and_whether_they_are_kept():
    missing = decide.refused(404, keep=True)
    assert (missing.status_code, missing.headers["X-Goodeye-Status"], missing.headers["X-Accel-Expires"]) == (401, "404", "1")
    private = decide.refused(401, keep=False)
    assert (private.status_code, private.headers["X-Goodeye-Status"], private.headers["X-Accel-Expires"]) == (401, "401", "0")
    assert "X-Goodeye-Link" not in missing.headers
    passed = decide.pass_to_app()
    assert (passed.status_code, passed.headers["X-Accel-Expires"]) == (403, "0")
    assert decide.pass_to_app(keep=True).headers["X-Accel-Expires"] == "1"


def test_the_decide_endpoint_grants_public_refuses_private_and_keeps_only_what_cannot_change(ctx, owner):
    public = upload(ctx, owner, visibility="public")
    granted = decide_for(public.token)
    # A token names its image for life: an unexpiring image's decision is kept for an hour.
    assert granted.status_code == 204 and granted.headers["X-Accel-Expires"] == str(decide.LASTING_KEEP_SECONDS)
    assert granted.headers["X-Goodeye-Link"] == ctx.links.relative_path(public)
    private = decide_for(upload(ctx, owner).token)
    assert (private.status_code, private.headers["X-Goodeye-Status"], private.headers["X-Accel-Expires"]) == (401, "401", "0")
    for token in (ctx.tokens.new_token(), "A" * 32):
        missing = decide_for(token)
        assert (missing.status_code, missing.headers["X-Goodeye-Status"], missing.headers["X-Accel-Expires"]) == (401, "404", "1")
    delete_image(ctx, owner.project_id, public.id)
    gone = decide_for(public.token)
    assert (gone.status_code, gone.headers["X-Goodeye-Status"]) == (401, "404")


def test_the_decide_endpoint_does_not_keep_a_public_image_expiring_within_the_window(ctx, owner):
    image = upload(ctx, owner, visibility="public")
    set_expiry(image, utcnow() + timedelta(seconds=2))
    response = decide_for(image.token)
    assert response.status_code == 204 and response.headers["X-Accel-Expires"] == "0"
    assert max_age(response.headers["X-Goodeye-Cache-Control"]) <= 2


def test_the_decide_endpoint_grants_a_signed_url_from_the_signed_link(ctx, owner):
    image = upload(ctx, owner)
    pairs = query_pairs(sign(ctx, owner, image, expires_in=600))
    response = decide_for(image.token, pairs)
    assert response.status_code == 204 and response.headers["X-Accel-Expires"] == "1"
    link = response.headers["X-Goodeye-Link"]
    assert link == ctx.links.relative_path(image, signed=True) and link.startswith("signed/")
    assert os.path.exists(os.path.join(ctx.settings.link_dir, link))
    # As of the decision's oldest possible use, two seconds on.
    assert 590 <= max_age(response.headers["X-Goodeye-Cache-Control"]) <= 598


def test_the_decide_endpoint_passes_refused_and_variant_signed_urls_to_the_app(ctx, owner):
    image = upload(ctx, owner)
    expires, signature = (value for _, value in query_pairs(sign(ctx, owner, image)))
    past = str(int(time.time()) - 10)
    expired = signing.compute_signature(signing.project_secret(owner.project_id), image.token, (), past)
    variant_pairs = query_pairs(sign(ctx, owner, image, variant=[("w", "640")]))
    for pairs in (
        [("expires", expires), ("signature", flip(signature))],
        [("expires", past), ("signature", expired)],
        [("expires", "soon"), ("signature", signature)],
        [("expires", expires), ("signature", signature), ("v", "3")],
        variant_pairs,
    ):
        response = decide_for(image.token, pairs)
        assert (response.status_code, response.headers["X-Accel-Expires"]) == (403, "0"), pairs
    assert check_signed(ctx, image.token, variant_pairs).id == image.id


def test_the_decide_endpoint_does_not_keep_a_signed_url_expiring_within_the_window(ctx, owner):
    image = upload(ctx, owner)
    sign(ctx, owner, image)
    soon = str(int(time.time()) + 2)
    signature = signing.compute_signature(signing.project_secret(owner.project_id), image.token, (), soon)
    response = decide_for(image.token, [("expires", soon), ("signature", signature)])
    assert response.status_code == 204 and response.headers["X-Accel-Expires"] == "0"
    assert max_age(response.headers["X-Goodeye-Cache-Control"]) <= 2
