"""Similar images: a project's images whose pHash lies within a Hamming distance of a query's.

The search never reads every row: one indexed lookup per band the pigeonhole
bound needs (goodeye/similar/bands.py), the exact distance computed on those
candidates from the index alone, then the records of the few that are close.
"""

from goodeye.images.service import get_image
from goodeye.images.validation import validate_image
from goodeye.models import Image, utcnow
from goodeye.similar.index import band_union, placeholder

DEFAULT_MAX_DISTANCE = 8
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def find_similar(project_id, phash, max_distance=DEFAULT_MAX_DISTANCE, limit=DEFAULT_LIMIT, exclude_pk=None):
    """The project's unexpired images within `max_distance` of `phash`, nearest first (then newest); each has `.distance`."""
    close = band_union("image", phash, max_distance, "pk", f"project_id = {int(project_id)} AND {{distance}} <= {int(max_distance)}")
    param = placeholder()
    excluded = "" if exclude_pk is None else f"AND i.pk <> {int(exclude_pk)} "
    sql = (
        f"SELECT i.*, c.distance FROM ({close}) AS c JOIN image AS i ON i.pk = c.pk "
        f"WHERE (i.expires_at IS NULL OR i.expires_at > {param}) {excluded}"
        f"ORDER BY c.distance, i.pk DESC LIMIT {int(limit)}"
    )
    return list(Image.raw(sql, utcnow()))


def similar_to_image(project_id, image_id, max_distance=DEFAULT_MAX_DISTANCE, limit=DEFAULT_LIMIT):
    """The images of the project close to one of its images, that image left out; ImageNotFound if not the caller's."""
    image = get_image(project_id, image_id)
    return find_similar(project_id, image.phash, max_distance, limit, exclude_pk=image.pk)


def similar_to_bytes(ctx, project_id, data, max_distance=DEFAULT_MAX_DISTANCE, limit=DEFAULT_LIMIT):
    """The images of the project close to an image sent in a request; nothing is stored."""
    info = validate_image(data, ctx.image_limits)
    return find_similar(project_id, info.phash, max_distance, limit)
