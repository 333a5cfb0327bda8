"""Run the whole stack: two gunicorn pools on unix sockets, nginx in front, the sweeper (and on S3 the follower) beside.

The app pool (`gunicorn.sock`) takes the API: uploads, generation, live MISSes. The serving
pool (`gunicorn-serve.sock`, GOODEYE_SERVE_WORKERS) takes what stands before image bytes:
nginx's decisions (`/_goodeye/decide/...`), `/v1/i/...` and `/cdn/.../img/...`. Both run the
same app; the split only keeps a read from queueing behind uploads that decode for seconds.

`goodeye serve` (behind scripts/serve), the container and the end-to-end tests
all start Goodeye through this module, so they run the same shape.
"""

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import jinja2

from goodeye import console
from goodeye.config import check_serving, load_settings
from goodeye.errors import (
    AuthRequired,
    GoodeyeError,
    ImageNotFound,
    ImageTooLarge,
    InvalidRequest,
    MethodNotAllowed,
    PreconditionFailed,
    RangeNotSatisfiable,
    ServiceUnavailable,
)
from goodeye.files import DATA_DIR_MODE, make_private_dir
from goodeye.http import cdn_envelope, v1_envelope
from goodeye.metrics import nginx_status_socket

# Package data: found beside this module in a checkout and in an installed package alike.
NGINX_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nginx")
_NGINX_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(NGINX_DIR), undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    keep_trailing_newline=True,
)

# The errors nginx answers itself, as JSON error pages in each family's envelope.
NGINX_ERRORS = {
    400: InvalidRequest("Malformed request."),
    401: AuthRequired(),
    404: ImageNotFound(),
    # nginx's own 405 is for TRACE, refused before any location (other methods on a path
    # reach the app, whose 405 names the allowed ones in Allow).
    405: MethodNotAllowed("This method is not allowed here."),
    # A precondition nginx checked itself (the app answers them before that).
    412: PreconditionFailed(),
    413: ImageTooLarge("The request body is larger than the upload limit."),
    # nginx answers 414 before it has read the path: the family is unknown, /v1's envelope.
    414: InvalidRequest("The request line is too long."),
    # A Range past the end of an image nginx serves: the error page has none of its headers.
    416: RangeNotSatisfiable(),
    500: GoodeyeError(),
    502: ServiceUnavailable("The application server is unavailable; retry shortly."),
    503: ServiceUnavailable("Service unavailable; retry shortly."),
    504: ServiceUnavailable("The application server timed out; retry shortly."),
}


# Files the processes create are readable by the app's group at most (goodeye/files.py).
PROCESS_UMASK = 0o027
# nginx's kept decisions of the check, under the run dir.
DECISIONS_DIR = "nginx-decisions"
SOCKET_UMASK = "0o117"


class StackError(RuntimeError):
    """A part of the stack could not start."""


def find_nginx():
    """The nginx binary, or StackError saying how to install it."""
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if path is None:
        raise StackError("nginx is not installed: install it (Debian/Ubuntu: apt-get install -y nginx).")
    return path


def _resolvers(path="/etc/resolv.conf"):
    """The nameservers of resolv.conf, as nginx's `resolver` directive spells them."""
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return ""
    servers = [line.split()[1] for line in lines if line.startswith("nameserver") and len(line.split()) > 1]
    return " ".join(f"[{server}]" if ":" in server else server for server in servers)


def _s3_nginx(settings):
    """What the S3 internal location needs, or None with another store."""
    if settings.storage != "s3":
        return None
    ca_files = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
    return {
        "cache_max_size": settings.s3_cache_max_size,
        "timeout": settings.s3_timeout_seconds,
        "resolvers": _resolvers(),
        "ca_file": next((path for path in ca_files if os.path.exists(path)), None),
    }


def _console_nginx(settings):
    """What nginx needs to serve the console's static files, or None when Flask serves them."""
    if settings.accel != "nginx":
        return None
    return {
        "static_dir": console.STATIC_DIR,
        "version": console.asset_version(),
        "placeholder": console.VERSION_PLACEHOLDER,
        "media_types": console.MEDIA_TYPES,
        "text_media_types": console.TEXT_MEDIA_TYPES,
        "headers": console.SECURITY_HEADERS,
        "revalidate": console.REVALIDATE,
        "immutable": console.IMMUTABLE,
        "favicon_cache": console.FAVICON_CACHE,
    }


# nginx closes idle upstream connections well before gunicorn would (see the upstream block
# in goodeye/nginx/goodeye.conf.j2), so a request never meets a connection gunicorn is closing.
UPSTREAM_KEEPALIVE_SECONDS = 30
GUNICORN_KEEPALIVE_SECONDS = UPSTREAM_KEEPALIVE_SECONDS * 2
APP_SOCKET, SERVE_SOCKET = "gunicorn.sock", "gunicorn-serve.sock"


def _error_pages():
    """Each status's error page body in the /v1 envelope and, but for 414, the /cdn one."""
    def as_json(envelope):
        return json.dumps(envelope, separators=(",", ":"))
    return {
        status: {"v1": as_json(v1_envelope(error)), "cdn": None if status == 414 else as_json(cdn_envelope(error))}
        for status, error in NGINX_ERRORS.items()
    }


def _laid_out(text):
    """nginx configuration indented by its braces, whatever the template's macros and includes left."""
    lines, depth = [], 0
    for line in (raw.strip() for raw in text.splitlines()):
        depth -= line.startswith("}")
        # One blank line at most, and none just inside a block.
        if line or (lines and lines[-1] and not lines[-1].endswith("{")):
            lines.append("    " * depth + line if line else "")
        if line == "}" and len(lines) > 1 and not lines[-2]:
            del lines[-2]
        depth += line.endswith("{")
    return "\n".join(lines) + "\n"


def render_nginx_config(settings):
    """The nginx configuration for these settings, as text."""
    return _laid_out(_NGINX_TEMPLATES.get_template("goodeye.conf.j2").render(
        user="root" if os.geteuid() == 0 else None,
        nginx_workers=max(1, os.cpu_count() or 1),
        run_dir=settings.run_dir,
        decisions_dir=os.path.join(settings.run_dir, DECISIONS_DIR),
        socket=os.path.join(settings.run_dir, APP_SOCKET),
        serve_socket=os.path.join(settings.run_dir, SERVE_SOCKET),
        listen_host=settings.listen_host,
        port=settings.port,
        trusted_proxies=settings.trusted_proxies,
        blob_dir=settings.blob_dir,
        link_dir=settings.link_dir,
        fast_path=settings.accel == "nginx",
        s3=_s3_nginx(settings),
        console=_console_nginx(settings),
        # Room for multipart framing and base64 (4/3) around the largest image.
        client_max_body_size=settings.max_upload_bytes * 4 // 3 + 1024 * 1024,
        proxy_read_timeout=max(60, settings.openai_timeout_seconds + 30),
        upstream_keepalive_seconds=UPSTREAM_KEEPALIVE_SECONDS,
        access_log=_log_file(settings, "nginx-access.log") if settings.access_log else None,
        error_log=_log_file(settings, "nginx-error.log", stream="stderr"),
        status_socket=nginx_status_socket(settings),
        error_pages=_error_pages(),
    ))


def _check_port_free(host, port):
    """StackError when something already listens on host:port.

    Another server there (another Goodeye, say) would answer the readiness probe
    meant for this stack's nginx, which is still retrying its bind, and the stack
    would be taken for ready.
    """
    family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as probe:
        # As nginx binds: connections of an earlier run left in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise StackError(f"{host}:{port} is in use ({exc.strerror}); set GOODEYE_PORT to a free port") from None


def _log_file(settings, name, stream="/dev/stdout"):
    """Where nginx writes a log: the file under run/, or the stack's own output with GOODEYE_LOG_TO=stdout."""
    return stream if settings.log_to == "stdout" else os.path.join(settings.run_dir, name)


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=2)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def _unix_status(socket_path, path):
    """The status of GET `path` on a gunicorn unix socket (no nginx reaches the serving pool's /readyz)."""
    connection = _UnixHTTPConnection(socket_path)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    finally:
        connection.close()


class Stack:
    """gunicorn + nginx (+ sweeper) for one data dir and port."""

    def __init__(self, env=None, with_sweeper=True, log_to=None):
        self.env = dict(os.environ if env is None else env)
        self.settings = load_settings(self.env)
        self.with_sweeper = with_sweeper
        self.log_to = log_to
        self.processes = {}

    @property
    def url(self):
        """Where nginx listens."""
        return f"http://{self.settings.listen_host}:{self.settings.port}"

    def _spawn(self, name, argv, env=None):
        if self.log_to is not None:
            out = self.log_to
        elif self.settings.log_to == "stdout":
            out = None  # the children write to this process's own stdout
        else:
            out = open(os.path.join(self.settings.run_dir, f"{name}.log"), "ab")
        self.processes[name] = subprocess.Popen(
            # The children keep this process's working directory, where relative settings
            # (GOODEYE_DATA_DIR=./var) were resolved.
            argv, env=env or self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            umask=PROCESS_UMASK,
        )

    def start(self, timeout=30):
        """Start every part and wait until /readyz answers through nginx."""
        check_serving(self.settings)
        _check_port_free(self.settings.listen_host, self.settings.port)
        for directory in (self.settings.data_dir, self.settings.run_dir, self.settings.blob_dir):
            make_private_dir(directory)
            # Its own directories are narrowed even when an older version made them wider.
            os.chmod(directory, DATA_DIR_MODE)
        nginx = find_nginx()
        conf = os.path.join(self.settings.run_dir, "nginx.conf")
        with open(conf, "w") as handle:
            handle.write(render_nginx_config(self.settings))
        # Decisions of an earlier run may carry headers of other settings (Cache-Control's max-age).
        shutil.rmtree(os.path.join(self.settings.run_dir, DECISIONS_DIR), ignore_errors=True)
        # Counts of an earlier run would be merged into this one's: start empty.
        metrics_dir = os.path.join(self.settings.run_dir, "metrics")
        shutil.rmtree(metrics_dir, ignore_errors=True)
        make_private_dir(metrics_dir)
        self.counted_env = {**self.env, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
        if os.path.exists(nginx_status_socket(self.settings)):
            os.unlink(nginx_status_socket(self.settings))
        self._spawn_gunicorn("gunicorn", APP_SOCKET, self.settings.workers)
        self._spawn_gunicorn("gunicorn-serve", SERVE_SOCKET, self.settings.serve_workers)
        self._spawn("nginx", [nginx, "-e", _log_file(self.settings, "nginx-error.log", stream="stderr"), "-c", conf])
        if self.settings.keeps_node_copies:
            # Not optional: it keeps this node's copies of public S3 blobs in step with every change.
            self._spawn("follower", [sys.executable, "-m", "goodeye.cli", "admin", "follow-links"], env=self.counted_env)
        if self.with_sweeper:
            self._spawn("sweeper", [sys.executable, "-m", "goodeye.cli", "admin", "sweep", "--loop"], env=self.counted_env)
        self.wait_ready(timeout)
        return self

    def _spawn_gunicorn(self, name, socket_name, workers):
        socket_path = os.path.join(self.settings.run_dir, socket_name)
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        self._spawn(
            name,
            [
                sys.executable, "-m", "gunicorn",
                "--config", "python:goodeye.gunicorn_conf",
                "--bind", f"unix:{socket_path}",
                # The socket 0660: a local user who could reach it would bypass nginx
                # (and the X-Real-IP it sets); nginx's workers run as the app's user or root.
                "--umask", SOCKET_UMASK,
                "--workers", str(workers),
                "--threads", str(self.settings.threads),
                "--graceful-timeout", "5",
                "--keep-alive", str(GUNICORN_KEEPALIVE_SECONDS),
                # As long as nginx's own limits (large_client_header_buffers 8k), so a
                # request nginx passes on never meets gunicorn's HTML 414/400.
                "--limit-request-line", "8190",
                "--timeout", str(max(60, self.settings.openai_timeout_seconds + 30)),
                "goodeye.wsgi:app",
            ],
            # glibc gives each thread that allocates its own malloc arena; a worker's threads
            # decoding images at once then hold several fragmented heaps. Two arenas kept the
            # workers' peak RSS ~6 MB lower under uploads and live generations (README "Performance").
            env={"MALLOC_ARENA_MAX": "2", **self.counted_env},
        )

    def wait_ready(self, timeout=30):
        """Poll /readyz through nginx, and on the serving pool's socket, until both answer 200."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise StackError(f"{name} exited with {proc.returncode}; see {self.settings.run_dir}/{name}.log")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as response:
                    if response.status == 200 and _unix_status(os.path.join(self.settings.run_dir, SERVE_SOCKET), "/readyz") == 200:
                        return
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                last = exc
            time.sleep(0.1)
        raise StackError(f"the stack did not become ready in {timeout}s: {last}")

    def stop(self):
        """Stop everything this stack started."""
        for proc in self.processes.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for proc in self.processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.processes.clear()

    def __enter__(self):
        return self.start()

    def __exit__(self, *_exc):
        self.stop()
