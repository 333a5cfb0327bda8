"""The configuration table: every setting, its environment variable, type and default.

Read once, by `load_settings()`, in `create_app()` and in the CLI; nothing else
reads the environment. The README's configuration section mirrors this table.
"""

import ipaddress
import os
import re
from dataclasses import dataclass, field, fields, replace


class ConfigError(Exception):
    """A setting has a value that cannot be used."""


def _bool(raw):
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {raw!r}")


def _int(raw):
    return int(raw.strip())


def _str(raw):
    return raw.strip()


def _list(raw):
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _networks(raw):
    # Checked here, not by nginx: each one is written into nginx's configuration.
    networks = []
    for item in _list(raw):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(f"not an address or network: {item!r}") from None
    return tuple(networks)


def _sizes(raw):
    sizes = tuple(sorted({int(item) for item in _list(raw)}))
    if not sizes or sizes[0] < 1:
        raise ValueError(f"not a list of positive pixel sizes: {raw!r}")
    return sizes


def _nginx_size(raw):
    value = raw.strip().lower()
    if not re.fullmatch(r"[1-9][0-9]*[kmg]?", value):
        raise ValueError(f"not a size in nginx units (like 500m or 10g): {raw!r}")
    return value


def _choice(*allowed):
    def parse(raw):
        value = raw.strip().lower()
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}")
        return value

    return parse


def _setting(env, parse, default, doc):
    return field(default=default, metadata={"env": env, "parse": parse, "doc": doc})


@dataclass(frozen=True)
class Settings:
    """Every setting of a Goodeye deployment (see the README's configuration table)."""

    data_dir: str = _setting("GOODEYE_DATA_DIR", _str, "./var", "Where the SQLite file, local blobs and runtime files live.")
    database_url: str = _setting(
        "GOODEYE_DATABASE_URL", _str, "", "`sqlite:///path` or `mysql://user:pass@host:port/db`; default: SQLite file in the data dir."
    )
    database_pool_size: int = _setting(
        "GOODEYE_DATABASE_POOL_SIZE",
        _int,
        8,
        "Connections each process keeps at most (at least GOODEYE_THREADS + 1): a request takes one from the pool and hands it back at its end.",
    )
    public_url: str = _setting("GOODEYE_PUBLIC_URL", _str, "", "Base of every `url` field; default `http://127.0.0.1:$GOODEYE_PORT`.")
    port: int = _setting("GOODEYE_PORT", _int, 8080, "nginx's listen port.")
    listen_host: str = _setting("GOODEYE_LISTEN_HOST", _str, "127.0.0.1", "nginx's listen address (`0.0.0.0` in the container).")
    workers: int = _setting("GOODEYE_WORKERS", _int, 3, "gunicorn worker processes.")
    threads: int = _setting("GOODEYE_THREADS", _int, 4, "Threads per gunicorn worker.")
    serve_workers: int = _setting(
        "GOODEYE_SERVE_WORKERS", _int, 2,
        "Worker processes of the serving pool: the gunicorn that answers nginx's checks before image bytes, apart from uploads and generation.",
    )
    accel: str = _setting("GOODEYE_ACCEL", _choice("nginx", "off"), "nginx", "`nginx`: nginx streams blobs (X-Accel-Redirect); `off`: Flask streams them.")
    storage: str = _setting("GOODEYE_STORAGE", _choice("local", "s3"), "local", "Blob store: `local` (under the data dir) or `s3`.")
    max_upload_bytes: int = _setting("GOODEYE_MAX_UPLOAD_BYTES", _int, 25 * 1024 * 1024, "Largest accepted image, in bytes (nginx enforces it too).")
    max_pixels: int = _setting("GOODEYE_MAX_PIXELS", _int, 50_000_000, "Largest accepted frame, in pixels.")
    max_frames: int = _setting("GOODEYE_MAX_FRAMES", _int, 1000, "Most frames in an animated image.")
    max_jpeg_scans: int = _setting(
        "GOODEYE_MAX_JPEG_SCANS", _int, 100, "Most scans in a JPEG (encoders write 1-20; each one is a pass over the image)."
    )
    max_decode_bytes: int = _setting(
        "GOODEYE_MAX_DECODE_BYTES", _int, 128 * 1024 * 1024,
        "Most memory, in bytes, that decoding one upload may hold (the decoded frame, or a multi-scan JPEG's coefficients).",
    )
    max_decode_samples: int = _setting(
        "GOODEYE_MAX_DECODE_SAMPLES", _int, 1_000_000_000,
        "Most samples (pixels × channels) that decoding one upload may process, each JPEG scan counted again.",
    )
    public_max_age: int = _setting(
        "GOODEYE_PUBLIC_MAX_AGE", _int, 3600, "Cache-Control max-age of public images without expiry (bounded by a TTL when there is one)."
    )
    expired_grace_seconds: int = _setting(
        "GOODEYE_EXPIRED_GRACE_SECONDS", _int, 3600, "How long the sweeper keeps an expired record before purging it."
    )
    orphan_grace_seconds: int = _setting(
        "GOODEYE_ORPHAN_GRACE_SECONDS", _int, 3600, "How old an unreferenced blob must be before the sweeper removes it."
    )
    sweep_interval_seconds: int = _setting("GOODEYE_SWEEP_INTERVAL_SECONDS", _int, 60, "How often the sweeper runs under scripts/serve.")
    trusted_proxies: tuple = _setting(
        "GOODEYE_TRUSTED_PROXIES",
        _networks,
        (),
        "Load balancers (addresses or CIDRs) whose `X-Forwarded-For` nginx believes; none by default.",
    )
    metrics_allow: tuple = _setting(
        "GOODEYE_METRICS_ALLOW", _networks, ("127.0.0.1", "::1"), "Client addresses or networks that may read `GET /metrics` (others get 404)."
    )
    log_format: str = _setting("GOODEYE_LOG_FORMAT", _choice("json", "text"), "json", "The app's log lines (gunicorn, requests, sweeper): `json` or `text`.")
    access_log: bool = _setting("GOODEYE_ACCESS_LOG", _bool, True, "Whether nginx writes its access log (JSON lines, `run/nginx-access.log`).")
    log_to: str = _setting("GOODEYE_LOG_TO", _choice("files", "stdout"), "files", "Where the stack's logs go: `files` under `run/`, or `stdout` (containers).")
    ratelimit_storage_uri: str = _setting(
        "GOODEYE_RATELIMIT_STORAGE_URI",
        _str,
        "database://",
        "`limits` storage: `database://` (the configured database), `redis://host:port`, or `memory://` (one worker only).",
    )
    ratelimit_key_prefix: str = _setting(
        "GOODEYE_RATELIMIT_KEY_PREFIX", _str, "goodeye", "Prefix of every rate-limit key in a shared store."
    )
    anonymous_ttl_seconds: int = _setting("GOODEYE_ANONYMOUS_TTL_SECONDS", _int, 86400, "TTL of images generated anonymously.")
    anonymous_generation_limit: str = _setting(
        "GOODEYE_ANONYMOUS_GENERATION_LIMIT", _str, "20/hour", "Anonymous generations per client IP (`limits` notation)."
    )
    live_generation_limit: str = _setting(
        "GOODEYE_LIVE_GENERATION_LIMIT", _str, "10/hour", "Live-URL generations (cache MISSes) per client IP."
    )
    variant_sizes: tuple = _setting(
        "GOODEYE_VARIANT_SIZES",
        _sizes,
        (16, 32, 48, 64, 96, 128, 256, 384, 640, 750, 828, 1080, 1200, 1920, 2048, 3840),
        "The pixel sizes `w` and `h` of a variant may take (comma separated).",
    )
    variant_render_limit: str = _setting(
        "GOODEYE_VARIANT_RENDER_LIMIT", _str, "200/hour", "New variant renders per client IP for callers without a key or a signed URL."
    )
    blocklist_distance: int = _setting(
        "GOODEYE_BLOCKLIST_DISTANCE", _int, 4, "Default `max_distance` (pHash bits, 0-16) of a new blocklist entry."
    )
    fetch_allowlist: tuple = _setting(
        "GOODEYE_FETCH_ALLOWLIST", _list, (), "Hosts whose provider image URLs may be fetched and hosted (comma separated)."
    )
    fetch_max_seconds: int = _setting("GOODEYE_FETCH_MAX_SECONDS", _int, 20, "Time cap for fetching one provider image.")
    openai_base_url: str = _setting("GOODEYE_OPENAI_BASE_URL", _str, "", "Base URL of an OpenAI-compatible API; enables the `openai` generator.")
    openai_api_key: str = _setting("GOODEYE_OPENAI_API_KEY", _str, "", "API key for the OpenAI-compatible API.")
    openai_model: str = _setting("GOODEYE_OPENAI_MODEL", _str, "gpt-image-1", "Image model of the `openai` generator.")
    openai_chat_model: str = _setting(
        "GOODEYE_OPENAI_CHAT_MODEL", _str, "", "Chat model for prompt enhancement; rule-based templates when empty."
    )
    openai_timeout_seconds: int = _setting("GOODEYE_OPENAI_TIMEOUT_SECONDS", _int, 120, "Time cap for one provider call.")
    s3_bucket: str = _setting("GOODEYE_S3_BUCKET", _str, "", "Bucket of the S3 blob store.")
    s3_endpoint_url: str = _setting("GOODEYE_S3_ENDPOINT_URL", _str, "", "S3-compatible endpoint (MinIO, ...); AWS when empty.")
    s3_region: str = _setting("GOODEYE_S3_REGION", _str, "us-east-1", "Region of the bucket.")
    s3_prefix: str = _setting("GOODEYE_S3_PREFIX", _str, "", "Key prefix of every blob in the bucket.")
    s3_presign_seconds: int = _setting(
        "GOODEYE_S3_PRESIGN_SECONDS", _int, 300, "Lifetime of the presigned URLs nginx fetches S3 blobs with."
    )
    s3_timeout_seconds: int = _setting(
        "GOODEYE_S3_TIMEOUT_SECONDS", _int, 3, "Connect and read timeout of each S3 call (an outage answers 503 this fast)."
    )
    s3_cache_max_size: str = _setting(
        "GOODEYE_S3_CACHE_MAX_SIZE", _nginx_size, "1g", "Size of nginx's local disk cache of S3 blobs, and apart from it of this node's copies of public ones (nginx units: 500m, 10g)."
    )

    @property
    def database(self):
        """The database URL, defaulting to a SQLite file in the data dir."""
        return self.database_url or f"sqlite:///{os.path.join(os.path.abspath(self.data_dir), 'goodeye.sqlite3')}"

    @property
    def base_url(self):
        """The public base URL without a trailing slash."""
        return (self.public_url or f"http://127.0.0.1:{self.port}").rstrip("/")

    @property
    def run_dir(self):
        """Sockets, pid files, rendered configs and logs of a running stack."""
        return os.path.join(os.path.abspath(self.data_dir), "run")

    @property
    def s3_cache_max_bytes(self):
        """GOODEYE_S3_CACHE_MAX_SIZE in bytes (nginx reads the notation itself)."""
        units = {"k": 1024, "m": 1024**2, "g": 1024**3}
        size = self.s3_cache_max_size
        return int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)

    @property
    def keeps_node_copies(self):
        """Whether this node keeps copies of public S3 blobs for nginx's fast path (goodeye/serving/nodes.py)."""
        return self.storage == "s3" and self.accel == "nginx"

    @property
    def link_dir(self):
        """Hard links to public images' blobs, served by nginx's fast path."""
        return os.path.join(os.path.abspath(self.data_dir), "links")

    @property
    def blob_dir(self):
        """Where local blobs live."""
        return os.path.join(os.path.abspath(self.data_dir), "blobs")


def load_settings(environ=None, **overrides):
    """Build Settings from `GOODEYE_*` variables (default: os.environ), then apply overrides."""
    environ = os.environ if environ is None else environ
    values = {}
    for f in fields(Settings):
        raw = environ.get(f.metadata["env"])
        if raw is None or raw == "":
            continue
        try:
            values[f.name] = f.metadata["parse"](raw)
        except ValueError as exc:
            raise ConfigError(f"{f.metadata['env']}: {exc}") from None
    settings = replace(Settings(), **values)
    return replace(settings, **overrides) if overrides else settings


def check_serving(settings):
    """ConfigError when these settings cannot serve as promised: per-process limits across several processes."""
    # Only the app pool's workers count: the serving pool's routes take no rate limit.
    if settings.ratelimit_storage_uri.partition("://")[0] == "memory" and settings.workers > 1:
        raise ConfigError(
            f"GOODEYE_RATELIMIT_STORAGE_URI=memory:// counts per process but GOODEYE_WORKERS={settings.workers}: "
            "set GOODEYE_RATELIMIT_STORAGE_URI=database:// (the default) or redis://host:port, or GOODEYE_WORKERS=1"
        )


def settings_table():
    """(env var, default, doc) rows, for documentation."""
    return [(f.metadata["env"], f.default, f.metadata["doc"]) for f in fields(Settings)]
