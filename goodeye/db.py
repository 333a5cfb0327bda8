"""The database: an unbound proxy, bound once by `init_database()` from the settings."""

import functools
import os
import random
import threading
import time
from urllib.parse import unquote, urlparse

from peewee import DatabaseProxy, OperationalError, SqliteDatabase
from playhouse.pool import PooledMySQLDatabase

from goodeye.files import SECRET_FILE_MODE, make_private_dir
from goodeye.similar.bands import hamming

database = DatabaseProxy()

# SQLite's name for a database in memory, which no file holds.
MEMORY = ":memory:"

# InnoDB rolled the whole transaction back (deadlock 1213), or a statement timed out
# waiting for a lock (1205); when that happened inside a savepoint, peewee's rollback
# to the savepoint then fails with 1305. The transaction can simply run again.
_RETRYABLE_MYSQL_ERRORS = (1205, 1213, 1305)


class DatabaseUrlError(ValueError):
    """GOODEYE_DATABASE_URL names something we cannot connect to."""


def sqlite_path(url):
    """The file a `sqlite:///` URL names ('' when it names none), None for another database."""
    if urlparse(url).scheme != "sqlite":
        return None
    # sqlite:///relative/path or sqlite:////absolute/path, as SQLAlchemy spells them.
    return unquote(url[len("sqlite:///"):])


def make_database(url, pool_size=8):
    """A peewee database for `sqlite:///path` or `mysql://user:pass@host:port/db`."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = sqlite_path(url)
        if not path:
            raise DatabaseUrlError("the SQLite URL names no file")
        if path != MEMORY:
            make_private_dir(os.path.dirname(os.path.abspath(path)))
            _owner_only(path)
        # IMMEDIATE: a write transaction takes the write lock up front, so two
        # processes never deadlock upgrading a read lock; WAL lets readers go on.
        db = SqliteDatabase(
            path,
            lock_type="IMMEDIATE",
            pragmas={"journal_mode": "wal", "busy_timeout": 10000, "foreign_keys": 1, "synchronous": "normal"},
        )
        # MySQL's BIT_COUNT(a ^ b) for the similar-image search; SQLite has neither.
        db.register_function(hamming, "hamming", 2, deterministic=True)
        return db
    if parsed.scheme in ("mysql", "mysql+pool"):
        name = parsed.path.lstrip("/")
        if not name:
            raise DatabaseUrlError("the MySQL URL names no database")
        return RetryingMySQLDatabase(
            name,
            user=unquote(parsed.username or "root"),
            password=unquote(parsed.password or ""),
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 3306,
            charset="utf8mb4",
            max_connections=pool_size,
            stale_timeout=300,
            timeout=10,
            connect_timeout=5,
        )
    raise DatabaseUrlError(f"unsupported database URL scheme {parsed.scheme!r} (use sqlite:/// or mysql://)")


def _owner_only(path):
    """Create the SQLite file readable by its owner alone (it holds the token secret and key hashes)."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, SECRET_FILE_MODE))
    except PermissionError:
        return  # another user's file we may only read: SQLite says what it can do with it
    # SQLite gives the -wal and -shm files it creates the mode of the database file;
    # ones an older version left world-readable are narrowed too.
    for name in (path, f"{path}-wal", f"{path}-shm"):
        try:
            os.chmod(name, SECRET_FILE_MODE)
        except (FileNotFoundError, PermissionError):  # absent, or another user's file to keep as it is
            pass


def init_database(settings):
    """Bind the proxy to the configured database and return it."""
    # Every worker thread keeps a connection, so the pool holds at least that many.
    db = make_database(settings.database, max(settings.database_pool_size, settings.threads + 1))
    database.initialize(db)
    return db


def _again_on_deadlock(call, attempts=5):
    """call() again, after a short jittered pause, when MySQL rolled back what it did."""
    for attempt in range(attempts):
        try:
            return call()
        except OperationalError as exc:
            if attempt + 1 == attempts or not exc.args or exc.args[0] not in _RETRYABLE_MYSQL_ERRORS:
                raise
            # Jitter, so the transactions that deadlocked do not meet again.
            time.sleep(random.uniform(0, 0.02 * 2**attempt))


def retry_on_deadlock(fn):
    """Decorate a function whose body is one transaction: run it again when MySQL rolled it back.

    Called inside another transaction, it runs once: a deadlock rolled back the
    whole outer transaction, so only its owner can run it again.
    """

    @functools.wraps(fn)
    def run(*args, **kwargs):
        if database.in_transaction():
            return fn(*args, **kwargs)
        return _again_on_deadlock(lambda: fn(*args, **kwargs))

    return run


class RetryingMySQLDatabase(PooledMySQLDatabase):
    """Pooled MySQL whose statements outside a transaction run again when InnoDB rolled them back.

    A lone statement (a claim's INSERT, a counter's UPDATE) can be a deadlock's
    victim as much as a transaction can; it took no effect, so running it again is safe.
    """

    def execute_sql(self, sql, params=None):
        if self.in_transaction():
            return super().execute_sql(sql, params)
        return _again_on_deadlock(lambda: super(RetryingMySQLDatabase, self).execute_sql(sql, params))


_sql_cache = {}


def fetch_one(name, build, *params):
    """Run a hot-path query whose SQL is built once per database: `build()` returns a peewee query
    with placeholder values in place of `params`, in the same order."""
    key = (id(database.obj), name)
    sql = _sql_cache.get(key)
    if sql is None:
        sql = _sql_cache[key] = build().sql()[0]
    return database.execute_sql(sql, params).fetchone()


def is_sqlite():
    """Whether the bound database is SQLite."""
    return isinstance(database.obj, SqliteDatabase)


def for_update(query):
    """Lock the selected rows where the database can (SQLite's write lock already serialises)."""
    return query if is_sqlite() else query.for_update()


# A connection idle longer than this is pinged before use (MySQL drops idle ones).
IDLE_PING_SECONDS = 30
_last_used = threading.local()


def discard_connection():
    """Give up this thread's connection after a database error; the next request opens a fresh one."""
    if not database.is_closed():
        try:
            database.close()
        except Exception:  # closing a broken connection may fail too; it is gone either way
            pass


def _ensure_connection():
    if database.is_closed():
        database.connect()
    elif not is_sqlite() and time.monotonic() - getattr(_last_used, "at", 0.0) > IDLE_PING_SECONDS:
        try:
            database.connection().ping(False)
        except Exception:
            discard_connection()
            database.connect()
    _last_used.at = time.monotonic()


def init_app(app):
    """Keep one connection per worker thread across requests; ping it only after it sat idle.

    A ping or a pool checkout per request would cost a round trip on the
    serving path's lightweight check; a connection that fails mid-request is
    discarded by the error handler (http.py).
    """
    app.before_request(_ensure_connection)
