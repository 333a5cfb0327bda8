"""The similar-image searches' JSON."""

from goodeye.images.records import image_record


def similar_record(settings, image):
    """An image record with its `distance` from the query."""
    return {**image_record(settings, image), "distance": image.distance}
