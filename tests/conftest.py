"""Fixtures: real stacks (nginx + gunicorn + MySQL or SQLite), owners with keys, an HTTP client.

With CI=true every service the suite needs must be there: a missing MySQL
fails the run instead of quietly falling back to SQLite.
"""

import os
import re
import secrets
import shutil
import socket
import tempfile
from urllib.parse import urlparse, urlsplit

import pymysql
import pytest
import requests
from click.testing import CliRunner

from goodeye import create_app
from goodeye.cli import main as cli_main
from goodeye.config import load_settings
from goodeye.context import current_context
from goodeye.db import open_database, using
from goodeye.identity import service as identity
from goodeye.migrations import migrate
from goodeye.stack import Stack
from goodeye.storage import create_storage
from tests.openapi_check import OpenAPIChecker
from tests.s3_server import CREDENTIALS as S3_CREDENTIALS, S3Server

IN_CI = os.environ.get("CI") == "true"
MYSQL_ADMIN_URL = os.environ.get("GOODEYE_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test")


CONTRACT = OpenAPIChecker()
STACK_ORIGINS = set()
# (GOODEYE_ACCEL, GOODEYE_STORAGE) of the `stack` fixture: each store through nginx, and Flask streaming once.
SERVING_MODES = [("nginx", "local"), ("off", "local"), ("nginx", "s3")]
# The databases RunningStack.new_owner keeps a connection to (closed after each module).
OWNER_DATABASES = []
# The console, its assets, the API docs and the document itself are web pages for people,
# not operations of the API: goodeye/openapi.yaml does not describe them.
CONSOLE_PATHS = re.compile(r"/(docs|openapi\.json|favicon\.ico|console/.*)?")


def pytest_collection_modifyitems(config, items):
    """Tests that start Goodeye (nginx, gunicorn) or a browser are slow: the inner loop (-m "not slow") runs
    in-process tests. A `one_mode` test runs on the first serving mode only."""
    kept, dropped = [], []
    for item in items:
        if item.get_closest_marker("browser") or "stack_root" in item.fixturenames:
            item.add_marker(pytest.mark.slow)
        callspec = getattr(item, "callspec", None)
        mode = callspec.params.get("stack") if callspec else None
        if item.get_closest_marker("one_mode") and mode not in (None, SERVING_MODES[0]):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def free_port():
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _mysql_admin():
    parsed = urlparse(MYSQL_ADMIN_URL)
    return pymysql.connect(
        host=parsed.hostname, port=parsed.port or 3306, user=parsed.username or "root",
        password=parsed.password or "", connect_timeout=3, autocommit=True,
    )


def mysql_available():
    """Whether the test MySQL server answers."""
    try:
        _mysql_admin().close()
        return True
    except pymysql.MySQLError:
        return False


@pytest.fixture(scope="session")
def database_kind():
    """'mysql' when MySQL answers (required with CI=true), else 'sqlite'."""
    if mysql_available():
        return "mysql"
    if IN_CI:
        pytest.fail(f"CI=true but MySQL at {MYSQL_ADMIN_URL} is not reachable")
    print("\nMySQL is not reachable: the suite runs on SQLite.")
    return "sqlite"


class MySQLDatabases:
    """Creates throwaway databases on the test server and drops them afterwards."""

    def __init__(self):
        self.names = []

    def create(self):
        name = f"goodeye_t_{secrets.token_hex(6)}"
        conn = _mysql_admin()
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        conn.close()
        self.names.append(name)
        parsed = urlparse(MYSQL_ADMIN_URL)
        auth = parsed.username or "root"
        if parsed.password:
            auth += f":{parsed.password}"
        return f"mysql://{auth}@{parsed.hostname}:{parsed.port or 3306}/{name}"

    def drop_all(self):
        conn = _mysql_admin()
        with conn.cursor() as cur:
            for name in self.names:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@pytest.fixture(scope="session")
def mysql_databases(database_kind):
    databases = MySQLDatabases()
    yield databases
    if database_kind == "mysql":
        databases.drop_all()


class RunningStack:
    """A started Stack plus the helpers tests use with it."""

    def __init__(self, stack, data_dir):
        self.stack = stack
        self.env = stack.env
        self.settings = stack.settings
        self.url = stack.url
        self.data_dir = data_dir
        self.storage = create_storage(self.settings)
        self._database = None

    def blob_keys(self):
        """The SHA-256 of every blob in this stack's store (local dir or bucket), sorted."""
        return sorted(sha256 for sha256, _modified in self.storage.iter_blobs())

    def admin(self, *args):
        """Run `goodeye admin ARGS` in-process against this stack's database; return the result."""
        result = CliRunner().invoke(cli_main, ["admin", *args], env=self.env, catch_exceptions=False)
        return result

    def new_owner(self):
        """A fresh org/project with a key: an Owner.

        Made by the identity services `goodeye admin` calls, on a connection kept
        until the test module ends: most tests make owners, and a CLI run per step
        would build an app and connect three times (a MariaDB connect here takes
        about 20 ms).
        """
        org = f"org-{secrets.token_hex(4)}"
        project = f"{org}/proj"
        if self._database is None:
            self._database = open_database(self.settings)
            OWNER_DATABASES.append(self._database)
        with using(self._database), self._database.connection_context():
            identity.create_org(org)
            row, key = identity.create_key(identity.create_project(project)[0])
        return Owner(self, project, key, row.id)


class Owner:
    """A project and one of its keys."""

    def __init__(self, stack, project, key, key_id):
        self.stack = stack
        self.project = project
        self.key = key
        self.key_id = key_id

    @property
    def headers(self):
        return {"Authorization": f"Bearer {self.key}"}


def start_stack(tmp_root, mysql_databases, database_kind, database_url=None, **env_overrides):
    """Start nginx + gunicorn on a fresh data dir (and a fresh MySQL database when there is one).

    `database_url` (another stack's `settings.database`) makes this stack share that database.
    """
    data_dir = tempfile.mkdtemp(prefix="stack-", dir=tmp_root)
    env = dict(os.environ)
    env.update(
        GOODEYE_DATA_DIR=data_dir,
        GOODEYE_PORT=str(free_port()),
        GOODEYE_WORKERS="2",
        GOODEYE_THREADS="4",
        # One process is plenty for a test's reads, and some seventy stacks start in a run.
        GOODEYE_SERVE_WORKERS="1",
    )
    if database_url:
        env["GOODEYE_DATABASE_URL"] = database_url
    elif database_kind == "mysql":
        env["GOODEYE_DATABASE_URL"] = mysql_databases.create()
    env.update({key: str(value) for key, value in env_overrides.items()})
    env["GOODEYE_PUBLIC_URL"] = f"http://127.0.0.1:{env['GOODEYE_PORT']}"
    running = RunningStack(Stack(env, with_sweeper=False), data_dir)
    STACK_ORIGINS.add(running.url)
    assert running.admin("db", "init").exit_code == 0
    running.stack.start()
    return running


@pytest.fixture(scope="session")
def stack_root():
    root = tempfile.mkdtemp(prefix="goodeye-tests-")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on loopback for the whole session (each stack gets its own bucket)."""
    # Stores built in this process (RunningStack.storage) find credentials the
    # standard boto3 way, like the stacks do.
    os.environ.update(S3_CREDENTIALS)
    server = S3Server().start()
    yield server
    if server.running:
        server.stop()


def s3_env(s3_server):
    """The settings of a stack on a fresh bucket of the session's S3 server."""
    return s3_server.env(s3_server.create_bucket(f"goodeye-{secrets.token_hex(6)}"))


@pytest.fixture(
    scope="session",
    # Each store through nginx, and Flask streaming once; the S3 fault tests
    # cover Flask streaming from S3.
    params=SERVING_MODES,
    ids=["nginx-local", "off-local", "nginx-s3"],
)
def stack(request, stack_root, mysql_databases, database_kind):
    """A running stack per serving mode (nginx streams blobs, or Flask does) and blob store (local dir or S3)."""
    accel, storage = request.param
    env = s3_env(request.getfixturevalue("s3_server")) if storage == "s3" else {}
    running = start_stack(stack_root, mysql_databases, database_kind, GOODEYE_ACCEL=accel, **env)
    yield running
    running.stack.stop()


@pytest.fixture(scope="session")
def plain_stack(stack_root, mysql_databases, database_kind):
    """One default stack (nginx, local blobs) for clients whose tests do not depend on the serving mode."""
    running = start_stack(stack_root, mysql_databases, database_kind)
    yield running
    running.stack.stop()


@pytest.fixture(scope="module")
def cli_stack(plain_stack):
    """The CLI and MCP do not depend on the serving mode: the default stack is enough."""
    return plain_stack


@pytest.fixture(scope="module", autouse=True)
def owner_connections_closed_after_each_module():
    """The connections new_owner kept go back to the server when a test module ends."""
    yield
    for database in OWNER_DATABASES:
        database.close_all()


@pytest.fixture()
def owner(stack):
    return stack.new_owner()


@pytest.fixture()
def other_owner(stack):
    return stack.new_owner()


@pytest.fixture()
def http():
    """A plain requests session (no credentials)."""
    with requests.Session() as session:
        yield session


def _contract_problem(response):
    """Why a stack's response breaks the OpenAPI document, or None."""
    if CONSOLE_PATHS.fullmatch(urlsplit(response.request.path_url).path):
        return None
    try:
        CONTRACT.match(response.request.path_url)
    except AssertionError:
        # Paths the document does not name (probes of unknown routes) may
        # only get an error envelope.
        body = response.json() if response.headers.get("Content-Type", "").startswith("application/json") else None
        if response.status_code in (400, 404, 405) and isinstance(body, dict) and "error" in body:
            return None
        return f"{response.request.method} {response.request.path_url} -> {response.status_code}: undocumented path"
    try:
        CONTRACT.check_response(response)
    except AssertionError as exc:
        return str(exc)
    return None


@pytest.fixture(autouse=True)
def responses_hold_to_the_openapi_document(monkeypatch):
    """Every response a test gets from a Goodeye stack is checked against goodeye/openapi.yaml."""
    seen = []
    original_send = requests.Session.send

    def send(session, request, **kwargs):
        response = original_send(session, request, **kwargs)
        if any(response.url.startswith(origin) for origin in STACK_ORIGINS):
            seen.append(response)
        return response

    monkeypatch.setattr(requests.Session, "send", send)
    yield
    problems = [problem for problem in map(_contract_problem, seen) if problem]
    assert not problems, "responses that break the OpenAPI document:\n" + "\n".join(problems)


@pytest.fixture()
def ctx(tmp_path):
    """A service-level test's Context: an app on a fresh SQLite data dir, migrated, inside its app context."""
    app = create_app(load_settings({"GOODEYE_DATA_DIR": str(tmp_path)}))
    with app.app_context():
        migrate()
        yield current_context()
