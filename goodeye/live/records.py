"""The `/api/v1/live` JSON: the one place a prompt's image, a scope or a page of scopes becomes a record,
inside the family's `{"success": true, "data": ...}` envelope."""

import json

from goodeye.images.service import image_url
from goodeye.models import iso


def success(data, **extra):
    """The family's envelope around `data` (and any other top-level members, such as `pagination`)."""
    return {"success": True, "data": data, **extra}


def prompt_record(settings, prompt, row):
    """The `data` of a `GET /api/v1/live` answer."""
    return {
        "imageId": row.image.id,
        "url": image_url(settings, row.image),
        "prompt": prompt,
        "hitCount": row.hit_count,
        "lastAccessedAt": iso(row.last_accessed_at),
    }


def scope_record(scope):
    """The JSON shape of a scope."""
    return {
        "id": scope.id,
        "projectId": str(scope.project_id),
        "slug": scope.slug,
        "allowNewGenerations": scope.allow_new_generations,
        "newGenerationsLimit": scope.new_generations_limit,
        "currentGenerations": scope.current_generations,
        "lastGeneratedAt": iso(scope.last_generated_at),
        "meta": json.loads(scope.meta or "{}"),
        "createdAt": iso(scope.created_at),
    }


def scope_page(rows, page, total):
    """A page of `GET /api/v1/live/scopes`: the records and their pagination."""
    pagination = {"limit": page.limit, "offset": page.offset, "total": total, "hasMore": page.offset + len(rows) < total}
    return success([scope_record(row) for row in rows], pagination=pagination)


def deleted_scope(slug, deleted, kept):
    """The `data` of a scope's DELETE: how many of its images went and how many an alias kept."""
    return {"slug": slug, "deletedImages": deleted, "keptImages": kept}


def regenerated(image_ids):
    """The `data` of a regenerate: the ids of the images given new bytes."""
    return {"regenerated": len(image_ids), "imageIds": image_ids}
