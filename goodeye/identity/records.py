"""The JSON of orgs and keys, as the admin CLI prints them."""

from goodeye.models import iso


def org_record(org, created):
    """The JSON shape of an org, and whether this call created it."""
    return {"id": org.id, "slug": org.slug, "created": created, "created_at": iso(org.created_at)}


def key_record(key):
    """The JSON shape of a key (never the secret)."""
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "created_at": iso(key.created_at),
        "revoked_at": iso(key.revoked_at),
    }
