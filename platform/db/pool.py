"""One pool of connections to the platform database per process (psycopg_pool).

A :class:`Database` is built from a settings object and holds a synchronous pool (sync routes run in
threads, CLI commands, the ingest process's lookups) and, opened inside an event loop, an asynchronous
pool (async routes: token look-ups and audit rows). Sizes and the wait for a free connection are
settings (``CITYOS_DB_POOL_MIN``, ``CITYOS_DB_POOL_MAX``, ``CITYOS_DB_POOL_TIMEOUT_S``).

Who owns the process's pool:
- the API: :func:`cityos.platform.api.app.create_app` builds one from the app's settings, installs it
  for its process while it runs (lifespan) and closes it at shutdown;
- every other process (a CLI command, ``cityos ingest``): :func:`current` builds one from the
  process-wide settings on first use and closes it at exit.

Connections that must keep a session of their own (LISTEN, a session-level advisory lock, the ingest
writer's COPY transaction, migrations) are not lent from the pool: they come from
:func:`cityos.platform.db.connection.dedicated`.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import psycopg
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from cityos.platform.settings import Settings, get_settings

APPLICATION_NAME = "cityos"


#: A connection given back less than this many seconds ago is lent again without a round trip to check it.
CHECK_AFTER_IDLE_S = 1.0
_given_back: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _stamp(conn: psycopg.Connection) -> None:
    """When ``conn`` was given back to the pool (the pool's ``reset`` hook)."""
    _given_back[conn] = time.monotonic()


def _check_if_idle(conn: psycopg.Connection) -> None:
    """Check a connection as it is lent when it sat in the pool: after a database restart the pool holds closed
    ones, and a request must get a new one, not "terminating connection". One just given back (a busy API
    lends the same few again and again) is not checked: that round trip was a tenth of a series request."""
    if time.monotonic() - _given_back.get(conn, 0.0) >= CHECK_AFTER_IDLE_S:
        ConnectionPool.check_connection(conn)


async def _astamp(conn: psycopg.AsyncConnection) -> None:
    _given_back[conn] = time.monotonic()


async def _acheck_if_idle(conn: psycopg.AsyncConnection) -> None:
    if time.monotonic() - _given_back.get(conn, 0.0) >= CHECK_AFTER_IDLE_S:
        await AsyncConnectionPool.check_connection(conn)


def _require_url(url: str) -> str:
    if not url:
        raise RuntimeError("CITYOS_DATABASE_URL is not set and no local runtime is provisioned; run `cityos up`")
    return url


class Database:
    """The pooled connections of one process to the database of ``settings``."""

    def __init__(self, settings: Settings, *, name: str = APPLICATION_NAME):
        self.settings = settings
        self.url = settings.database_url
        self.name = name
        self._sync: ConnectionPool | None = None
        self._async: AsyncConnectionPool | None = None
        self._lock = threading.Lock()

    def _kwargs(self) -> dict:
        return {"application_name": self.name, "connect_timeout": 5}

    def pool(self) -> ConnectionPool:
        """The synchronous pool (opened on first use)."""
        if self._sync is None:
            with self._lock:
                if self._sync is None:
                    self._sync = ConnectionPool(
                        _require_url(self.url), min_size=self.settings.db_pool_min,
                        max_size=max(self.settings.db_pool_min, self.settings.db_pool_max),
                        timeout=self.settings.db_pool_timeout_s, kwargs=self._kwargs(),
                        check=_check_if_idle, reset=_stamp, name=f"{self.name}-sync", open=True)
        return self._sync

    @contextmanager
    def connection(self, *, autocommit: bool = False, timeout: float | None = None
                   ) -> Iterator[psycopg.Connection]:
        """A connection lent from the pool: committed (or, after an exception, rolled back) and given
        back when the block ends, like ``with psycopg.connect(...)`` without the connect."""
        with self.pool().connection(timeout=timeout) as conn:
            conn.autocommit = autocommit
            yield conn

    async def open_async(self) -> AsyncConnectionPool:
        """The asynchronous pool, opened in the running event loop (once)."""
        if self._async is None:
            pool = AsyncConnectionPool(
                _require_url(self.url), min_size=self.settings.db_pool_min,
                max_size=max(self.settings.db_pool_min, self.settings.db_pool_max),
                timeout=self.settings.db_pool_timeout_s, kwargs=self._kwargs(), name=f"{self.name}-async",
                check=_acheck_if_idle, reset=_astamp, open=False)
            await pool.open()
            self._async = pool
        return self._async

    @asynccontextmanager
    async def aconnection(self, *, autocommit: bool = False, timeout: float | None = None
                          ) -> AsyncIterator[psycopg.AsyncConnection]:
        """An asynchronous connection lent from the async pool (see :meth:`connection`)."""
        pool = await self.open_async()
        async with pool.connection(timeout=timeout) as conn:
            await conn.set_autocommit(autocommit)
            yield conn

    def close(self) -> None:
        """Close the synchronous pool (the async one: :meth:`aclose`)."""
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def aclose(self) -> None:
        """Close both pools."""
        if self._async is not None:
            await self._async.close()
            self._async = None
        self.close()

    def stats(self) -> dict[str, dict[str, int]]:
        """The pools' counters (size, idle, waiting, ...), for diagnostics."""
        out = {}
        if self._sync is not None:
            out["sync"] = self._sync.get_stats()
        if self._async is not None:
            out["async"] = self._async.get_stats()
        return out


_installed: Database | None = None
_lazy: Database | None = None
_lock = threading.Lock()


def _close_lazy() -> None:
    """At exit: close the pool a CLI process built on first use (if any)."""
    if _lazy is not None:
        _lazy.close()


def install(database: Database | None) -> None:
    """Make ``database`` the process's pool (the API does it while it runs); None: forget it."""
    global _installed
    with _lock:
        _installed = database


def current() -> Database:
    """The process's pool: the installed one, else one built from the process-wide settings (closed at exit).

    The latter follows the settings: when they name another database (``get_settings.cache_clear()`` after
    the environment changed, as tests and in-process CLI calls do), its pool is closed and a new one built."""
    global _lazy
    if _installed is not None:
        return _installed
    settings = get_settings()
    database = _lazy
    if database is None or database.settings is not settings:
        with _lock:
            if _lazy is None or _lazy.settings is not settings:
                if _lazy is not None:
                    _lazy.close()
                else:
                    atexit.register(_close_lazy)
                _lazy = Database(settings)
            database = _lazy
    return database
