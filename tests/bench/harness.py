"""scripts/bench: Goodeye's serving path measured against raw nginx serving the same file, in one run.

It starts the real stack (goodeye.stack.Stack: nginx + gunicorn; MySQL when
GOODEYE_DATABASE_URL names a MySQL server, else SQLite; Redis limits when Redis
answers on 127.0.0.1:6379), seeds images through the /v1 API, starts a minimal
nginx that serves the hot image's blob straight from disk, and drives every
scenario with wrk from its own process on loopback. Read the ratios to raw
nginx: absolute numbers drift between machines and runs, ratios hold better.
"""

import contextlib
import hashlib
import io
import json
import logging
import math
import os
import platform
import secrets
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import quote, urlparse

import click
import jinja2
import numpy as np
import pymysql
import redis
import requests
from click.testing import CliRunner
from PIL import Image

from goodeye.cli import main as goodeye_cli
from goodeye.db import make_database
from goodeye.generation.builtin import render
from goodeye.images.validation import ImageLimits, validate_image
from goodeye.serving.signing import compute_signature
from goodeye.stack import Stack, find_nginx
from goodeye.storage.local import LocalStorage
from tests.bench import variants
from tests.s3_server import S3Server

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_JSON = os.path.join(REPO_ROOT, "bench-results", "bench.json")
MODES = {
    "full": {"images": 10_000, "duration": 10, "repeats": 10, "settle_s": 180, "large_render": True},
    "quick": {"images": 50, "duration": 1, "repeats": 3, "settle_s": 0, "large_render": False},
}
# Seeding leaves MariaDB flushing and purging for a while; measuring then charges that work
# to whichever scenario queries the database. Wait until the 1-minute load average is this
# share of the cores (or the mode's settle_s is up).
QUIET_LOAD_PER_CORE = 0.5
PROJECT = "site"
LIVE_PROMPT = "mountain lake at dawn"
HOT_BYTES = 169_000  # the size of the PNG of the figures in docs/architecture.md
UPLOAD_BYTES = 1_000_000
UPLOAD_CLIENTS = 4
# More distinct signed URLs than a run can ask for at first-request speed (each asked once per pass).
FRESH_SIGNED_URLS = 60_000
SEED_CLIENTS = 4
# Random noise barely compresses: PNG (level 1) ~3 bytes a pixel, JPEG (q85, 4:2:0) ~0.77.
BYTES_PER_PIXEL = {"PNG": 3.0, "JPEG": 0.77}
SAVE_OPTIONS = {"PNG": {"compress_level": 1}, "JPEG": {"quality": 85}}
# Seed images: sizes spread evenly in log space from 1 KB to 2 MB, alternating formats.
SEED_SIZES = [round(1024 * 2048 ** (i / 23)) for i in range(24)]
BOUNDARY = "goodeyebenchboundary"
RAW_RUNS = ("raw nginx", "raw nginx, again")
# The variant served again in the bench (the hot image is a ~240-pixel square).
HOT_VARIANT = "w=128&fm=webp"

RAW_NGINX = jinja2.Template(
    """\
{% if user %}user {{ user }};{% endif %}
worker_processes {{ workers }};
pid {{ run_dir }}/raw-nginx.pid;
error_log {{ run_dir }}/raw-nginx-error.log warn;
daemon off;
events { worker_connections 4096; }
http {
    access_log off;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    keepalive_requests 100000;
    client_body_temp_path {{ run_dir }}/raw-body;
    proxy_temp_path {{ run_dir }}/raw-proxy;
    fastcgi_temp_path {{ run_dir }}/raw-fastcgi;
    uwsgi_temp_path {{ run_dir }}/raw-uwsgi;
    scgi_temp_path {{ run_dir }}/raw-scgi;
    server {
        listen 127.0.0.1:{{ port }};
{% for name, (blob, content_type) in files.items() %}
        location = /{{ name }} {
            alias {{ blob }};
            default_type {{ content_type }};
        }
{% endfor %}
        # The spread set's own blob files (hard links), asked in the same order as Goodeye's.
        location /spread/ {
            alias {{ spread_dir }}/;
            types { image/png png; image/jpeg jpg; }
        }
    }
}
""",
    undefined=jinja2.StrictUndefined,
)

# wrk scripts: how each kind of scenario makes its requests, plus one report
# that prints the figures as a JSON line (wrk's own text output is for people).
LUA = {
    "static": "",
    "spread": """
local paths, i = {}, 0
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
end
function request()
  i = i % #paths + 1
  return wrk.format(nil, paths[i])
end
""",
    # A fresh well-formed token every request, as a scanner would send: a
    # repeated one could be answered from a decision nginx kept.
    "unknown": """
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
function request()
  local token = {}
  for i = 1, 32 do
    local k = math.random(#alphabet)
    token[i] = alphabet:sub(k, k)
  end
  return wrk.format(nil, "/v1/i/" .. table.concat(token) .. ".png")
end
""",
    "upload": """
local head, tail, chunks, i = nil, nil, {}, 0
local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end
function init(args)
  head, tail = slurp(args[1]), slurp(args[2])
  for line in io.lines(args[3]) do
    chunks[#chunks + 1] = line:gsub("..", function(h) return string.char(tonumber(h, 16)) end)
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. args[4]
end
function request()
  i = i % #chunks + 1
  return wrk.format(nil, nil, nil, head .. chunks[i] .. tail)
end
""",
}
LUA_REPORT = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, "p50_us": %.0f, "p99_us": %.0f}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


class BenchError(RuntimeError):
    """The benchmark could not set itself up."""


@dataclass(frozen=True)
class Scenario:
    """One wrk run: where it points, how it asks, and what one probe request must see first."""

    name: str
    url: str
    lua: str = "static"
    lua_args: tuple = ()
    headers: dict = field(default_factory=dict)
    probe_url: str | None = None
    expect: int = 200
    expect_size: int | None = None
    expect_headers: dict = field(default_factory=dict)
    # Called after one request, before the probe: waits until what the run measures is in place.
    warm_up: object = None
    connections: int | None = None
    ratio: bool = True


@dataclass
class Seeded:
    """What the seed step made and the scenarios point at."""

    org: str
    key: str
    hot: dict
    private: dict
    flask_hot: dict
    flask_key: str
    flask_private: dict
    spread_file: str
    spread_blobs: list
    upload_png: bytes
    variant: dict
    signed_path: str
    fresh_signed_file: str
    s3_hot: dict
    live: dict


# -- images --------------------------------------------------------------------


def noise_image(fmt, target_bytes, rng):
    """Random-noise PNG or JPEG bytes of about `target_bytes`."""
    side = max(8, round(math.sqrt(target_bytes / BYTES_PER_PIXEL[fmt])))
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(out, fmt, **SAVE_OPTIONS[fmt])
    return out.getvalue()


def png_text_chunk(nonce):
    """A PNG tEXt chunk carrying `nonce`."""
    body = b"bench\x00" + nonce
    return struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body))


def unique(data, nonce):
    """The same image with `nonce` in a comment (JPEG COM segment, PNG tEXt chunk after IHDR), so its SHA-256 differs."""
    # Splicing a comment costs microseconds; re-encoding thousands of images
    # would spend the CPU minutes the benchmark itself needs.
    if data.startswith(b"\xff\xd8"):
        return data[:2] + b"\xff\xfe" + struct.pack(">H", len(nonce) + 2) + nonce + data[2:]
    return data[:33] + png_text_chunk(nonce) + data[33:]


# -- the stacks ----------------------------------------------------------------


def free_port():
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def bench_databases(count):
    """Database URLs for `count` stacks: fresh databases on the MySQL server GOODEYE_DATABASE_URL names, else SQLite ("")."""
    url = os.environ.get("GOODEYE_DATABASE_URL", "")
    if not url.startswith("mysql://"):
        yield [""] * count
        return
    # Fresh databases on that server, dropped afterwards: the named database is
    # never filled with thousands of benchmark images.
    parsed = urlparse(url)
    conn = pymysql.connect(
        host=parsed.hostname, port=parsed.port or 3306, user=parsed.username or "root",
        password=parsed.password or "", autocommit=True,
    )
    names = [f"goodeye_bench_{secrets.token_hex(4)}" for _ in range(count)]
    try:
        with conn.cursor() as cur:
            for name in names:
                cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        yield [parsed._replace(path=f"/{name}").geturl() for name in names]
    finally:
        with conn.cursor() as cur:
            for name in names:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def ratelimit_env():
    """Redis limits when Redis answers on 127.0.0.1:6379 (and none were configured), under a prefix of this run."""
    env = {"GOODEYE_RATELIMIT_KEY_PREFIX": f"goodeye-bench-{secrets.token_hex(4)}"}
    if os.environ.get("GOODEYE_RATELIMIT_STORAGE_URI"):
        return env
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return env
    return {**env, "GOODEYE_RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379"}


def admin(env, *args):
    """Run `goodeye admin ARGS --json` against a stack's database; return the parsed output."""
    result = CliRunner().invoke(goodeye_cli, ["admin", *args, "--json"], env=env, catch_exceptions=False)
    if result.exit_code != 0:
        raise BenchError(f"goodeye admin {' '.join(args)} failed: {result.output}")
    return json.loads(result.output)


def start_stack(cleanup, root, name, database_url, **overrides):
    """Start nginx + gunicorn on a fresh data dir under `root`; stopped by `cleanup`."""
    port = free_port()
    env = dict(
        os.environ,
        GOODEYE_DATA_DIR=os.path.join(root, name),
        GOODEYE_PORT=str(port),
        GOODEYE_PUBLIC_URL=f"http://127.0.0.1:{port}",
        # "" (SQLite in the data dir) also hides a GOODEYE_DATABASE_URL of the caller.
        GOODEYE_DATABASE_URL=database_url,
        # The raw nginx it is compared with writes no access log either.
        GOODEYE_ACCESS_LOG="false",
        **overrides,
    )
    admin(env, "db", "init")
    stack = Stack(env, with_sweeper=False)
    cleanup.callback(stack.stop)
    return stack.start()


def start_raw_nginx(cleanup, run_dir, files, spread_dir, workers):
    """A minimal nginx serving each {name: (blob path, content type)} at /name, and `spread_dir`
    at /spread/, with no check at all; returns its base URL."""
    port = free_port()
    conf = os.path.join(run_dir, "raw-nginx.conf")
    with open(conf, "w") as handle:
        handle.write(
            RAW_NGINX.render(
                user="root" if os.geteuid() == 0 else None, workers=workers, run_dir=run_dir, port=port,
                files=files, spread_dir=spread_dir,
            )
        )
    proc = subprocess.Popen(
        [find_nginx(), "-e", os.path.join(run_dir, "raw-nginx-error.log"), "-c", conf],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
    )
    cleanup.callback(lambda: (proc.terminate(), proc.wait(10)))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.ConnectionError):
            if requests.get(f"{url}/hot", timeout=2).status_code == 200:
                return url
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise BenchError(f"raw nginx did not start; see {run_dir}/raw-nginx-error.log")


def link_spread_blobs(blobs, spread_blobs, run_dir):
    """Hard-link the spread set's blobs as raw-spread/NNNNN.ext; write raw nginx's paths, in the same order; (dir, paths file)."""
    directory = os.path.join(run_dir, "raw-spread")
    os.makedirs(directory)
    path_file = os.path.join(run_dir, "raw-spread-paths.txt")
    with open(path_file, "w") as handle:
        for i, (sha256, content_type) in enumerate(spread_blobs):
            name = f"{i:05d}.{'png' if content_type == 'image/png' else 'jpg'}"
            os.link(blobs.path(sha256), os.path.join(directory, name))
            handle.write(f"/spread/{name}\n")
    return directory, path_file


def nginx_workers(stack):
    """worker_processes of the stack's rendered nginx config, so the raw nginx matches it."""
    with open(os.path.join(stack.settings.run_dir, "nginx.conf")) as handle:
        for line in handle:
            if line.strip().startswith("worker_processes"):
                return line.split()[1].rstrip(";")
    raise BenchError("the stack's nginx.conf has no worker_processes")


# -- seeding through the API ---------------------------------------------------


def new_owner(env, org):
    """Create org/site and return a key of it."""
    admin(env, "org", "create", org)
    admin(env, "project", "create", f"{org}/{PROJECT}")
    return admin(env, "key", "create", f"{org}/{PROJECT}")["key"]


def upload(session, stack, key, data, filename, visibility):
    """POST /v1/images (multipart); the record, or BenchError."""
    response = session.post(
        f"{stack.url}/v1/images",
        headers={"Authorization": f"Bearer {key}"},
        files={"file": (filename, data, "application/octet-stream")},
        data={"visibility": visibility},
        timeout=120,
    )
    if response.status_code != 201:
        raise BenchError(f"upload of {filename} answered {response.status_code}: {response.text[:300]}")
    return response.json()


def seed_spread(stack, key, count, rng, path_file):
    """Upload `count` distinct public images of 1 KB..2 MB with a few clients; write their paths to `path_file`
    and return their records, in that order."""
    bases = [noise_image(("JPEG", "PNG")[i % 2], size, rng) for i, size in enumerate(SEED_SIZES)]
    local = threading.local()

    def one(i):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        data = unique(bases[i % len(bases)], f"seed-{i}".encode())
        return upload(local.session, stack, key, data, f"seed-{i:05d}", "public")

    with ThreadPoolExecutor(SEED_CLIENTS) as pool:
        records = list(pool.map(one, range(count)))
    with open(path_file, "w") as handle:
        handle.write("".join(urlparse(record["url"]).path + "\n" for record in records))
    return records


def seed(stack, flask, s3_stack, count, root):
    """Owners, the hot (aliased @hero), private, Flask-served and S3-stored images, and the spread set; returns Seeded."""
    rng = np.random.default_rng(7)
    org = f"bench-{secrets.token_hex(3)}"
    key = new_owner(stack.env, org)
    flask_key = new_owner(flask.env, org)
    s3_key = new_owner(s3_stack.env, org)
    hot_png = noise_image("PNG", HOT_BYTES, rng)
    with requests.Session() as session:
        hot = upload(session, stack, key, hot_png, "hot.png", "public")
        s3_hot = upload(session, s3_stack, s3_key, hot_png, "hot.png", "public")
        private = upload(session, stack, key, noise_image("PNG", HOT_BYTES, rng), "private.png", "private")
        flask_hot = upload(session, flask, flask_key, hot_png, "hot.png", "public")
        flask_private = upload(session, flask, flask_key, hot_png, "private.png", "private")
        response = session.patch(
            f"{stack.url}/v1/images/{hot['id']}", headers={"Authorization": f"Bearer {key}"}, json={"alias": "@hero"}, timeout=30
        )
        if response.status_code != 200:
            raise BenchError(f"PATCH alias answered {response.status_code}: {response.text[:300]}")
        response = session.post(
            f"{stack.url}/v1/images/{private['id']}/signed-url", headers={"Authorization": f"Bearer {key}"},
            json={"expires_in": 604800}, timeout=30,
        )
        if response.status_code != 200:
            raise BenchError(f"POST signed-url answered {response.status_code}: {response.text[:300]}")
        signed = urlparse(response.json()["url"])
    spread_file = os.path.join(root, "spread-paths.txt")
    spread = seed_spread(stack, key, count, rng, spread_file)
    upload_png = noise_image("PNG", UPLOAD_BYTES, rng)
    fresh_signed_file = os.path.join(root, "fresh-signed-paths.txt")
    write_fresh_signed_paths(stack, private, FRESH_SIGNED_URLS, fresh_signed_file)
    return Seeded(
        org, key, hot, private, flask_hot, flask_key, flask_private, spread_file,
        [(record["sha256"], record["content_type"]) for record in spread], upload_png, render_hot_variant(hot),
        f"{signed.path}?{signed.query}", fresh_signed_file, s3_hot, fetched(live_url(stack, org), "the live URL"),
    )


def live_url(stack, org):
    """The live URL the bench asks."""
    return f"{stack.url}/cdn/{org}/{PROJECT}/live/bench?prompt={quote(LIVE_PROMPT)}"


def render_hot_variant(hot):
    """Render the hot image's bench variant once; its sha256, content type and size."""
    return fetched(f"{hot['url']}?{HOT_VARIANT}", "the hot variant")


def fetched(url, what):
    """GET `url` (generating or rendering it on a first request); the sha256, content type and size of what it serves."""
    response = requests.get(url, timeout=120)
    if response.status_code != 200:
        raise BenchError(f"{what} answered {response.status_code}: {response.text[:300]}")
    data = response.content
    return {"sha256": hashlib.sha256(data).hexdigest(), "content_type": response.headers["Content-Type"], "size_bytes": len(data)}


def write_fresh_signed_paths(stack, image, count, path_file):
    """`count` signed URLs of one image, each with its own `expires`, so none meets a decision nginx kept.

    Signing them through the API would take longer than the run: they are signed here
    with the project's secret, read from the stack's database (its only project).
    """
    database = make_database(stack.settings.database)
    try:
        secret = database.execute_sql("SELECT secret FROM signing_key").fetchone()[0]
    finally:
        database.close()
    token, path = image["token"], urlparse(image["url"]).path
    first = int(time.time()) + 3600
    with open(path_file, "w") as handle:
        for expires in range(first, first + count):
            handle.write(f"{path}?expires={expires}&signature={compute_signature(secret, token, (), str(expires))}\n")


def upload_lua_args(seeded, root, name, count):
    """Files for the upload script: multipart head and tail around the PNG, and `count` distinct tEXt chunks (hex)."""
    png = seeded.upload_png
    part = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename=""\r\nContent-Type: image/png\r\n\r\n'
    head = part.encode() + png[:33]
    tail = png[33:] + f'\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name="visibility"\r\n\r\nprivate\r\n--{BOUNDARY}--\r\n'.encode()
    paths = [os.path.join(root, f"{name}.{suffix}") for suffix in ("head", "tail", "chunks")]
    for path, data in zip(paths[:2], (head, tail)):
        with open(path, "wb") as handle:
            handle.write(data)
    with open(paths[2], "w") as handle:
        handle.writelines(png_text_chunk(f"{name}-{i}".encode()).hex() + "\n" for i in range(count))
    return (*paths, BOUNDARY)


# -- scenarios -----------------------------------------------------------------


def scenarios(stack, flask, s3_stack, raw_url, raw_spread_file, seeded, root, upload_count):
    """The table of wrk runs, in the order they run and print."""
    auth = {"Authorization": f"Bearer {seeded.key}"}
    hot_size = seeded.hot["size_bytes"]
    cdn = f"{stack.url}/cdn/{seeded.org}/{PROJECT}"
    with open(seeded.spread_file) as handle:
        first_spread = stack.url + handle.readline().strip()
    with open(raw_spread_file) as handle:
        first_raw_spread = raw_url + handle.readline().strip()
    with open(seeded.fresh_signed_file) as handle:
        # The probe uses the last: the run starts from the first, which then has no kept decision.
        probe_fresh_signed = handle.read().splitlines()[-1]

    def path(record):
        return urlparse(record["url"]).path

    def get(name, url, **kwargs):
        return Scenario(name, url, probe_url=url, **kwargs)

    def uploads(name, connections):
        return Scenario(
            name, f"{stack.url}/v1/images", lua="upload", headers=auth, connections=connections, ratio=False,
            lua_args=upload_lua_args(seeded, root, name.replace(" ", "-"), upload_count),
        )

    return [
        get("raw nginx", f"{raw_url}/hot", expect_size=hot_size),
        get("public hot", stack.url + path(seeded.hot), expect_size=hot_size),
        # The first request fills nginx's cache of S3 objects and has the node copy the blob
        # (docs/architecture.md, "On S3 storage"); the run measures what follows.
        get(
            "public hot, S3 storage", s3_stack.url + path(seeded.s3_hot), expect_size=hot_size,
            warm_up=lambda: wait_for_copy(s3_stack, seeded.s3_hot),
        ),
        get("raw nginx, variant bytes", f"{raw_url}/variant", expect_size=seeded.variant["size_bytes"]),
        get(
            "variant served again", f"{stack.url}{path(seeded.hot)}?{HOT_VARIANT}",
            expect_size=seeded.variant["size_bytes"], expect_headers={"Content-Type": "image/webp"},
        ),
        Scenario("raw nginx, spread", raw_url + "/", lua="spread", lua_args=(raw_spread_file,), probe_url=first_raw_spread),
        Scenario("public spread", stack.url + "/", lua="spread", lua_args=(seeded.spread_file,), probe_url=first_spread),
        get("private + owner key", stack.url + path(seeded.private), headers=auth, expect_size=seeded.private["size_bytes"]),
        get("signed hot (private)", stack.url + seeded.signed_path, expect_size=seeded.private["size_bytes"]),
        Scenario(
            "signed first request", stack.url + "/", lua="spread", lua_args=(seeded.fresh_signed_file,),
            probe_url=stack.url + probe_fresh_signed, expect_size=seeded.private["size_bytes"],
        ),
        get("cdn img @alias", f"{cdn}/img/@hero", expect_size=hot_size),
        # The live image (~90 KB) compared with the same bytes: nginx itself answers sizes of
        # 70-120 KB with a 40 ms stall now and then on loopback (README: Performance).
        get("raw nginx, live bytes", f"{raw_url}/live", expect_size=seeded.live["size_bytes"]),
        get(
            "live HIT", live_url(stack, seeded.org),
            expect_size=seeded.live["size_bytes"], expect_headers={"X-Cache-Status": "HIT"},
        ),
        Scenario(
            "unknown token (404)", stack.url + "/", lua="unknown", expect=404,
            probe_url=f"{stack.url}/v1/i/{secrets.token_urlsafe(24)}.png",
        ),
        get("flask streaming (accel off)", flask.url + path(seeded.flask_hot), expect_size=hot_size),
        get(
            "flask streaming, private + key", flask.url + path(seeded.flask_private),
            headers={"Authorization": f"Bearer {seeded.flask_key}"}, expect_size=hot_size,
        ),
        uploads("upload 1 MB PNG", UPLOAD_CLIENTS),
        uploads("upload 1 MB PNG, 1 client", 1),
        get("raw nginx, again", f"{raw_url}/hot", expect_size=hot_size),
    ]


def wait_for_copy(stack, record):
    """Wait (at most 30 s) until the S3 node keeps its own copy of the record's image, which nginx serves alone."""
    directory = os.path.join(stack.settings.link_dir, record["token"][:2])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if os.path.isdir(directory) and any(name.startswith(record["token"] + "~") for name in os.listdir(directory)):
            return
        time.sleep(0.05)
    raise BenchError(f"the S3 node made no copy of {record['url']} in 30 s")


def probe(scenario):
    """None when one request gets what the scenario expects; else the result that stands in for its figures."""
    if scenario.warm_up:
        requests.get(scenario.probe_url, headers=scenario.headers, timeout=120)
        scenario.warm_up()
    response = requests.get(scenario.probe_url, headers=scenario.headers, timeout=60)
    problems = []
    if response.status_code != scenario.expect:
        problems.append(f"status {response.status_code} (expected {scenario.expect}): {response.text[:200]}")
    if scenario.expect_size is not None and len(response.content) != scenario.expect_size:
        problems.append(f"{len(response.content)} bytes (expected {scenario.expect_size})")
    problems += [
        f"{name}: {response.headers.get(name)!r} (expected {value!r})"
        for name, value in scenario.expect_headers.items()
        if response.headers.get(name) != value
    ]
    return {"status": "failed", "reason": "; ".join(problems)} if problems else None


def write_lua(root):
    """Write one wrk script per kind; return {kind: path}."""
    paths = {}
    for kind, body in LUA.items():
        paths[kind] = os.path.join(root, f"{kind}.lua")
        with open(paths[kind], "w") as handle:
            handle.write(body + LUA_REPORT)
    return paths


def run_wrk(scenario, script, duration, connections):
    """Run wrk for one scenario; its figures."""
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "60s", "-s", script]
    for name, value in scenario.headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv += [scenario.url, "--", *scenario.lua_args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 120)
    line = next((line for line in done.stdout.splitlines() if line.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed for {scenario.name}: {done.stdout}{done.stderr}")
    raw = json.loads(line.removeprefix("BENCH "))
    return {
        "status": "ok",
        "connections": connections,
        "requests": raw["requests"],
        "requests_per_s": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": round(raw["p50_us"] / 1000, 3),
        "p99_ms": round(raw["p99_us"] / 1000, 3),
        # wrk counts answers with a status of 400 or more; no scenario expects a 3xx.
        "non_2xx": raw["non_2xx"],
        "socket_errors": raw["socket_errors"],
    }


def measure(scenarios_, scripts, duration, connections):
    """Probe then load every scenario; ({name: figures} with each ratio to raw nginx, raw nginx's req/s)."""
    results = {}
    for scenario in scenarios_:
        outcome = probe(scenario) if scenario.probe_url else None
        results[scenario.name] = figures = outcome or run_wrk(
            scenario, scripts[scenario.lua], duration, scenario.connections or connections
        )
        print(f"  {scenario.name}: {figures.get('requests_per_s', figures['status'])}", file=sys.stderr)
    # Raw nginx runs first and last; their mean is the reference, so a machine
    # whose load drifts during the run moves the ratios less.
    if any(results[name]["status"] != "ok" for name in RAW_RUNS):
        raise BenchError(f"raw nginx did not serve the hot image: {[results[name] for name in RAW_RUNS]}")
    raw_rps = round(statistics.mean(results[name]["requests_per_s"] for name in RAW_RUNS), 1)
    for scenario in scenarios_:
        figures = results[scenario.name]
        if scenario.ratio and figures["status"] == "ok":
            figures["ratio_to_raw"] = round(figures["requests_per_s"] / raw_rps, 4)
    return results, raw_rps


# -- in-process references and memory ------------------------------------------


def settle(limit_s):
    """Wait, at most limit_s, for the machine to go quiet after seeding; the seconds waited."""
    started = time.monotonic()
    quiet = QUIET_LOAD_PER_CORE * (os.cpu_count() or 1)
    while os.getloadavg()[0] > quiet and time.monotonic() - started < limit_s:
        time.sleep(2)
    return round(time.monotonic() - started, 1)


def median_ms(fn, repeats):
    """Median wall time of fn(i) for i in range(repeats), in ms."""
    times = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 2)


def in_process_upload_ms(png, repeats, root):
    """Median ms to validate (decode, hash) and write distinct copies of `png` in this process."""
    storage = LocalStorage(os.path.join(root, "in-process-blobs"))
    limits = ImageLimits()

    def store(i):
        data = unique(png, f"in-process-{i}".encode())
        info = validate_image(data, limits)
        storage.put(info.sha256, data, info.content_type)

    return median_ms(store, repeats)


def gunicorn_peak_rss_mb(stack):
    """Peak RSS (VmHWM) of each gunicorn worker of `stack`, in MB."""
    master = stack.processes["gunicorn"].pid
    peaks = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                ppid = int(handle.read().rpartition(")")[2].split()[1])
            if ppid != master:
                continue
            with open(f"/proc/{entry}/status") as handle:
                kb = next(int(line.split()[1]) for line in handle if line.startswith("VmHWM:"))
        except (OSError, StopIteration):
            continue
        peaks.append(round(kb / 1024, 1))
    return sorted(peaks)


def machine():
    """What this ran on."""
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), platform.processor())
    nginx = subprocess.run([find_nginx(), "-v"], capture_output=True, text=True).stderr.strip()
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0].split(" [")[0]
    return {"nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(), "nginx": nginx, "wrk": wrk}


# -- report --------------------------------------------------------------------


def print_report(report):
    """The figures as a table on stdout."""
    m, c = report["machine"], report["config"]
    print(f"\nGoodeye bench ({c['mode']}): {m['nproc']} cores, {m['cpu_model']}; {m['nginx']}; {m['wrk']}")
    print(
        f"load average (1 min) {m['load_1m_before']} before measuring (after waiting {c['settle_seconds']} s "
        f"for the machine to settle), {m['load_1m_after']} after"
    )
    print(
        f"database {c['database']}, limits {c['ratelimit_storage']}, gunicorn {c['workers']}x{c['threads']}, "
        f"{c['images']} seeded images, wrk -t1 -c{c['connections']} -d{c['duration_s']}s\n"
    )
    print(f"vs raw = req/s over raw nginx's {report['raw_nginx_requests_per_s']:,.0f} (mean of its first and last run)\n")
    print(f"{'scenario':<30} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'vs raw':>7}")
    for name, f in report["scenarios"].items():
        if f["status"] != "ok":
            print(f"{name:<30} {f['status'].upper()}: {f['reason']}")
            continue
        ratio = f"{f['ratio_to_raw']:.1%}" if "ratio_to_raw" in f else "-"
        print(f"{name:<30} {f['requests_per_s']:>10,.0f} {f['p50_ms']:>8.2f} {f['p99_ms']:>8.2f} {f['non_2xx']:>8} {ratio:>7}")
    u, g, k = report["uploads"], report["generation"], report["checks"]
    print(
        f"\nprivate + owner key: {k['private_vs_flask_streaming']}x flask streaming the same request "
        f"({k['private_vs_flask_streaming_public']}x flask streaming a public image); "
        f"{k['private_vs_check_without_db']}x the unknown-token check (no database work)"
    )
    print(
        f"public spread: {report['same_bytes']['public_spread_vs_raw_nginx_same_files']}x raw nginx serving the same files "
        "in the same order"
    )
    print(f"live HIT: {report['same_bytes']['live_hit_vs_raw_nginx_same_bytes']}x raw nginx serving the same bytes")
    print(f"signed URL, first request: {k['signed_first_request_vs_private_key']}x private + owner key (the API-key check)")
    print(
        f"upload of a 1 MB PNG: {u['uploads_per_s']} uploads/s ({UPLOAD_CLIENTS} clients); server time "
        f"{u['server_ms_per_upload']} ms (p50, 1 client) vs {u['in_process_ms']} ms to validate + write "
        f"in-process: {u['ratio_to_in_process']}x"
    )
    print(f"builtin generation 1024x1024: {g['builtin_1024_median_ms']} ms (median, in-process)")
    v = report["variants"]
    print(f"\nvariant served again: {v['served_again_vs_raw_nginx_same_bytes']}x raw nginx serving the same bytes")
    for case, ms in v["first_render_in_process_ms"].items():
        stack_ms = v["first_request_through_the_stack"][case]
        print(
            f"  {case:<32} render {ms} ms (median, in-process); "
            f"first request {stack_ms['first_ms']} ms, again {stack_ms['again_ms']} ms"
        )
    for case, figures in (v["thumbor_first_request"] or {}).items():
        print(f"  thumbor: {case:<32} {figures}")
    if v["large_render"]:
        print(f"  {variants.LARGE_CASE:<32} {v['large_render']}")
    print(f"gunicorn worker peak RSS (MB): {report['gunicorn_peak_rss_mb']}")


def variant_figures(stack, seeded, results, mode, root):
    """A variant served again over raw nginx serving its bytes; first-render times (and thumbor's); the 50-megapixel render's memory."""
    served, raw = results["variant served again"].get("requests_per_s"), results["raw nginx, variant bytes"].get("requests_per_s")
    cases = variants.sources()
    thumbor_bin = os.path.join(REPO_ROOT, ".venv-thumbor", "bin", "thumbor")
    return {
        "served_again_vs_raw_nginx_same_bytes": round(served / raw, 3) if served and raw else None,
        "first_render_in_process_ms": variants.in_process_ms(cases, mode["repeats"]),
        "first_request_through_the_stack": variants.through_the_stack_ms(stack.url, seeded.key, cases),
        # scripts/bench installs thumbor in a venv of its own (it pins an older Pillow) on full runs.
        "thumbor_first_request": (
            variants.thumbor_first_request_ms(thumbor_bin, cases, root, free_port())
            if mode["large_render"] and os.path.exists(thumbor_bin) else None
        ),
        "large_render": variants.large_render(root, REPO_ROOT) if mode["large_render"] else None,
    }


def check_summary(results):
    """The private check's req/s over Flask streaming and over a check that does no database work.

    Flask streaming is measured for the same request (a private image with its owner's key)
    and for a public image without one. A fresh random token is refused by its HMAC tag
    before any query, so the unknown-token scenario is the same trip through nginx,
    gunicorn and Flask minus the database.
    """
    private = results["private + owner key"].get("requests_per_s")

    def over(name):
        other = results[name].get("requests_per_s")
        return round(private / other, 3) if private and other else None

    signed_first = results["signed first request"].get("requests_per_s")
    return {
        "signed_first_request_vs_private_key": round(signed_first / private, 3) if signed_first and private else None,
        "private_vs_flask_streaming": over("flask streaming, private + key"),
        "private_vs_flask_streaming_public": over("flask streaming (accel off)"),
        "private_vs_check_without_db": over("unknown token (404)"),
    }


def same_bytes_summary(results):
    """Each scenario's req/s over raw nginx serving the same files (in the same order, for the spread)."""
    pairs = {
        "public_spread_vs_raw_nginx_same_files": ("public spread", "raw nginx, spread"),
        "live_hit_vs_raw_nginx_same_bytes": ("live HIT", "raw nginx, live bytes"),
    }
    ratios = {}
    for name, (scenario, raw) in pairs.items():
        served, baseline = results[scenario].get("requests_per_s"), results[raw].get("requests_per_s")
        ratios[name] = round(served / baseline, 3) if served and baseline else None
    return ratios


def upload_summary(results, in_process_ms):
    """Uploads/s, server time per upload and its ratio to the in-process work."""
    many, one = results["upload 1 MB PNG"], results["upload 1 MB PNG, 1 client"]
    server_ms = one.get("p50_ms")
    return {
        "uploads_per_s": many.get("requests_per_s"),
        "server_ms_per_upload": server_ms,
        "in_process_ms": in_process_ms,
        "ratio_to_in_process": round(server_ms / in_process_ms, 2) if server_ms else None,
    }


@click.command()
@click.option("--quick", is_flag=True, help="Tiny data set and 1 s runs: under a minute (the CI smoke test).")
@click.option("--json", "json_path", default=DEFAULT_JSON, show_default=True, type=click.Path(dir_okay=False), help="Where to write the figures.")
@click.option("--duration", type=click.IntRange(1), help="Seconds per wrk run [default: 10, 1 with --quick].")
@click.option("--connections", type=click.IntRange(1), default=16, show_default=True, help="wrk connections for the GET scenarios.")
@click.option("--images", type=click.IntRange(1), help="Images to seed for the spread scenario [default: 10000, 50 with --quick].")
def main(quick, json_path, duration, connections, images):
    """Measure Goodeye's serving path against raw nginx serving the same file, in one run."""
    mode = MODES["quick" if quick else "full"]
    duration = duration or mode["duration"]
    images = images or mode["images"]
    with contextlib.ExitStack() as cleanup:
        root = tempfile.mkdtemp(prefix="goodeye-bench-")
        cleanup.callback(shutil.rmtree, root, True)
        db_urls = cleanup.enter_context(bench_databases(3))
        limits = ratelimit_env()
        print("starting the stacks...", file=sys.stderr)
        stack = start_stack(cleanup, root, "goodeye", db_urls[0], **limits)
        flask = start_stack(cleanup, root, "accel-off", db_urls[1], GOODEYE_ACCEL="off", **limits)
        # S3 storage: moto's server on loopback, as the tests use (tests/s3_server.py), without
        # a log line per request on the bench's output.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        s3 = S3Server().start()
        cleanup.callback(s3.stop)
        s3_env = s3.env(s3.create_bucket(f"goodeye-bench-{secrets.token_hex(4)}"))
        s3_stack = start_stack(cleanup, root, "s3", db_urls[2], **s3_env, **limits)
        print(f"seeding {images} images...", file=sys.stderr)
        started = time.monotonic()
        seeded = seed(stack, flask, s3_stack, images, root)
        seed_seconds = round(time.monotonic() - started, 1)
        blobs = LocalStorage(stack.settings.blob_dir)
        spread_dir, raw_spread_file = link_spread_blobs(blobs, seeded.spread_blobs, stack.settings.run_dir)
        raw_url = start_raw_nginx(
            cleanup, stack.settings.run_dir,
            {
                "hot": (blobs.path(seeded.hot["sha256"]), seeded.hot["content_type"]),
                "variant": (blobs.path(seeded.variant["sha256"]), seeded.variant["content_type"]),
                "live": (blobs.path(seeded.live["sha256"]), seeded.live["content_type"]),
            },
            spread_dir, nginx_workers(stack),
        )
        print("letting the machine settle...", file=sys.stderr)
        settle_seconds = settle(mode["settle_s"])
        print("measuring...", file=sys.stderr)
        load_before = os.getloadavg()[0]
        results, raw_rps = measure(
            scenarios(stack, flask, s3_stack, raw_url, raw_spread_file, seeded, root, upload_count=duration * 1000),
            write_lua(root), duration, connections,
        )
        report = {
            # Other work on the machine moves every figure: the load says how quiet it was.
            "machine": {**machine(), "load_1m_before": round(load_before, 2), "load_1m_after": round(os.getloadavg()[0], 2)},
            "config": {
                "mode": "quick" if quick else "full",
                "duration_s": duration,
                "connections": connections,
                "images": images,
                "seed_seconds": seed_seconds,
                "settle_seconds": settle_seconds,
                "database": "mysql" if db_urls[0] else "sqlite",
                "ratelimit_storage": stack.settings.ratelimit_storage_uri.split(":")[0],
                "workers": stack.settings.workers,
                "threads": stack.settings.threads,
            },
            "raw_nginx_requests_per_s": raw_rps,
            "scenarios": results,
            "checks": check_summary(results),
            "same_bytes": same_bytes_summary(results),
            "uploads": upload_summary(results, in_process_upload_ms(seeded.upload_png, mode["repeats"], root)),
            "generation": {"builtin_1024_median_ms": median_ms(lambda i: render(LIVE_PROMPT, seed=i, aspect_ratio="1:1"), mode["repeats"])},
            "variants": variant_figures(stack, seeded, results, mode, root),
            "gunicorn_peak_rss_mb": gunicorn_peak_rss_mb(stack),
            "gunicorn_peak_rss_mb_accel_off": gunicorn_peak_rss_mb(flask),
        }
    os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
    with open(json_path, "w") as handle:
        json.dump(report, handle, indent=2)
    print_report(report)
    print(f"\nwritten to {json_path}")
    failed = [name for name, figures in results.items() if figures["status"] == "failed"]
    if failed:
        raise click.ClickException(f"scenarios failed: {', '.join(failed)}")


if __name__ == "__main__":
    main(prog_name="scripts/bench")
