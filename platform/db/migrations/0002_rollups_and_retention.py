"""Hourly energy roll-ups and raw-data retention, on whichever TimescaleDB edition is present.

Community edition (production, timescaledb-ha): a continuous aggregate with a refresh policy,
compression and retention policies run by TimescaleDB's own job scheduler.
Apache-only edition (Debian's build): a plain roll-up table of the same name and columns,
filled by the platform's maintenance job (:mod:`cityos.platform.db.maintenance`), and retention
by scheduled ``drop_chunks``. Queries read ``telemetry.energy_hourly`` either way.
"""

from __future__ import annotations

import psycopg

HYPERTABLES = ["telemetry.vehicle_positions", "telemetry.energy_readings",
               "telemetry.health_readings", "telemetry.measurements"]

ROLLUP_SELECT = """
    select time_bucket('1 hour', time) as bucket, device_id, metric,
           avg(value) as avg, min(value) as min, max(value) as max, sum(value) as sum, count(*) as count
    from telemetry.energy_readings
    group by 1, 2, 3
"""


def apply(conn: psycopg.Connection, features) -> None:
    conn.execute("""
        create table cityos_meta.retention (
            hypertable text primary key,
            keep       interval not null
        )""")
    conn.execute(
        "insert into cityos_meta.retention (hypertable, keep) select unnest(%s::text[]), interval '400 days'",
        (HYPERTABLES,),
    )
    conn.execute("""
        create table cityos_meta.maintenance_runs (
            id         bigint generated always as identity primary key,
            job        text not null,
            started_at timestamptz not null default now(),
            finished_at timestamptz,
            detail     jsonb not null default '{}'::jsonb
        )""")
    conn.execute("create table cityos_meta.settings (key text primary key, value text not null)")
    mode = "continuous_aggregate" if features.community else "platform_table"
    conn.execute("insert into cityos_meta.settings values ('rollup_mode', %s)", (mode,))

    if features.community:
        conn.execute(f"""
            create materialized view telemetry.energy_hourly
            with (timescaledb.continuous) as {ROLLUP_SELECT}
            with no data""")
        conn.execute("""select add_continuous_aggregate_policy('telemetry.energy_hourly',
            start_offset => interval '30 days', end_offset => interval '1 hour',
            schedule_interval => interval '15 minutes')""")
        for table in HYPERTABLES:
            conn.execute(f"alter table {table} set (timescaledb.compress, "
                         "timescaledb.compress_segmentby = 'device_id')")
            conn.execute("select add_compression_policy(%s, interval '7 days')", (table,))
            conn.execute("select add_retention_policy(%s, interval '400 days')", (table,))
    else:
        conn.execute("""
            create table telemetry.energy_hourly (
                bucket    timestamptz not null,
                device_id text not null,
                metric    text not null,
                avg       double precision not null,
                min       double precision not null,
                max       double precision not null,
                sum       double precision not null,
                count     bigint not null,
                primary key (device_id, metric, bucket)
            )""")
        conn.execute("select create_hypertable('telemetry.energy_hourly', 'bucket', "
                     "chunk_time_interval => interval '30 days')")
