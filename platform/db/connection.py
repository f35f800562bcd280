"""Connections to the platform database (psycopg 3)."""

from __future__ import annotations

import psycopg

from cityos.platform.settings import Settings, get_settings


def connect(url: str | None = None, *, autocommit: bool = False, timeout: float = 5.0,
            settings: Settings | None = None) -> psycopg.Connection:
    """A new connection to ``url`` (default: the platform database from the settings)."""
    if url is None:
        url = (settings or get_settings()).database_url
    if not url:
        raise RuntimeError("CITYOS_DATABASE_URL is not set and no local runtime is provisioned; run `cityos up`")
    return psycopg.connect(url, autocommit=autocommit, connect_timeout=max(1, int(timeout)),
                           application_name="cityos")
