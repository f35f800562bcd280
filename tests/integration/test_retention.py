"""Raw-telemetry retention follows CITYOS_RETENTION_DAYS_RAW: `cityos db maintain` drops real chunks."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from cityos.platform.db.features import detect

AGES_DAYS = (500, 100, 2)


def _maintain(database_url: str, retention_days: int) -> str:
    env = {**os.environ, "CITYOS_DATABASE_URL": database_url, "CITYOS_RETENTION_DAYS_RAW": str(retention_days),
           "CITYOS_LOG_JSON": "false"}
    result = subprocess.run([sys.executable, "-m", "cityos.platform.cli", "db", "maintain"], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _ages_left(conn: psycopg.Connection) -> list[int]:
    rows = conn.execute("select round(extract(epoch from now() - time) / 86400)::int from telemetry.measurements "
                        "where device_id = 'ret-t1' order by time").fetchall()
    return [r[0] for r in rows]


def _chunks(conn: psycopg.Connection) -> int:
    return conn.execute("select count(*) from show_chunks('telemetry.measurements')").fetchone()[0]


def test_changing_retention_days_raw_changes_what_db_maintain_drops(private_database_url):
    with psycopg.connect(private_database_url, autocommit=True) as conn:
        if detect(conn).community:
            pytest.skip("community TimescaleDB drops chunks by its own retention policy job")
        for age in AGES_DAYS:
            conn.execute("insert into telemetry.measurements (time, device_id, metric, value) "
                         "values (now() - make_interval(days => %s), 'ret-t1', 'x', %s)", (age, age))
        assert _chunks(conn) == 3

        _maintain(private_database_url, 400)
        assert _ages_left(conn) == [100, 2]
        assert _chunks(conn) == 2

        _maintain(private_database_url, 30)
        assert _ages_left(conn) == [2]
        assert _chunks(conn) == 1
        keep = conn.execute("select distinct keep from cityos_meta.retention").fetchall()
        assert [k[0].days for k in keep] == [30]
