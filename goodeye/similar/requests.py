"""The similar-image searches read once at the edge: their query string or body fields into numbers."""

from goodeye.parsing import bounded_number
from goodeye.similar.bands import MAX_DISTANCE
from goodeye.similar.service import DEFAULT_LIMIT, DEFAULT_MAX_DISTANCE, MAX_LIMIT

# The JSON types of the search body's fields, as goodeye/openapi.yaml declares them.
SEARCH_JSON_TYPES = {"data": ("string",), "max_distance": ("integer",), "limit": ("integer",)}


def parse_search(fields):
    """(max_distance, limit) from request fields, with their defaults when absent."""
    max_distance = fields.get("max_distance")
    limit = fields.get("limit")
    return (
        DEFAULT_MAX_DISTANCE if max_distance is None else bounded_number(max_distance, "max_distance", 0, MAX_DISTANCE),
        DEFAULT_LIMIT if limit is None else bounded_number(limit, "limit", 1, MAX_LIMIT),
    )
