"""Scheduled upkeep the Apache-only TimescaleDB cannot do itself: roll-ups and retention.

How long raw telemetry is kept is the setting ``CITYOS_RETENTION_DAYS_RAW`` (``retention_days_raw``),
passed in by the callers (``cityos db maintain`` and the API service's maintenance loop) and recorded
in ``cityos_meta.retention`` on each pass. Roll-ups are recomputed for exactly the buckets
that received rows (late ones too, however old): the platform's own table on the Apache-only build,
``refresh_continuous_aggregate`` over those windows on a community build, whose own jobs do retention
(see migration 0002): there a pass also brings the retention policies in line with the setting. On
the Apache-only build the API service runs :func:`run_maintenance` every
``CITYOS_MAINTENANCE_INTERVAL_S`` seconds and retention is the platform's own ``drop_chunks``.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import psycopg
from psycopg.types.json import Jsonb

from cityos.platform.audit import Who, access_of, record
from cityos.platform.db.connection import connect
from cityos.platform.db.rollups import recompute
from cityos.platform.db.scalar import scalar

log = logging.getLogger(__name__)

def rollup_mode(conn: psycopg.Connection) -> str:
    """``continuous_aggregate`` (community build) or ``platform_table`` (Apache-only build)."""
    row = conn.execute("select value from cityos_meta.settings where key = 'rollup_mode'").fetchone()
    return row[0] if row else "platform_table"


def refresh_rollups(conn: psycopg.Connection, run_id: int, zone: str = "UTC") -> dict[str, int]:
    """Recompute every roll-up bucket that received rows since the last pass, however old (the marks ingest
    writes with the rows, :mod:`cityos.platform.db.rollups`); per roll-up, rows written or buckets refreshed."""
    return recompute(conn, run_id, rollup_mode(conn), zone)


RETENTION_POLICY = """
    select (config->>'drop_after')::interval from timescaledb_information.jobs
    where proc_name = 'policy_retention'
      and format('%%I.%%I', hypertable_schema, hypertable_name)::regclass = %s::regclass"""


def _sync_retention_policies(conn: psycopg.Connection, tables: list[str], keep: timedelta) -> None:
    """Community build: replace each raw hypertable's retention policy whose interval differs from ``keep``."""
    for table in tables:
        row = conn.execute(RETENTION_POLICY, (table,)).fetchone()
        if row is None or row[0] != keep:
            conn.execute("select remove_retention_policy(%s, if_exists => true)", (table,))
            conn.execute("select add_retention_policy(%s, %s::interval)", (table, keep))


def apply_retention(conn: psycopg.Connection, retention_days_raw: int) -> dict[str, int]:
    """Keep ``retention_days_raw`` days of raw telemetry: drop older chunks; chunks dropped per table.

    The raw hypertables are those listed in ``cityos_meta.retention``; their ``keep`` is set to the
    setting, so the table shows what is in force. On a community build the retention policies are
    brought in line instead (TimescaleDB drops the chunks) and nothing is dropped here.
    """
    if retention_days_raw < 1:
        raise ValueError("retention_days_raw must be at least 1")
    keep = timedelta(days=retention_days_raw)
    tables = [r[0] for r in conn.execute("update cityos_meta.retention set keep = %s returning hypertable",
                                         (keep,)).fetchall()]
    if rollup_mode(conn) != "platform_table":
        _sync_retention_policies(conn, tables, keep)
        return {}
    dropped: dict[str, int] = {}
    for table in sorted(tables):
        rows = conn.execute("select drop_chunks(%s::regclass, older_than => now() - %s::interval)",
                            (table, keep)).fetchall()
        dropped[table] = len(rows)
    return dropped


def run_maintenance(url: str, retention_days_raw: int, who: Who | None = None,
                    timezone: str | None = None) -> dict[str, object]:
    """One maintenance pass (roll-ups, then retention keeping ``retention_days_raw`` days of raw telemetry),
    recorded in ``cityos_meta.maintenance_runs``; audited as ``who`` (default the API's scheduled job
    ``maintenance``, which leaves a row only when it dropped readings; a person's run always does).
    The series roll-ups (:mod:`cityos.platform.db.series_rollups`) are cut in ``timezone`` (default: the setting)."""
    from cityos.platform.db.series_rollups import refresh_series_rollups
    from cityos.platform.settings import get_settings

    who = who or Who("maintenance", "job")
    timezone = timezone or get_settings().timezone
    with connect(url, autocommit=True) as conn:
        run_id = scalar(conn.execute(
            "insert into cityos_meta.maintenance_runs (job) values ('rollups+retention') returning id"
        ))
        detail: dict[str, object] = {"rollups": refresh_rollups(conn, run_id, timezone),
                                     "series_rollup_rows": refresh_series_rollups(conn, timezone),
                                     "retention_days_raw": retention_days_raw,
                                     "chunks_dropped": apply_retention(conn, retention_days_raw)}
        conn.execute("update cityos_meta.maintenance_runs set finished_at = now(), detail = %s where id = %s",
                     (Jsonb(detail), run_id))
        dropped = sum(detail["chunks_dropped"].values()) if isinstance(detail["chunks_dropped"], dict) else 0
        if who.entry_point != "job" or dropped:
            access = access_of("cli:db maintain")
            record(conn, who, "retention", "telemetry", subject=access.subject, reason=access.why,
                   detail={"retention_days_raw": retention_days_raw, "chunks_dropped": detail["chunks_dropped"]})
    log.info("maintenance done", extra={"detail": detail})
    return detail
