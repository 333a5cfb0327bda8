"""Parsers of untrusted text shared by the services."""

import re

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
