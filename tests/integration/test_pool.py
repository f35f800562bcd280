"""One pool per process: the API lends its requests connections from a pool sized by its settings instead
of opening one per request; other processes get theirs from the same one place."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg

from cityos.platform.db import pool as pools
from cityos.platform.db.connection import connect
from cityos.platform.settings import load_settings
from helpers import api_server


def _sessions(database_url: str) -> int:
    """Sessions ever established to the test database (PostgreSQL's own counter, flushed within a second)."""
    time.sleep(1.5)
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute("select sessions from pg_stat_database where datname = current_database()"
                            ).fetchone()[0] - 1  # not this one


def test_the_api_opens_no_connection_per_request(database_url, tmp_path):
    env = {"CITYOS_DATABASE_URL": database_url, "CITYOS_HOME": str(tmp_path), "CITYOS_DB_POOL_MIN": "1",
           "CITYOS_DB_POOL_MAX": "3", "CITYOS_MAINTENANCE_INTERVAL_S": "3600"}
    with api_server(env) as base:
        httpx.get(f"{base}/api/v1/sensors", timeout=30).raise_for_status()  # pools and listeners are up
        before = _sessions(database_url)
        with ThreadPoolExecutor(16) as threads:
            answers = list(threads.map(lambda _: httpx.get(f"{base}/api/v1/sensors", timeout=30).status_code,
                                       range(60)))
        after = _sessions(database_url)
    assert answers == [200] * 60
    assert after - before <= 3  # at most the pool filling up to CITYOS_DB_POOL_MAX, not 60


def test_connections_of_a_process_are_lent_from_its_one_pool(database_url):
    database = pools.Database(load_settings(database_url=database_url, db_pool_min=0, db_pool_max=2))
    pools.install(database)
    try:
        pids = set()
        for _ in range(5):
            with connect(database_url, autocommit=True) as conn:
                pids.add(conn.execute("select pg_backend_pid()").fetchone()[0])
        assert len(pids) == 1
        assert database.stats()["sync"]["pool_max"] == 2
    finally:
        pools.install(None)
        database.close()


def test_a_process_pool_follows_the_settings_it_was_built_from(database_url, monkeypatch):
    from cityos.platform.settings import get_settings

    try:
        monkeypatch.setenv("CITYOS_DATABASE_URL", "postgresql://nobody:x@127.0.0.1:9/elsewhere")
        get_settings.cache_clear()
        assert pools.current().url.endswith("/elsewhere")
        monkeypatch.setenv("CITYOS_DATABASE_URL", database_url)  # an in-process CLI call of a test, say
        get_settings.cache_clear()
        with connect() as conn:
            assert conn.execute("select current_database()").fetchone()[0] == database_url.rsplit("/", 1)[1]
    finally:
        get_settings.cache_clear()
