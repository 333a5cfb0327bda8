"""What a deadlock's victim does on MySQL: it runs again, whole, and leaves nothing of the rolled-back try.

Each test makes a real InnoDB deadlock on purpose: a second connection takes the
locks in the opposite order, and carries more undo log than the code under test,
so InnoDB picks the code under test as the victim. Nothing is timed: the second
connection moves only once the server reports the first one waiting for its lock.
"""

import threading
import time
from urllib.parse import urlparse

import pymysql
import pytest

from goodeye import create_app
from goodeye.config import load_settings
from goodeye.context import current_context
from goodeye.db import database
from goodeye.generation.requests import generation_request, hosting
from goodeye.generation.service import generate_and_host
from goodeye.identity.service import create_org, create_project
from goodeye.migrations import migrate
from goodeye.models import Blob, Generation, Image

BALLAST_ROWS = 200
WAIT_LIMIT_SECONDS = 30


@pytest.fixture()
def mysql_url(database_kind, mysql_databases):
    if database_kind != "mysql":
        pytest.skip("MySQL is not reachable (CI=true fails the run instead)")
    return mysql_databases.create()


@pytest.fixture()
def app_ctx(tmp_path, mysql_url):
    app = create_app(load_settings({"GOODEYE_DATA_DIR": str(tmp_path), "GOODEYE_DATABASE_URL": mysql_url}))
    with app.app_context():
        migrate()
        yield app, current_context()


class Rival:
    """A second connection whose transaction is heavier than the victim's (InnoDB rolls back the lighter one)."""

    def __init__(self, url):
        parsed = urlparse(url)
        self.conn = pymysql.connect(host=parsed.hostname, port=parsed.port, user=parsed.username or "root",
                                    password=parsed.password or "", database=parsed.path.lstrip("/"), autocommit=True)
        self.run("CREATE TABLE IF NOT EXISTS ballast (id INT PRIMARY KEY)")
        self.run("BEGIN")
        self.run("INSERT INTO ballast (id) VALUES " + ",".join(f"({i})" for i in range(BALLAST_ROWS)))

    def run(self, sql, *params):
        with self.conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def wait_until_someone_waits(self):
        """Return once another transaction waits for a lock (it will wait until this one moves)."""
        deadline = time.monotonic() + WAIT_LIMIT_SECONDS
        while not self.run("SELECT 1 FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'"):
            assert time.monotonic() < deadline, "the code under test never waited for the rival's lock"
            # InnoDB refreshes this table only when it was last read over 0.1 s ago:
            # polling faster would read the same stale rows for ever.
            time.sleep(0.15)

    def close(self):
        self.run("COMMIT")
        self.conn.close()


def _in_thread(fn):
    """Start fn in a thread; the returned function joins it and gives its result or raises its exception."""
    outcome = {}

    def target():
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # handed to the test's thread, which reports it
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()

    def join():
        thread.join(WAIT_LIMIT_SECONDS)
        assert not thread.is_alive(), "the code under test did not finish"
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    return join


def _with_app_context(app, fn):
    def run():
        with app.app_context():
            try:
                return fn()
            finally:
                database.close()

    return run


def test_a_lone_statement_chosen_as_victim_runs_again(app_ctx, mysql_url):
    app, _ctx = app_ctx
    database.execute_sql("CREATE TABLE pair (id INT PRIMARY KEY, v INT NOT NULL)")
    database.execute_sql("INSERT INTO pair VALUES (1, 0), (2, 0)")
    rival = Rival(mysql_url)
    try:
        rival.run("UPDATE pair SET v = v + 10 WHERE id = 2")
        # Outside a transaction: locks row 1, then waits for row 2, which the rival holds.
        done = _in_thread(_with_app_context(app, lambda: database.execute_sql("UPDATE pair SET v = v + 1 ORDER BY id")))
        rival.wait_until_someone_waits()
        rival.run("UPDATE pair SET v = v + 10 WHERE id = 1")  # closes the cycle; the lone UPDATE is the victim
    finally:
        rival.close()
    done()
    assert database.execute_sql("SELECT v FROM pair ORDER BY id").fetchall() == ((11,), (11,))


def test_a_generation_chosen_as_victim_hosts_its_image_once(app_ctx, mysql_url):
    app, ctx = app_ctx
    create_org("acme")
    first, second = create_project("acme/first")[0], create_project("acme/second")[0]
    request = generation_request(ctx.generators.get("builtin"), prompt="a lighthouse", seed=7)
    placement = hosting("public")
    earlier = generate_and_host(ctx, request, project_id=first.id, placement=placement).hosted[0]
    rival = Rival(mysql_url)
    try:
        rival.run("SELECT id FROM project WHERE id = %s FOR UPDATE", second.id)
        # The generation takes the blob row (the same bytes as before), then waits for the project row.
        done = _in_thread(_with_app_context(app, lambda: generate_and_host(ctx, request, project_id=second.id, placement=placement)))
        rival.wait_until_someone_waits()
        rival.run("SELECT sha256 FROM `blob` WHERE sha256 = %s FOR UPDATE", earlier.sha256)
    finally:
        rival.close()
    result = done()

    image = result.hosted[0]
    assert image is not None and image.sha256 == earlier.sha256
    assert [row.id for row in Image.select().where(Image.project == second.id)] == [image.id]
    assert Generation.select().where(Generation.project == second.id).count() == 1
    assert Blob.get(Blob.sha256 == earlier.sha256).refs == 2
    # The rolled-back try left no fast-path link behind: only the two committed images have one.
    assert sorted(ctx.links.iter_tokens()) == sorted([earlier.token, image.token])
