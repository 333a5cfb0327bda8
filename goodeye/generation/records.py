"""The `/v1/image-generators` JSON: the one place a generation becomes its answer."""

from goodeye.images.service import image_url
from goodeye.models import iso


def hosted_record(settings, image):
    """The `hosted_images[i]` entry of an image."""
    return {
        "id": image.id,
        "url": image_url(settings, image),
        "visibility": image.visibility,
        "expires_at": iso(image.expires_at),
    }


def generation_response(settings, result):
    """The `/v1` JSON answer of a generation."""
    generation = result.generation
    return {
        "generation_id": generation.id,
        "generator": generation.generator,
        "prompt": generation.prompt,
        "enhanced_prompt": generation.enhanced_prompt,
        "image_urls": result.image_urls,
        "hosted_images": [hosted_record(settings, image) if image is not None else None for image in result.hosted],
    }
