"""The one way to the database: connections lent from the process's pool, or dedicated ones.

- :func:`connect` / :func:`aconnect`: a connection to the platform database, lent from the process's
  pool (:mod:`cityos.platform.db.pool`) and given back when the ``with`` block ends. A call naming the
  platform database's URL gets a pooled one too; a call naming another database (the superuser's, CKAN's,
  a test database) gets a dedicated connection, closed at the end of the block.
- :func:`dedicated`: a connection of its own, for a session that must outlive a request or hold state
  (LISTEN, a session-level advisory lock, the ingest writer's long COPY transactions, migrations).

No other module calls ``psycopg.connect`` (``tests/unit/test_one_way_to_the_database.py``).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager

import psycopg

from cityos.platform.db import pool as pools
from cityos.platform.settings import Settings, get_settings


def _pooled(url: str | None, settings: Settings | None) -> pools.Database | None:
    """The process's pool when ``url``/``settings`` name its database (or nothing is named), else None."""
    database = pools.current()
    if settings is not None and url is None:
        url = settings.database_url
    if url is None or url == database.url:
        return database
    return None


def dedicated(url: str | None = None, *, autocommit: bool = False, timeout: float = 5.0,
              settings: Settings | None = None, application_name: str = pools.APPLICATION_NAME
              ) -> psycopg.Connection:
    """A new connection of its own to ``url`` (default: the platform database from the settings)."""
    if url is None:
        url = (settings or get_settings()).database_url
    if not url:
        raise RuntimeError("CITYOS_DATABASE_URL is not set and no local runtime is provisioned; run `cityos up`")
    return psycopg.connect(url, autocommit=autocommit, connect_timeout=max(1, int(timeout)),
                           application_name=application_name)


def connect(url: str | None = None, *, autocommit: bool = False, timeout: float = 5.0,
            settings: Settings | None = None) -> AbstractContextManager[psycopg.Connection]:
    """Use as ``with connect() as conn``: a pooled connection to the platform database (``timeout``: the
    longest wait for a free one), or a dedicated connection when ``url`` names another database."""
    database = _pooled(url, settings)
    if database is None:
        return dedicated(url, autocommit=autocommit, timeout=timeout, settings=settings)
    return database.connection(autocommit=autocommit, timeout=timeout)


def aconnect(url: str | None = None, *, autocommit: bool = False, timeout: float = 5.0
             ) -> AbstractAsyncContextManager[psycopg.AsyncConnection]:
    """Use as ``async with aconnect() as conn``: :func:`connect` for async routes (the async pool)."""
    database = _pooled(url, None)
    if database is not None:
        return database.aconnection(autocommit=autocommit, timeout=timeout)
    return _dedicated_async(url or "", autocommit, timeout)


@asynccontextmanager
async def _dedicated_async(url: str, autocommit: bool, timeout: float):
    conn = await psycopg.AsyncConnection.connect(url, autocommit=autocommit, connect_timeout=max(1, int(timeout)),
                                                 application_name=pools.APPLICATION_NAME)
    async with conn:
        yield conn
