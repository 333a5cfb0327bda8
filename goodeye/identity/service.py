"""Operator actions on orgs, projects and keys, and key authentication."""

import hashlib
import hmac
import re

from peewee import IntegrityError

from goodeye.db import Prepared, database
from goodeye.errors import Conflict, InvalidApiKey, InvalidRequest, NotFound
from goodeye.ids import base62, new_id
from goodeye.models import ApiKey, Org, Project, utcnow

KEY_PREFIX = "good_live_"
KEY_PATTERN = re.compile(r"^good_live_[A-Za-z0-9]{32,128}\Z")
SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}\Z")


def hash_key(key):
    """The SHA-256 hex digest under which a key is stored."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _check_slug(kind, slug):
    if not SLUG_PATTERN.match(slug or ""):
        raise InvalidRequest(f"{kind} slug must match {SLUG_PATTERN.pattern}")


def create_org(slug):
    """Create an org, or return the existing one with that slug."""
    _check_slug("org", slug)
    try:
        with database.atomic():
            return Org.create(slug=slug), True
    except IntegrityError:
        return Org.get(Org.slug == slug), False


def get_org(slug):
    """The org with that slug, or NotFound."""
    org = Org.get_or_none(Org.slug == slug)
    if org is None:
        raise NotFound(f"No org {slug!r}.", code="ORG_NOT_FOUND")
    return org


def split_project_path(path):
    """`org/project` -> (org, project)."""
    org_slug, sep, project_slug = (path or "").partition("/")
    if not sep or not org_slug or not project_slug:
        raise InvalidRequest("expected ORG/PROJECT")
    return org_slug, project_slug


def create_project(path, allow_new_live_scopes=True):
    """Create a project under an existing org; the same settings again is not an error."""
    org_slug, project_slug = split_project_path(path)
    _check_slug("project", project_slug)
    org = get_org(org_slug)
    try:
        with database.atomic():
            return Project.create(org=org, slug=project_slug, allow_new_live_scopes=allow_new_live_scopes), True
    except IntegrityError:
        project = Project.get((Project.org == org) & (Project.slug == project_slug))
    if project.allow_new_live_scopes != allow_new_live_scopes:
        raise Conflict(f"Project {path} exists with other settings; use `goodeye admin project update`.")
    return project, False


def get_project_by_path(path):
    """The project at `org/project`, or NotFound."""
    org_slug, project_slug = split_project_path(path)
    project = (
        Project.select(Project, Org)
        .join(Org)
        .where((Org.slug == org_slug) & (Project.slug == project_slug))
        .first()
    )
    if project is None:
        raise NotFound(f"No project {path!r}.", code="PROJECT_NOT_FOUND")
    return project


def list_projects(org_slug=None):
    """Every project (with its org), ordered by org and slug; only one org's when given."""
    query = Project.select(Project, Org).join(Org).order_by(Org.slug, Project.slug)
    if org_slug is not None:
        query = query.where(Org.slug == get_org(org_slug).slug)
    return list(query)


def create_key(project, name=""):
    """Mint a key for the project; returns (row, plaintext). The plaintext is never stored."""
    plaintext = KEY_PREFIX + base62(40)
    row = ApiKey.create(
        id=new_id("key"),
        project=project,
        name=name or "",
        key_hash=hash_key(plaintext),
        prefix=plaintext[: len(KEY_PREFIX) + 4],
    )
    return row, plaintext


def list_keys(project):
    """Every key of the project, newest first."""
    return list(ApiKey.select().where(ApiKey.project == project).order_by(ApiKey.created_at.desc()))


def revoke_key(key_id):
    """Revoke a key by id; revoking twice is not an error."""
    key = ApiKey.get_or_none(ApiKey.id == key_id)
    if key is None:
        raise NotFound(f"No key {key_id!r}.")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        key.save()
    return key


def key_digest(key):
    """The digest under which a well-formed key would be stored; InvalidApiKey when malformed."""
    if not KEY_PATTERN.match(key):
        raise InvalidApiKey()
    return hash_key(key)


def verified_project(row, digest):
    """The project id of a fetched (key_hash, project, revoked_at) row; InvalidApiKey unless it is a live key."""
    # The lookup is by digest; comparing the digests again in constant time
    # keeps timing independent of how much of a guessed digest matched.
    if row is None or row[0] is None or not hmac.compare_digest(row[0], digest) or row[2] is not None:
        raise InvalidApiKey()
    return row[1]


def key_columns():
    """The api_key columns `verified_project` reads, in its order."""
    return (ApiKey.key_hash, ApiKey.project, ApiKey.revoked_at)


_KEY_BY_DIGEST = Prepared(lambda p: ApiKey.select(*key_columns()).where(ApiKey.key_hash == p.digest))


def authenticate(key):
    """The project id a key belongs to; InvalidApiKey when malformed, unknown or revoked."""
    digest = key_digest(key)
    row = _KEY_BY_DIGEST.one(digest=digest)
    return verified_project(row, digest)

