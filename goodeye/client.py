"""A small HTTP client of the `/v1` API, shared by the CLI and the MCP server.

The client's settings (server URL, API key) are not the server's configuration
table (goodeye/config.py): they are resolved here, in `client_settings`, from
flags, then `GOODEYE_URL` / `GOODEYE_API_KEY`, then the file `goodeye login`
writes, then defaults.
"""

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from urllib.parse import quote

import requests
from requests_toolbelt import MultipartEncoder, MultipartEncoderMonitor

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_MAX_UPLOAD_BYTES = 25 * 1024 * 1024
TIMEOUT_SECONDS = 300


class ClientError(Exception):
    """Base of every failure the client reports: carries a slug and a message."""

    def __init__(self, slug, message, status=None):
        super().__init__(f"{slug}: {message}")
        self.slug = slug
        self.message = message
        self.status = status


class ApiError(ClientError):
    """The server answered with an error envelope (or something that is not Goodeye)."""


class ConnectionFailed(ClientError):
    """The server could not be reached, or did not answer in time."""


class ClientConfigError(ClientError):
    """The client's own settings (config file, environment) cannot be used."""


@dataclass(frozen=True)
class ClientSettings:
    """Where the server is, which key to send, and the upload limit to check locally."""

    url: str
    api_key: str | None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES


def config_path(environ=None):
    """The config file: $GOODEYE_CONFIG, else $XDG_CONFIG_HOME/goodeye/config.json, else ~/.config/goodeye/config.json."""
    environ = os.environ if environ is None else environ
    if environ.get("GOODEYE_CONFIG"):
        return environ["GOODEYE_CONFIG"]
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "goodeye", "config.json")


def read_config(path):
    """The saved settings as a dict ({} when there is no file)."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ClientConfigError("invalid_config", f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ClientConfigError("invalid_config", f"{path} must hold a JSON object")
    return data


def write_config(path, url, api_key):
    """Save url and key to `path` with mode 0600, atomically (the file holds a secret)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    # mkstemp creates the file 0600, so the key is never readable by others, even briefly.
    fd, tmp = tempfile.mkstemp(prefix=".config-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"url": url, "api_key": api_key}, handle, indent=2)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def client_settings(url=None, api_key=None, environ=None, *, use_saved=True):
    """Resolve settings: flags, then GOODEYE_URL / GOODEYE_API_KEY, then the config file, then defaults."""
    environ = os.environ if environ is None else environ
    saved = read_config(config_path(environ)) if use_saved else {}
    raw_max = environ.get("GOODEYE_MAX_UPLOAD_BYTES") or str(DEFAULT_MAX_UPLOAD_BYTES)
    try:
        max_upload_bytes = int(raw_max)
    except ValueError:
        raise ClientConfigError("invalid_config", f"GOODEYE_MAX_UPLOAD_BYTES: not an integer: {raw_max!r}") from None
    return ClientSettings(
        url=(url or environ.get("GOODEYE_URL") or saved.get("url") or DEFAULT_URL).rstrip("/"),
        api_key=api_key or environ.get("GOODEYE_API_KEY") or saved.get("api_key") or None,
        max_upload_bytes=max_upload_bytes,
    )


def _path_segment(value):
    """A user-given id as one URL path segment (so `../x` cannot reach another route)."""
    return quote(str(value), safe="")


class GoodeyeClient:
    """The `/v1` API over requests; every error becomes an ApiError or ConnectionFailed."""

    def __init__(self, settings, session=None):
        self.settings = settings
        self.session = session or requests.Session()
        if settings.api_key:
            self.session.headers["Authorization"] = f"Bearer {settings.api_key}"

    @contextlib.contextmanager
    def _network_errors(self):
        """Turn requests' failures (while connecting or while reading a body) into ConnectionFailed."""
        try:
            yield
        except requests.Timeout:
            raise ConnectionFailed("connection_failed", f"{self.settings.url} did not answer in time") from None
        except requests.RequestException as exc:
            raise ConnectionFailed("connection_failed", f"cannot reach {self.settings.url} ({type(exc).__name__})") from None

    def _request(self, method, path, **kwargs):
        url = f"{self.settings.url}{path}"
        with self._network_errors():
            response = self.session.request(method, url, timeout=TIMEOUT_SECONDS, **kwargs)
        if response.status_code >= 400:
            raise _api_error(response)
        if response.status_code == 204:
            return None
        try:
            return response.json()
        except ValueError:
            raise ApiError("unexpected_response", f"{method} {url} answered {response.status_code} without JSON", response.status_code) from None

    def upload_file(self, path, *, visibility=None, ttl_seconds=None, filename=None, alias=None, strip_metadata=False,
                    progress=None):
        """Upload a file as a streamed multipart body; `progress(bytes_sent, total)` is called as it goes."""
        fields = _present(visibility=visibility, ttl_seconds=ttl_seconds, filename=filename, alias=alias,
                          strip_metadata="true" if strip_metadata else None)
        with open(path, "rb") as handle:
            encoder = MultipartEncoder(
                fields={**{k: str(v) for k, v in fields.items()}, "file": (os.path.basename(path), handle, "application/octet-stream")}
            )
            callback = (lambda monitor: progress(monitor.bytes_read, monitor.len)) if progress else None
            body = MultipartEncoderMonitor(encoder, callback)
            return self._request("POST", "/v1/images", data=body, headers={"Content-Type": body.content_type})

    def download(self, url, out, *, progress=None):
        """Write the bytes at a serving `url` to the binary file `out`; returns how many were written.

        The key goes along, so a private image of the project downloads too;
        `progress(bytes_written, total)` is called per chunk.
        """
        if not url.startswith(f"{self.settings.url}/"):
            # The key is only ever sent to the configured server.
            raise ApiError("invalid_request", f"{url} is not on {self.settings.url}")
        with self._network_errors(), self.session.get(url, stream=True, timeout=TIMEOUT_SECONDS) as response:
            if response.status_code >= 400:
                raise _api_error(response)
            total = int(response.headers.get("Content-Length") or 0)
            written = 0
            for chunk in response.iter_content(chunk_size=256 * 1024):
                out.write(chunk)
                written += len(chunk)
                if progress:
                    progress(written, total)
            return written

    def upload_base64(self, data, *, visibility=None, ttl_seconds=None, filename=None, alias=None, strip_metadata=False):
        """Upload base64 `data` as JSON; a string too long for the upload limit is refused before it is sent."""
        self._check_base64_length(data)
        body = {"data": data, **_present(visibility=visibility, ttl_seconds=ttl_seconds, filename=filename, alias=alias,
                                         strip_metadata=strip_metadata or None)}
        return self._request("POST", "/v1/images", json=body)

    def _check_base64_length(self, data):
        if len(data) > max_base64_length(self.settings.max_upload_bytes):
            raise ApiError(
                "image_too_large",
                f"data is longer than base64 of {self.settings.max_upload_bytes} bytes, the largest upload allowed.",
                413,
            )

    def list_images(self, *, source=None, visibility=None, limit=None, cursor=None):
        """One page: {"data": [...], "next_cursor": ...}."""
        params = _present(source=source, visibility=visibility, limit=limit, cursor=cursor)
        return self._request("GET", "/v1/images", params=params)

    def iter_images(self, *, source=None, visibility=None, limit=None):
        """Every image, following the cursors page by page."""
        cursor = None
        while True:
            page = self.list_images(source=source, visibility=visibility, limit=limit, cursor=cursor)
            yield from page["data"]
            cursor = page["next_cursor"]
            if not cursor:
                return

    def get_image(self, image_id):
        """One image record."""
        return self._request("GET", f"/v1/images/{_path_segment(image_id)}")

    def update_image(self, image_id, changes):
        """PATCH the fields in `changes`; returns the updated record."""
        return self._request("PATCH", f"/v1/images/{_path_segment(image_id)}", json=changes)

    def delete_image(self, image_id):
        """Delete for good."""
        self._request("DELETE", f"/v1/images/{_path_segment(image_id)}")

    def usage(self):
        """`GET /v1/usage`: what the project keeps and its quotas."""
        return self._request("GET", "/v1/usage")

    def replace_file(self, image_id, path, *, strip_metadata=False):
        """Put the file's bytes behind the image's URL; returns the updated record."""
        fields = {"strip_metadata": "true"} if strip_metadata else {}
        with open(path, "rb") as handle:
            encoder = MultipartEncoder(fields={**fields, "file": (os.path.basename(path), handle, "application/octet-stream")})
            return self._request(
                "PUT", f"/v1/images/{_path_segment(image_id)}/file", data=encoder, headers={"Content-Type": encoder.content_type}
            )

    def replace_base64(self, image_id, data, *, strip_metadata=False):
        """Put base64 `data` behind the image's URL; returns the updated record (too long a string is refused unsent)."""
        self._check_base64_length(data)
        body = {"data": data, **_present(strip_metadata=strip_metadata or None)}
        return self._request("PUT", f"/v1/images/{_path_segment(image_id)}/file", json=body)

    def sign_url(self, image_id, *, expires_in=None, variant=None):
        """A signed, expiring URL of the image (or a variant: w, h, fit, fm): {"url", "expires_at"}."""
        body = {**_present(expires_in=expires_in), **(variant or {})}
        return self._request("POST", f"/v1/images/{_path_segment(image_id)}/signed-url", json=body)

    def rotate_signing_key(self):
        """A new signing secret for the project: every signed URL issued before stops working."""
        return self._request("POST", "/v1/signing-key/rotate")

    def similar_images(self, image_id, *, max_distance=None, limit=None):
        """Your images close to one of them, nearest first: {"data": [record + distance, ...]}."""
        params = _present(max_distance=max_distance, limit=limit)
        return self._request("GET", f"/v1/images/{_path_segment(image_id)}/similar", params=params)

    def similar_to_file(self, path, *, max_distance=None, limit=None):
        """Your images close to a local file (sent, never stored), nearest first."""
        fields = {key: str(value) for key, value in _present(max_distance=max_distance, limit=limit).items()}
        with open(path, "rb") as handle:
            files = {"file": (os.path.basename(path), handle, "application/octet-stream")}
            return self._request("POST", "/v1/images/similar", data=fields, files=files)

    def similar_to_base64(self, data, *, max_distance=None, limit=None):
        """Your images close to base64 image bytes (never stored), nearest first."""
        body = {"data": data, **_present(max_distance=max_distance, limit=limit)}
        return self._request("POST", "/v1/images/similar", json=body)

    def list_generators(self):
        """The generators the server offers: {"data": [...]}."""
        return self._request("GET", "/v1/image-generators")

    def generate(self, generator, prompt, *, n=None, aspect_ratio=None, seed=None, visibility=None, ttl_seconds=None):
        """Generate and host images; returns the generation."""
        body = {"prompt": prompt, **_present(n=n, aspect_ratio=aspect_ratio, seed=seed, visibility=visibility,
                                             ttl_seconds=ttl_seconds)}
        return self._request("POST", f"/v1/image-generators/{_path_segment(generator)}/generate", json=body)


def max_base64_length(max_bytes):
    """The longest padded base64 text whose decoded size can still be within `max_bytes`."""
    return (max_bytes + 2) // 3 * 4


def _present(**fields):
    return {key: value for key, value in fields.items() if value is not None}


def _api_error(response):
    """The ApiError for an error response: the envelope's slug and message when there is one."""
    try:
        error = response.json()["error"]
        return ApiError(str(error["code"]), str(error["message"]), response.status_code)
    except (ValueError, KeyError, TypeError):
        snippet = response.text.strip().splitlines()[0][:200] if response.text.strip() else response.reason
        return ApiError(f"http_{response.status_code}", f"unexpected answer from {response.url}: {snippet}", response.status_code)
