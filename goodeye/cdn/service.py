"""The CDN (README "Live URLs and the CDN"): public images by org, project and filename or @alias.

Live URLs share its paths (`/cdn/{org}/{project}/live/{scope}`), its project lookup
and its caching rule; goodeye/live/ holds what makes their images.
"""

from peewee import JOIN

from goodeye.db import Prepared
from goodeye.errors import ImageNotFound, NotFound
from goodeye.images.requests import ALIAS_PATTERN
from goodeye.models import Image, Org, Project, utcnow
from goodeye.serving.check import SERVABLE_COLUMNS, ServableImage

# The seed's one year; bounded by an image's TTL when it has one (README: the trade-off).
CDN_MAX_AGE = 31536000


# The org, and its project with that slug (NULLs when it has none).
_PROJECT = Prepared(
    lambda p: Org.select(Org.id, Project.id, Project.allow_new_live_scopes)
    .join(Project, join_type=JOIN.LEFT_OUTER, on=((Project.org == Org.id) & (Project.slug == p.project_slug)))
    .where(Org.slug == p.org_slug)
)


def resolve_project(org_slug, project_slug):
    """(project id, allow_new_live_scopes) of org/project, else ORG_NOT_FOUND / PROJECT_NOT_FOUND."""
    row = _PROJECT.one(org_slug=org_slug, project_slug=project_slug)
    if row is None:
        raise NotFound(f"No organization {org_slug!r}.", code="ORG_NOT_FOUND")
    if row[1] is None:
        raise NotFound(f"No project {project_slug!r} in {org_slug!r}.", code="PROJECT_NOT_FOUND")
    return row[1], bool(row[2])


def cdn_cache_control(image, now=None):
    """`public, max-age=31536000`, bounded by the image's remaining TTL."""
    max_age = CDN_MAX_AGE
    if image.expires_at is not None:
        max_age = max(0, min(max_age, int((image.expires_at - (now or utcnow())).total_seconds())))
    return f"public, max-age={max_age}"


# The image of org/project by one of its names: `alias` or `filename`.
_CDN_IMAGE = {
    column.name: Prepared(
        lambda p, column=column: Image.select(*SERVABLE_COLUMNS)
        .join(Project)
        .join(Org)
        .where((Org.slug == p.org_slug) & (Project.slug == p.project_slug) & (column == p.name))
    )
    for column in (Image.alias, Image.filename)
}


def find_cdn_image(org_slug, project_slug, name):
    """The public, unexpired image of org/project with that filename or @alias, else a 404 code."""
    if name.startswith("@"):
        match = ALIAS_PATTERN.match(name)
        column, value = Image.alias, match.group(1) if match else None
    else:
        column, value = Image.filename, name
    row = None
    if value is not None:
        row = _CDN_IMAGE[column.name].one(org_slug=org_slug, project_slug=project_slug, name=value)
    if row is None:
        # Only a miss pays for telling an unknown org or project from an unknown image.
        resolve_project(org_slug, project_slug)
        raise ImageNotFound()
    image = ServableImage.from_row(row)
    if image.visibility != "public" or image.expired():
        raise ImageNotFound()
    return image
