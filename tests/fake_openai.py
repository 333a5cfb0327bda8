"""A real HTTP server that speaks the OpenAI Images API, for tests.

    with FakeOpenAI(mode="url") as fake:
        generator = OpenAIGenerator(fake.base_url, fake.api_key, "fake-model", 5)
        fake.mode = "b64_json"          # switch modes at any time
        fake.requests                   # every request it got, in order

`POST /v1/images/generations` answers according to `mode`:

    url               data[i].url -> a PNG this server serves (/files/img-{i}.png)
    b64_json          data[i].b64_json -> the same PNG bytes, inline
    slow              sleeps `slow_seconds` (or until the server closes), then answers like `url`
    failing           500 with an OpenAI error body
    redirect_private  data[i].url -> /redirect/private, a 302 to `redirect_target`
                      (default http://localhost:{port}/..., loopback by name)
    svg               data[i].url -> an SVG document
    oversized         data[i].url -> a real PNG of `oversized_bytes` or more
    mixed             like `url`, except slot 1 is /redirect/private
    malformed         200 whose body is not JSON
    short             one output fewer than asked
    extra             one output more than asked
    bad_b64           like `b64_json`, except slot 0 is not valid base64

A wrong bearer key gets a 401 whose message quotes the key it got (as careless
providers do), to prove the adapter redacts it. Other paths, used by fetch tests:

    /files/img-{i}.png          a small real PNG, distinct per i
    /files/oversized.png        the big PNG, with Content-Length
    /files/oversized-stream.png the big PNG, chunked (no Content-Length)
    /files/drip.png             a small PNG sent in pieces every `drip_interval`
    /files/stall.png            headers and a few bytes, then silence
    /files/slow-headers.png     silence before the status line
    /files/gzip.png             a PNG with Content-Encoding: gzip
    /files/image.svg            SVG
    /redirect/private           302 to `redirect_target`
    /redirect/to?url=U          302 to U
    /redirect/chain/{k}         k redirects (relative Locations), then img-0
    /status/{code}              that status
"""

import base64
import functools
import gzip
import io
import json
import random
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from PIL import Image

MODES = (
    "url",
    "b64_json",
    "slow",
    "failing",
    "redirect_private",
    "svg",
    "oversized",
    "mixed",
    "malformed",
    "short",
    "extra",
    "bad_b64",
)

FAILING_MESSAGE = "The server had an error while processing your request. Sorry about that!"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/></svg>'


def png_bytes(index, size=(48, 32)):
    """A small real PNG whose colour depends on index."""
    rng = random.Random(index)
    image = Image.new("RGB", size, (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@functools.lru_cache(maxsize=4)
def noise_png(min_bytes):
    """A real PNG of random noise at least min_bytes long (noise does not compress)."""
    side = 64
    while side * side * 3 < min_bytes:
        side *= 2
    image = Image.frombytes("RGB", (side, side), random.Random(7).randbytes(side * side * 3))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@dataclass
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    headers: dict
    body: bytes = b""
    json: object = field(default=None)


class FakeOpenAI:
    """A threaded HTTP(S) server on 127.0.0.1 with a random port; see the module docstring."""

    def __init__(
        self,
        mode="url",
        *,
        api_key="sk-fake-key-0123456789",
        slow_seconds=10.0,
        oversized_bytes=300_000,
        drip_interval=0.15,
        redirect_target=None,
        ssl_context=None,
    ):
        self.mode = mode
        self.api_key = api_key
        self.slow_seconds = slow_seconds
        self.drip_interval = drip_interval
        self.redirect_target = redirect_target
        self.requests = []
        self._lock = threading.Lock()
        self._recorded = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._images = {}
        self.oversized_png = noise_png(oversized_bytes)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._server.handle_error = lambda request, client_address: None
        if ssl_context is not None:
            self._server.socket = ssl_context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.scheme = "https" if ssl_context is not None else "http"
        self.port = self._server.server_address[1]
        self._thread = None

    # lifecycle

    def start(self):
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def close(self):
        """Stop serving and wake any handler that is sleeping."""
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # what tests use

    @property
    def mode(self):
        return self._mode

    @mode.setter
    def mode(self, value):
        if value not in MODES:
            raise ValueError(f"unknown mode {value!r}; one of {', '.join(MODES)}")
        self._mode = value

    @property
    def origin(self):
        """`http://127.0.0.1:PORT`."""
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def base_url(self):
        """The OpenAI-style base URL (`.../v1`)."""
        return f"{self.origin}/v1"

    @property
    def allowlist_entry(self):
        """The allowlist entry that lets fetches reach this server on loopback."""
        return f"+127.0.0.1:{self.port}"

    def url(self, path):
        """An absolute URL on this server."""
        return f"{self.origin}{path}"

    def image_bytes(self, index):
        """The exact bytes of /files/img-{index}.png (and of b64_json slot index)."""
        with self._lock:
            if index not in self._images:
                self._images[index] = png_bytes(index)
            return self._images[index]

    @property
    def generation_requests(self):
        """The requests made to the images endpoint."""
        return [r for r in self.requests if r.path.endswith("/images/generations")]

    def paths(self):
        """The paths requested, in order."""
        return [r.path for r in self.requests]

    def wait_for_generation_requests(self, count, timeout=30):
        """Block until the images endpoint has received `count` requests (AssertionError after `timeout`)."""
        with self._recorded:
            arrived = self._recorded.wait_for(lambda: len(self.generation_requests) >= count, timeout)
        assert arrived, f"{len(self.generation_requests)} of {count} generation requests arrived in {timeout}s"

    def _record(self, request):
        with self._recorded:
            self.requests.append(request)
            self._recorded.notify_all()

    def _sleep(self, seconds):
        """Sleep, but return early when the server is closing."""
        self._stop.wait(seconds)


def _handler_for(fake):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "FakeOpenAI/1.0"

        def log_message(self, *args):
            pass

        def setup(self):
            if isinstance(self.request, ssl.SSLSocket):
                self.request.settimeout(10)
                self.request.do_handshake()
            super().setup()

        # plumbing

        def _send(self, status, body, content_type="application/json", headers=()):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True

        def _json(self, status, payload):
            self._send(status, json.dumps(payload).encode())

        def _error(self, status, message, type_="invalid_request_error", code=None):
            self._json(status, {"error": {"message": message, "type": type_, "param": None, "code": code}})

        def _redirect(self, location, status=302):
            self._send(status, b"", "text/plain", headers=[("Location", location)])

        def _chunked(self, pieces, content_type="image/png", interval=0.0):
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            for piece in pieces:
                if fake._stop.is_set():
                    return
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
                if interval:
                    fake._sleep(interval)
            self.wfile.write(b"0\r\n\r\n")

        def _record(self, body=b""):
            parsed = None
            if body:
                try:
                    parsed = json.loads(body)
                except ValueError:
                    parsed = None
            fake._record(
                RecordedRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body, parsed)
            )
            return parsed

        def handle_one_request(self):
            try:
                super().handle_one_request()
            except (ConnectionError, ssl.SSLError, TimeoutError):
                self.close_connection = True

        # routes

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            payload = self._record(body)
            if urlsplit(self.path).path != "/v1/images/generations":
                return self._error(404, f"Invalid URL (POST {self.path})")
            given = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            if given != fake.api_key:
                return self._error(401, f"Incorrect API key provided: {given}.", code="invalid_api_key")
            if not isinstance(payload, dict) or not isinstance(payload.get("n", 1), int):
                return self._error(400, "We could not parse the JSON body of your request.")
            self._generate(payload)

        def _generate(self, payload):
            n = payload.get("n", 1)
            mode = fake.mode
            if mode == "slow":
                fake._sleep(fake.slow_seconds)
            if mode == "failing":
                return self._error(500, FAILING_MESSAGE, type_="server_error")
            if mode == "malformed":
                return self._send(200, b'{"created": 1, "data": [', "application/json")

            def item(i):
                if mode in ("b64_json", "bad_b64"):
                    if mode == "bad_b64" and i == 0:
                        return {"b64_json": "this is *not* base64!"}
                    return {"b64_json": base64.b64encode(fake.image_bytes(i)).decode()}
                if mode == "redirect_private" or (mode == "mixed" and i == 1):
                    return {"url": fake.url("/redirect/private")}
                if mode == "svg":
                    return {"url": fake.url("/files/image.svg")}
                if mode == "oversized":
                    return {"url": fake.url("/files/oversized.png")}
                return {"url": fake.url(f"/files/img-{i}.png?se=2030-01-01&sig=fake")}

            count = {"short": n - 1, "extra": n + 1}.get(mode, n)
            self._json(200, {"created": int(time.time()), "data": [item(i) for i in range(count)]})

        def do_GET(self):
            self._record()
            parts = urlsplit(self.path)
            path = parts.path
            if path.startswith("/files/img-") and path.endswith(".png"):
                try:
                    index = int(path[len("/files/img-") : -len(".png")])
                except ValueError:
                    return self._send(404, b"not found", "text/plain")
                return self._send(200, fake.image_bytes(index), "image/png")
            if path == "/files/oversized.png":
                return self._send(200, fake.oversized_png, "image/png")
            if path == "/files/oversized-stream.png":
                data = fake.oversized_png
                return self._chunked([data[i : i + 16384] for i in range(0, len(data), 16384)])
            if path == "/files/drip.png":
                data = fake.image_bytes(0)
                # About 40 pieces: several seconds in all, each gap far under a second.
                return self._chunked([data[i : i + 3] for i in range(0, len(data), 3)], interval=fake.drip_interval)
            if path == "/files/stall.png":
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(fake.image_bytes(0))))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(fake.image_bytes(0)[:8])
                self.wfile.flush()
                fake._sleep(fake.slow_seconds)
                self.close_connection = True
                return None
            if path == "/files/slow-headers.png":
                fake._sleep(fake.slow_seconds)
                return self._send(200, fake.image_bytes(0), "image/png")
            if path == "/files/gzip.png":
                return self._send(200, gzip.compress(fake.image_bytes(0)), "image/png", [("Content-Encoding", "gzip")])
            if path == "/files/image.svg":
                return self._send(200, SVG, "image/svg+xml")
            if path == "/redirect/private":
                target = fake.redirect_target or f"http://localhost:{fake.port}/files/img-0.png"
                return self._redirect(target)
            if path == "/redirect/to":
                return self._redirect(parse_qs(parts.query)["url"][0])
            if path.startswith("/redirect/chain/"):
                left = int(path.rsplit("/", 1)[1])
                return self._redirect(f"/redirect/chain/{left - 1}" if left > 1 else "/files/img-0.png")
            if path.startswith("/status/"):
                code = int(path.rsplit("/", 1)[1])
                return self._send(code, b"status", "text/plain")
            return self._send(404, b"not found", "text/plain")

    return Handler
