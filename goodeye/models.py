"""The metadata schema: organisations, projects, keys, blobs and images."""

from datetime import datetime, timezone

from peewee import (
    AutoField,
    BigAutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    DoubleField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

from goodeye.db import database


def utcnow():
    """The current UTC time as a naive datetime (how every timestamp is stored)."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def iso(value):
    """ISO-8601 UTC with millisecond precision and a Z, or None."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class PreciseDateTimeField(DateTimeField):
    """DATETIME with microseconds on MySQL, so TTLs are exact."""

    field_type = "DATETIME(6)"


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


class Org(BaseModel):
    id = AutoField()
    slug = CharField(max_length=64, unique=True)
    created_at = PreciseDateTimeField(default=utcnow)


class Project(BaseModel):
    id = AutoField()
    org = ForeignKeyField(Org, backref="projects", on_delete="CASCADE")
    slug = CharField(max_length=64)
    allow_new_live_scopes = BooleanField(default=True)
    # Live-URL generations per client address per hour; NULL: the deployment's GOODEYE_LIVE_GENERATION_LIMIT.
    live_generations_per_ip_per_hour = IntegerField(null=True)
    # Quotas (None: unlimited) and the usage they are held against, kept by goodeye/projects/quota.py
    # in the same transaction as every image insert, replacement and delete.
    max_images = BigIntegerField(null=True)
    max_storage_bytes = BigIntegerField(null=True)
    image_count = BigIntegerField(default=0)
    storage_bytes = BigIntegerField(default=0)
    created_at = PreciseDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("org", "slug"), True),)


class ApiKey(BaseModel):
    id = CharField(max_length=32, primary_key=True)
    project = ForeignKeyField(Project, backref="keys", on_delete="CASCADE")
    name = CharField(max_length=100, default="")
    key_hash = CharField(max_length=64, unique=True)
    prefix = CharField(max_length=24)
    created_at = PreciseDateTimeField(default=utcnow)
    revoked_at = PreciseDateTimeField(null=True)


class Blob(BaseModel):
    """One stored blob, shared by every image with the same bytes; `refs` counts them."""

    sha256 = CharField(max_length=64, primary_key=True)
    size_bytes = BigIntegerField()
    content_type = CharField(max_length=32)
    refs = IntegerField(default=0)
    created_at = PreciseDateTimeField(default=utcnow)


class Image(BaseModel):
    pk = AutoField()
    id = CharField(max_length=40, unique=True)
    token = CharField(max_length=64, unique=True)
    project = ForeignKeyField(Project, backref="images", on_delete="CASCADE")
    sha256 = CharField(max_length=64, index=True)
    content_type = CharField(max_length=32)
    ext = CharField(max_length=8)
    size_bytes = BigIntegerField()
    width = IntegerField()
    height = IntegerField()
    frames = IntegerField(default=1)
    phash = CharField(max_length=64)
    # The pHash as a signed 64-bit integer and cut into four 16-bit bands, for the
    # similar-image index (goodeye/similar/bands.py); filled from `phash` by bytes_fields().
    phash_bits = BigIntegerField(null=True)
    phash_band0 = IntegerField(null=True)
    phash_band1 = IntegerField(null=True)
    phash_band2 = IntegerField(null=True)
    phash_band3 = IntegerField(null=True)
    visibility = CharField(max_length=8, default="private")
    source = CharField(max_length=16, default="upload")
    filename = CharField(max_length=255)
    alias = CharField(max_length=64, null=True)
    generation_params = TextField(null=True)
    # The live scope whose URL generated this image (no FK: a scope's delete unlinks the images it keeps).
    live_scope_id = CharField(max_length=40, null=True, index=True)
    expires_at = PreciseDateTimeField(null=True, index=True)
    created_at = PreciseDateTimeField(default=utcnow)
    updated_at = PreciseDateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("project", "filename"), True),
            (("project", "alias"), True),
            (("project", "pk"), False),
            # Band first, so the blocklist can look a band up across every project;
            # the hash last, so the distance of a candidate is read from the index alone.
            (("phash_band0", "project", "phash_bits"), False),
            (("phash_band1", "project", "phash_bits"), False),
            (("phash_band2", "project", "phash_bits"), False),
            (("phash_band3", "project", "phash_bits"), False),
        )


class Generation(BaseModel):
    """One call to an image generator: what was asked, what was sent, how it ended."""

    pk = AutoField()
    id = CharField(max_length=40, unique=True)
    project = ForeignKeyField(Project, backref="generations", on_delete="CASCADE")
    generator = CharField(max_length=32)
    prompt = TextField()
    enhanced_prompt = TextField(null=True)
    params = TextField()
    status = CharField(max_length=16)
    error = TextField(null=True)
    duration_ms = IntegerField()
    client_ip = CharField(max_length=64, null=True)
    created_at = PreciseDateTimeField(default=utcnow, index=True)


class LiveScope(BaseModel):
    """A live-URL scope of a project: its generation budget and settings."""

    id = CharField(max_length=40, primary_key=True)
    project = ForeignKeyField(Project, backref="live_scopes", on_delete="CASCADE")
    slug = CharField(max_length=64)
    allow_new_generations = BooleanField(default=True)
    new_generations_limit = IntegerField(default=30)
    current_generations = IntegerField(default=0)
    last_generated_at = PreciseDateTimeField(null=True)
    meta = TextField()
    created_at = PreciseDateTimeField(default=utcnow)

    class Meta:
        indexes = ((("project", "slug"), True),)


class LiveCacheEntry(BaseModel):
    """A live URL's cache key -> its image; a row without an image is a generation in flight.

    The UNIQUE cache key makes "only one request generates" an insert that the
    others lose with IntegrityError.
    """

    pk = AutoField()
    cache_key = CharField(max_length=64, unique=True)
    project = ForeignKeyField(Project, on_delete="CASCADE")
    scope = ForeignKeyField(LiveScope, backref="cache_entries", on_delete="CASCADE")
    image = ForeignKeyField(Image, null=True, on_delete="CASCADE")
    generation_id = CharField(max_length=40, null=True)
    params = TextField()
    claimed_at = PreciseDateTimeField(default=utcnow)
    created_at = PreciseDateTimeField(default=utcnow)


class PromptUrlCache(BaseModel):
    """`GET /api/v1/live`: a project's prompt (by SHA-256) -> its image; no image yet = in flight."""

    pk = AutoField()
    project = ForeignKeyField(Project, on_delete="CASCADE")
    prompt_hash = CharField(max_length=64)
    image = ForeignKeyField(Image, null=True, on_delete="CASCADE")
    hit_count = IntegerField(default=0)
    last_accessed_at = PreciseDateTimeField(null=True)
    claimed_at = PreciseDateTimeField(default=utcnow)
    created_at = PreciseDateTimeField(default=utcnow)

    class Meta:
        table_name = "prompt_url_cache"
        indexes = ((("project", "prompt_hash"), True),)


LIVE_MODELS = [LiveScope, LiveCacheEntry, PromptUrlCache]


class ServerSecret(BaseModel):
    """Secrets every node of a deployment shares, made once by a migration."""

    name = CharField(max_length=32, primary_key=True)
    value = CharField(max_length=128)


class RateLimitCounter(BaseModel):
    """One fixed window of a rate limit (`database://` limits storage): hits so far, and when it ends."""

    key = CharField(max_length=255, primary_key=True)
    hits = IntegerField()
    expires_at = DoubleField(index=True)  # a Unix time, like the `limits` library's windows

    class Meta:
        table_name = "rate_limit_counter"


class SigningKey(BaseModel):
    """A project's secret for signed serving URLs; rotating it replaces the row's secret."""

    project = ForeignKeyField(Project, primary_key=True, on_delete="CASCADE")
    secret = CharField(max_length=64)
    rotated_at = PreciseDateTimeField(default=utcnow)


class BlocklistEntry(BaseModel):
    """An operator's blocked picture: images within `max_distance` bits of its pHash are refused."""

    id = CharField(max_length=40, primary_key=True)
    phash = CharField(max_length=16)
    phash_bits = BigIntegerField()
    phash_band0 = IntegerField(index=True)
    phash_band1 = IntegerField(index=True)
    phash_band2 = IntegerField(index=True)
    phash_band3 = IntegerField(index=True)
    max_distance = IntegerField(index=True)
    reason = CharField(max_length=500, default="")
    created_at = PreciseDateTimeField(default=utcnow)

    class Meta:
        table_name = "blocklist_entry"


class SchemaMigration(BaseModel):
    version = IntegerField(primary_key=True)
    applied_at = PreciseDateTimeField(default=utcnow)


CORE_MODELS = [Org, Project, ApiKey, Blob, Image]


class Variant(BaseModel):
    """A rendered variant: (original's sha256, canonical render key) -> the variant's blob; no blob yet = rendering.

    The variant's blob holds one reference (like an image's); both go when the original's blob is reclaimed.
    """

    pk = AutoField()
    source_sha256 = CharField(max_length=64)
    params = CharField(max_length=64)
    variant_sha256 = CharField(max_length=64, null=True)
    content_type = CharField(max_length=32, null=True)
    size_bytes = BigIntegerField(null=True)
    width = IntegerField(null=True)
    height = IntegerField(null=True)
    claimed_at = PreciseDateTimeField(default=utcnow)
    created_at = PreciseDateTimeField(null=True)

    class Meta:
        indexes = ((("source_sha256", "params"), True),)


class LinkClock(BaseModel):
    """One row counting the changes nodes' copies follow: taking the next number locks it until the commit,
    so changes are numbered in the order they commit (goodeye/serving/nodes.py)."""

    id = IntegerField(primary_key=True)
    last = BigIntegerField()

    class Meta:
        table_name = "link_clock"


class LinkChange(BaseModel):
    """An image (by token) a change touched; `seq` is the change's number from LinkClock."""

    pk = BigAutoField()
    seq = BigIntegerField(index=True)
    token = CharField(max_length=64)
    created_at = PreciseDateTimeField(default=utcnow, index=True)

    class Meta:
        table_name = "link_change"


class ServingNode(BaseModel):
    """A node that keeps copies of public S3 blobs for nginx: the last change it followed, and until when it may serve them."""

    name = CharField(max_length=128, primary_key=True)
    followed_seq = BigIntegerField()
    lease_until = PreciseDateTimeField()

    class Meta:
        table_name = "serving_node"
