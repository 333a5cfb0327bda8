"""Parsers of untrusted text and JSON values shared by the request readers."""

import re

from goodeye.errors import InvalidRequest

# 18 digits always fit a signed 64-bit integer (a BIGINT, SQLite's INTEGER).
_WHOLE_NUMBER = re.compile(r"\s*([0-9]{1,18})\s*")


def whole_number(text):
    """The int that a string of 1-18 ASCII digits (spaces around allowed) spells, else None."""
    match = _WHOLE_NUMBER.fullmatch(text) if isinstance(text, str) else None
    return int(match.group(1)) if match else None


_FLAGS = {"true": True, "1": True, "false": False, "0": False}


def flag(text):
    """The bool that 'true'/'false'/'1'/'0' (any case, spaces around allowed) spells, else None."""
    return _FLAGS.get(text.strip().lower()) if isinstance(text, str) else None


def bounded_number(value, name, low, high):
    """A whole number from JSON, a form field or a query string within [low, high], else InvalidRequest."""
    number = whole_number(value) if isinstance(value, str) else value
    if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
        raise InvalidRequest(f"{name} must be a whole number from {low} to {high}.")
    return number


def refuse_unknown_fields(body, allowed):
    """InvalidRequest naming every field of a JSON body that is not in `allowed`."""
    unknown = set(body) - set(allowed)
    if unknown:
        raise InvalidRequest(f"Unknown field(s): {', '.join(sorted(unknown))}.")


def boolean_field(value, name):
    """A JSON boolean, else InvalidRequest naming the field."""
    if not isinstance(value, bool):
        raise InvalidRequest(f"{name} must be true or false.")
    return value
