"""The database: each app's own, reached by the models through the `database` proxy.

An app's database is its Context's (`Context.database`, built in create_app()), so
two apps in one process each use their own. Models are bound to `database`, which
resolves where it is used: inside a Flask app context (every request, and
`with app.app_context()`) to that app's database; elsewhere (CLI commands, the
sweeper, a thread a request starts) to the one `using()` bound in this thread.

A request checks a connection out of the process's pool before its view and
returns it at teardown (peewee's Flask pattern); the pool's check-out and
check-in cost no round trip (see RetryingMySQLDatabase).
"""

import functools
import os
import random
import time
import weakref
from contextlib import contextmanager
from contextvars import ContextVar
from urllib.parse import unquote, urlparse

from flask import current_app, has_app_context
from peewee import DatabaseProxy, Node, OperationalError, SqliteDatabase
from playhouse.pool import PooledDatabase, PooledMySQLDatabase, PooledSqliteDatabase
from pymysql.constants.SERVER_STATUS import SERVER_STATUS_IN_TRANS

from goodeye.files import SECRET_FILE_MODE, make_private_dir
from goodeye.similar.bands import hamming

# SQLite's name for a database in memory, which no file holds.
MEMORY = ":memory:"

# InnoDB rolled the whole transaction back (deadlock 1213), or a statement timed out
# waiting for a lock (1205); when that happened inside a savepoint, peewee's rollback
# to the savepoint then fails with 1305. The transaction can simply run again.
_RETRYABLE_MYSQL_ERRORS = (1205, 1213, 1305)

# A pooled MySQL connection last checked out longer ago than this is pinged before
# it is handed out again (MySQL drops idle ones); a busier one is handed out as it is.
IDLE_PING_SECONDS = 30

# The database `using()` bound in this thread, for code that runs outside any app.
_bound = ContextVar("goodeye_database", default=None)


class DatabaseUrlError(ValueError):
    """GOODEYE_DATABASE_URL names something we cannot connect to."""


def current_database():
    """The database in use here: the current app's, else the one `using()` bound in this thread (None without either)."""
    if has_app_context():
        # The proxied object, not current_app's attribute lookups: this runs for every query.
        return current_app._get_current_object().extensions["goodeye"].database
    return _bound.get()


@contextmanager
def using(db):
    """Use `db` in this thread where no app is current: CLI commands, the sweeper, a request's own threads, tests."""
    token = _bound.set(db)
    try:
        yield db
    finally:
        _bound.reset(token)


class _CurrentDatabase(DatabaseProxy):
    """peewee's DatabaseProxy, resolved on every use to `current_database()` instead of bound once for the process."""

    __slots__ = ()

    def __init__(self):
        # DatabaseProxy.__init__ would initialize() it: there is nothing to bind here.
        object.__setattr__(self, "_callbacks", [])

    @property
    def obj(self):
        return current_database()

    def initialize(self, obj):
        raise TypeError("the database belongs to the app (Context.database); outside an app, bind one with db.using()")

    def __getattr__(self, attr):
        db = current_database()
        if db is None:
            raise AttributeError(f"no database here for {attr!r}: use it inside the app (app.app_context()) or db.using()")
        return getattr(db, attr)


database = _CurrentDatabase()


def sqlite_path(url):
    """The file a `sqlite:///` URL names ('' when it names none), None for another database."""
    if urlparse(url).scheme != "sqlite":
        return None
    # sqlite:///relative/path or sqlite:////absolute/path, as SQLAlchemy spells them.
    return unquote(url[len("sqlite:///"):])


def make_database(url, pool_size=8):
    """A pooled peewee database for `sqlite:///path` or `mysql://user:pass@host:port/db`."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = sqlite_path(url)
        if not path:
            raise DatabaseUrlError("the SQLite URL names no file")
        if path == MEMORY:
            pool_size = 1  # each connection would have a database of its own
        else:
            make_private_dir(os.path.dirname(os.path.abspath(path)))
            _owner_only(path)
        # IMMEDIATE: a write transaction takes the write lock up front, so two
        # processes never deadlock upgrading a read lock; WAL lets readers go on.
        # Pooled, as MySQL is: opening a SQLite file and setting its pragmas costs
        # about a millisecond, too much for every request.
        db = PooledSqliteDatabase(
            path,
            lock_type="IMMEDIATE",
            pragmas={"journal_mode": "wal", "busy_timeout": 10000, "foreign_keys": 1, "synchronous": "normal"},
            max_connections=pool_size,
            timeout=10,
            check_same_thread=False,  # a pooled connection serves whichever thread checks it out next
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


def open_database(settings):
    """A new database (with its own pool) for the configured URL; nothing is bound to it."""
    # A request holds one connection while it runs, so every worker thread can hold one at once.
    return make_database(settings.database, max(settings.database_pool_size, settings.threads + 1))


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

    Checking a connection out and in costs no round trip, as every request does both:
    peewee's pool pings each connection it hands out and rolls back each one returned
    (pymysql does not say whether a transaction is open), two round trips per request
    taken under the pool's lock. Here a connection is pinged only when it sat idle,
    and rolled back only when the server said a transaction is open.
    """

    def __init__(self, *args, **kwargs):
        # When each connection was last handed out; forgotten with the connection.
        self._checked_out_at = weakref.WeakKeyDictionary()
        super().__init__(*args, **kwargs)

    def execute_sql(self, sql, params=None):
        if self.in_transaction():
            return super().execute_sql(sql, params)
        return _again_on_deadlock(lambda: super(RetryingMySQLDatabase, self).execute_sql(sql, params))

    def _connect(self):
        conn = super()._connect()
        self._checked_out_at[conn] = time.monotonic()
        return conn

    def _is_closed(self, conn):
        if conn.open and time.monotonic() - self._checked_out_at.get(conn, 0.0) < IDLE_PING_SECONDS:
            return False
        return super()._is_closed(conn)

    def _can_reuse(self, conn):
        if not conn.open:
            return False
        if conn.server_status & SERVER_STATUS_IN_TRANS:
            try:
                conn.rollback()
            except Exception:  # a connection that cannot roll back is not handed out again
                return False
        return True


class Param(Node):
    """A named parameter in a Prepared query: rendered as a placeholder, its name kept in peewee's params."""

    def __init__(self, name):
        super().__init__()
        self.name = name

    def __sql__(self, ctx):
        # The column's converter (a field's db_value) is kept to apply to the value each call gives.
        return ctx.value(_Slot(self.name, ctx.state.converter), converter=False)


class _Slot:
    """Where a named value goes in the params peewee returned, and how its column converts it."""

    __slots__ = ("name", "convert")

    def __init__(self, name, convert):
        self.name = name
        self.convert = convert


class _Params:
    """What a Prepared query's builder receives: `p.token` is the parameter named `token`."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return Param(name)


class Prepared:
    """A hot-path query whose SQL is built once per database and run with named values.

    `Prepared(lambda p: Image.select(...).where(Image.token == p.token)).one(token=t)`:
    the builder puts `p.name` where the value named `name` goes; peewee renders each
    as a placeholder and returns them in its params in the SQL's order, so the
    values a call names go to their places whatever order it names them in.
    """

    def __init__(self, build):
        self._build = build
        # database -> (SQL, how to make the params from the call's values, the names it takes)
        self._plans = weakref.WeakKeyDictionary()

    def _plan(self, db):
        sql, params = db.get_sql_context().parse(self._build(_Params()))
        getters = tuple(_getter(value) for value in params)
        names = frozenset(value.name for value in params if isinstance(value, _Slot))
        return sql, getters, names

    def one(self, **values):
        """The first row (a tuple) the query gives for these named values, or None."""
        return self._execute(values).fetchone()

    def all(self, **values):
        """Every row (tuples) the query gives for these named values."""
        return self._execute(values).fetchall()

    def _execute(self, values):
        db = current_database()
        plan = self._plans.get(db)
        if plan is None:
            plan = self._plans[db] = self._plan(db)
        sql, getters, names = plan
        if values.keys() != names:
            raise TypeError(f"this query takes {sorted(names)}, not {sorted(values)}")
        return db.execute_sql(sql, [get(values) for get in getters])


def _getter(value):
    """How one of peewee's params is made from a call's named values."""
    if not isinstance(value, _Slot):
        return lambda _values: value  # a constant of the query itself (a LIMIT, a literal)
    name, convert = value.name, value.convert
    if convert is None:
        return lambda values: values[name]
    return lambda values: convert(values[name])


def is_sqlite():
    """Whether the database in use is SQLite."""
    return isinstance(current_database(), SqliteDatabase)


def for_update(query):
    """Lock the selected rows where the database can (SQLite's write lock already serialises)."""
    return query if is_sqlite() else query.for_update()


def discard_connection():
    """Give up this thread's connection after a database error, and the pool's idle ones: the server may be gone."""
    db = current_database()
    if db is None:
        return
    try:
        if isinstance(db, PooledDatabase):
            db.manual_close()
            # They would each fail a request of their own before a fresh one replaced them.
            db.close_idle()
        else:
            db.close()
    except Exception:  # closing a broken connection may fail too; it is gone either way
        pass


def init_app(app, db):
    """Check a connection out of `db`'s pool for each request and return it at the request's teardown."""

    @app.before_request
    def _connect():
        db.connect(reuse_if_open=True)

    @app.teardown_request
    def _close(_exc):
        if not db.is_closed():
            db.close()
