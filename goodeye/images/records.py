"""The `/v1/images` JSON: the one place an image, a page of images or a signed URL becomes a record."""

import json

from goodeye.images.requests import encode_cursor
from goodeye.images.service import image_url
from goodeye.models import iso


def image_record(settings, image):
    """The `/v1` JSON record of an image."""
    return {
        "id": image.id,
        "token": image.token,
        "url": image_url(settings, image),
        "visibility": image.visibility,
        "source": image.source,
        "content_type": image.content_type,
        "size_bytes": image.size_bytes,
        "width": image.width,
        "height": image.height,
        "sha256": image.sha256,
        "filename": image.filename,
        "alias": f"@{image.alias}" if image.alias else None,
        "expires_at": iso(image.expires_at),
        "created_at": iso(image.created_at),
        "updated_at": iso(image.updated_at),
        "generation": json.loads(image.generation_params) if image.generation_params else None,
    }


def image_page(settings, images, last_pk):
    """A page of `GET /v1/images`: the records, and the cursor of the next page (null on the last)."""
    return {
        "data": [image_record(settings, image) for image in images],
        "next_cursor": None if last_pk is None else encode_cursor(last_pk),
    }


def signed_url_record(url, expires_at):
    """The answer of `POST /v1/images/{id}/signed-url`."""
    return {"url": url, "expires_at": iso(expires_at)}
