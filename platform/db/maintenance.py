"""Scheduled upkeep the Apache-only TimescaleDB cannot do itself: roll-ups and retention.

On a community build TimescaleDB's own jobs do both (see migration 0002) and these functions
only report. On the Apache-only build the API service runs :func:`run_maintenance` every
``CITYOS_MAINTENANCE_INTERVAL_S`` seconds.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import psycopg
from psycopg.types.json import Jsonb

log = logging.getLogger(__name__)

ROLLUP_LOOKBACK = timedelta(hours=48)

REFRESH_ENERGY_HOURLY = """
    insert into telemetry.energy_hourly (bucket, device_id, metric, avg, min, max, sum, count)
    select time_bucket('1 hour', time), device_id, metric,
           avg(value), min(value), max(value), sum(value), count(*)
    from telemetry.energy_readings
    where time >= time_bucket('1 hour', now() - %(lookback)s)
    group by 1, 2, 3
    on conflict (device_id, metric, bucket) do update set
        avg = excluded.avg, min = excluded.min, max = excluded.max,
        sum = excluded.sum, count = excluded.count
"""


def rollup_mode(conn: psycopg.Connection) -> str:
    """``continuous_aggregate`` (community build) or ``platform_table`` (Apache-only build)."""
    row = conn.execute("select value from cityos_meta.settings where key = 'rollup_mode'").fetchone()
    return row[0] if row else "platform_table"


def refresh_rollups(conn: psycopg.Connection, lookback: timedelta = ROLLUP_LOOKBACK) -> int:
    """Recompute the hourly energy roll-up for the last ``lookback``; rows written."""
    if rollup_mode(conn) != "platform_table":
        return 0
    return conn.execute(REFRESH_ENERGY_HOURLY, {"lookback": lookback}).rowcount


def apply_retention(conn: psycopg.Connection) -> dict[str, int]:
    """Drop chunks older than each hypertable's configured retention; chunks dropped per table."""
    if rollup_mode(conn) != "platform_table":
        return {}
    dropped: dict[str, int] = {}
    for table, keep in conn.execute("select hypertable, keep from cityos_meta.retention").fetchall():
        rows = conn.execute("select drop_chunks(%s::regclass, older_than => now() - %s::interval)",
                            (table, keep)).fetchall()
        dropped[table] = len(rows)
    return dropped


def run_maintenance(url: str) -> dict[str, object]:
    """One maintenance pass (roll-ups, then retention), recorded in ``cityos_meta.maintenance_runs``."""
    with psycopg.connect(url, autocommit=True) as conn:
        run_id = conn.execute(
            "insert into cityos_meta.maintenance_runs (job) values ('rollups+retention') returning id"
        ).fetchone()[0]
        detail: dict[str, object] = {"rollup_rows": refresh_rollups(conn), "chunks_dropped": apply_retention(conn)}
        conn.execute("update cityos_meta.maintenance_runs set finished_at = now(), detail = %s where id = %s",
                     (Jsonb(detail), run_id))
    log.info("maintenance done", extra={"detail": detail})
    return detail
