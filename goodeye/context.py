"""What every service function needs, built once in create_app() (or by the CLI)."""

import os
from dataclasses import dataclass

from flask import current_app
from peewee import Database

from goodeye.db import open_database
from goodeye.generation.registry import GeneratorRegistry
from goodeye.images.validation import ImageLimits
from goodeye.ratelimit import RateLimiter
from goodeye.serving.links import CopyIndex, LinkIndex
from goodeye.serving.tokens import TokenSigner
from goodeye.storage import BlobStorage, create_storage
from goodeye.variants.slots import RenderSlots


@dataclass
class Context:
    """Settings plus the long-lived objects built from them."""

    settings: object
    database: Database
    storage: BlobStorage
    image_limits: ImageLimits
    limiter: RateLimiter
    generators: GeneratorRegistry
    tokens: TokenSigner
    links: LinkIndex | CopyIndex | None
    render_slots: RenderSlots

    @staticmethod
    def image_limits_from(settings):
        """The upload limits the settings name."""
        return ImageLimits(
            max_bytes=settings.max_upload_bytes,
            max_pixels=settings.max_pixels,
            max_frames=settings.max_frames,
            max_jpeg_scans=settings.max_jpeg_scans,
            max_decode_bytes=settings.max_decode_bytes,
            max_decode_samples=settings.max_decode_samples,
        )

    @staticmethod
    def links_from(settings, storage):
        """What nginx's fast path serves public images from: hard links to local blobs, or this node's copies of S3 ones."""
        if settings.storage == "local":
            return LinkIndex(settings.link_dir, storage.path)
        if settings.keeps_node_copies:
            return CopyIndex(settings.link_dir, os.path.join(settings.run_dir, "copy-wants"))
        return None

    @classmethod
    def from_settings(cls, settings, database=None):
        """Build every long-lived object the settings describe (the database: `database`, else a new one)."""
        storage = create_storage(settings)
        return cls(
            settings=settings,
            database=open_database(settings) if database is None else database,
            storage=storage,
            image_limits=cls.image_limits_from(settings),
            limiter=RateLimiter(settings.ratelimit_storage_uri, key_prefix=settings.ratelimit_key_prefix),
            generators=GeneratorRegistry.from_settings(settings),
            tokens=TokenSigner(),
            links=cls.links_from(settings, storage),
            render_slots=RenderSlots(os.path.join(settings.run_dir, "render-slots")),
        )


def current_context():
    """The Context of the running app."""
    return current_app.extensions["goodeye"]
